// Where the row path's value ops write: each op writes its output at a given place instead of
// returning a new Buffer, so masking a row allocates nothing per value. The place is a scratch arena
// the row writer copies from, or the relay's output buffer itself (ByteSink) when a row is written
// in one pass.

/** What a value op returns besides a length: SQL NULL, or "forward the original bytes". */
export const NULL_VALUE = -1;
export const UNCHANGED = -2;

/**
 * Where value ops write: at `len`, after room(n), returning the length (or NULL_VALUE / UNCHANGED)
 * without moving `len`. The row path's scratch arena, or the relay's output buffer itself.
 */
export interface ValueOut {
  buf: Buffer;
  len: number;
  room(n: number): Buffer;
}

/** Copies v to out.buf at out.len (room made) and returns its length, or NULL_VALUE / UNCHANGED. */
export function putValue(out: ValueOut, v: Buffer | null | undefined): number {
  if (v === null) return NULL_VALUE;
  if (v === undefined) return UNCHANGED;
  const n = v.length;
  const buf = out.room(n);
  // Buffer.copy is a native call plus a view: short values (placeholders, tokens) are cheaper by hand.
  if (n > 32) v.copy(buf, out.len);
  else for (let i = 0, at = out.len; i < n; i++) buf[at + i] = v[i] as number;
  return n;
}

export class ValueArena implements ValueOut {
  buf: Buffer;
  /** End of the values written so far; an op writes at `len` and returns how many bytes it wrote. */
  len = 0;

  constructor(size = 4096) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Makes room for `n` bytes at `len` and returns the buffer to write them into. */
  room(n: number): Buffer {
    const need = this.len + n;
    if (need > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    return this.buf;
  }
}
