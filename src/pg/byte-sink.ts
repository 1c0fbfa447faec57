// Collects the bytes of one relayed chunk: runs of messages forwarded unchanged stay views of the
// input (no copy when nothing changed), rewritten messages are written in place, and the result
// is a single buffer, instead of an array of small buffers per message joined at the end.

const EMPTY = Buffer.alloc(0);

export class ByteSink {
  /** Written bytes; valid up to `len`. Write at the offset `reserve` returns, then `commit`. */
  buf: Buffer = EMPTY;
  len = 0;
  /** A run of input bytes appended as a view and not copied yet. */
  private view: Buffer = EMPTY;
  private viewStart = 0;
  private viewEnd = 0;
  /** Size of the buffer to allocate on the first copy, from the input's size. */
  private hint = 0;

  /** Starts a new output expected to be about `sizeHint` bytes. */
  begin(sizeHint: number): void {
    this.buf = EMPTY;
    this.len = 0;
    this.view = EMPTY;
    this.viewStart = 0;
    this.viewEnd = 0;
    this.hint = sizeHint;
  }

  /** Appends src[start, end) unchanged. Contiguous appends from one buffer are kept as one view. */
  append(src: Buffer, start = 0, end = src.length): void {
    if (start === end) return;
    if (src === this.view && start === this.viewEnd) {
      this.viewEnd = end;
      return;
    }
    this.flushView();
    this.view = src;
    this.viewStart = start;
    this.viewEnd = end;
  }

  /** Makes room for `n` new bytes and returns where to write them (in `buf`). */
  reserve(n: number): number {
    this.room(n);
    return this.len;
  }

  /** Room for `n` bytes at `len`; returns the buffer to write them into (ValueOut, for value ops). */
  room(n: number): Buffer {
    this.flushView();
    this.ensure(n);
    return this.buf;
  }

  /** Marks `n` bytes written at the offset `reserve` returned. */
  commit(n: number): void {
    this.len += n;
  }

  /** Everything appended since `begin`: the input itself (or a view of it) when nothing was rewritten. */
  take(): Buffer {
    if (this.len === 0) {
      const { view, viewStart, viewEnd } = this;
      this.view = EMPTY;
      this.viewStart = this.viewEnd = 0;
      if (viewStart === 0 && viewEnd === view.length) return view;
      return view.subarray(viewStart, viewEnd);
    }
    this.flushView();
    const out = this.buf.subarray(0, this.len);
    this.buf = EMPTY;
    this.len = 0;
    return out;
  }

  private flushView(): void {
    const n = this.viewEnd - this.viewStart;
    if (n === 0) return;
    this.ensure(n);
    this.view.copy(this.buf, this.len, this.viewStart, this.viewEnd);
    this.len += n;
    this.view = EMPTY;
    this.viewStart = this.viewEnd = 0;
  }

  private ensure(n: number): void {
    const need = this.len + n;
    if (need <= this.buf.length) return;
    // The buffer is handed to the socket by take(), so it is never reused: grow by copying.
    const next = Buffer.allocUnsafe(Math.max(need, this.hint, this.buf.length * 2));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}
