// A bounds-checked, exception-free reader over one message body, reused across messages so decoding allocates nothing but the results.
import { isUtf8 } from 'node:buffer';

const EMPTY = Buffer.alloc(0);

/**
 * Reads big-endian integers and NUL-terminated UTF-8 strings between `pos` and `end`.
 *
 * Instead of throwing, the first fault is recorded in `fault` and every later read returns a
 * neutral value; decoders check `fault` once at the end, which keeps the happy path branch-light
 * and lets the codec promise never to throw.
 */
export class Cursor {
  buf: Buffer = EMPTY;
  pos = 0;
  end = 0;
  fault: string | null = null;

  reset(buf: Buffer, pos: number, end: number): void {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.fault = null;
  }

  /** Drops the reference to the last message so a parked cursor does not pin a large chunk. */
  release(): void {
    this.buf = EMPTY;
    this.pos = 0;
    this.end = 0;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  fail(reason: string): void {
    if (this.fault === null) this.fault = reason;
  }

  private short(n: number): boolean {
    if (this.fault !== null) return true;
    if (this.end - this.pos < n) {
      this.fault = 'field runs past the end of the message';
      return true;
    }
    return false;
  }

  u8(): number {
    if (this.short(1)) return 0;
    return this.buf[this.pos++] as number;
  }

  i16(): number {
    if (this.short(2)) return 0;
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u16(): number {
    if (this.short(2)) return 0;
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  i32(): number {
    if (this.short(4)) return 0;
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u32(): number {
    if (this.short(4)) return 0;
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  cstring(): string {
    if (this.fault !== null) return '';
    const nul = this.pos < this.end ? this.buf.indexOf(0, this.pos) : -1;
    if (nul < 0 || nul >= this.end) {
      this.fault = 'string is missing its NUL terminator';
      return '';
    }
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /**
   * A statement or portal name. Decoding replaces bytes that are not UTF-8, so two names a server
   * in another client_encoding (LATIN1) tells apart could be one here: such a name is a fault.
   */
  name(): string {
    const start = this.pos;
    const s = this.cstring();
    if (this.fault === null && s.includes('\uFFFD') && !isUtf8(this.buf.subarray(start, this.pos - 1))) {
      this.fault = 'statement or portal name is not valid UTF-8';
    }
    return s;
  }

  /** A view, not a copy: callers that keep it keep the chunk alive, which is the point on the hot path. */
  bytes(n: number): Buffer {
    if (this.short(n)) return EMPTY;
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  rest(): Buffer {
    if (this.fault !== null) return EMPTY;
    const b = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return b;
  }

  /** Fails unless every byte was consumed: trailing bytes mean the peer and we disagree on the layout. */
  finish(): void {
    if (this.fault === null && this.pos !== this.end) {
      const n = this.end - this.pos;
      this.fault = `${n} trailing byte${n === 1 ? '' : 's'}`;
    }
  }
}
