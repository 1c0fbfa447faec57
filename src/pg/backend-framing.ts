// Backend (server→client) message framer for relaying: finds message boundaries in the upstream byte stream without decoding bodies or copying whole messages.
import { ProtocolError, describeTypeByte, hexByte } from './errors.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from './frontend.js';
import { BackendType } from './message-types.js';

export interface BackendFrame {
  /** The type byte, e.g. 0x44 for 'D' (DataRow). */
  type: number;
  /** The bytes after the length field. */
  body: Buffer;
  /** Type byte + length + body. */
  raw: Buffer;
}

export interface BackendFramerOptions {
  /** Largest accepted value of a message's length field (body + 4). Default 256 MiB. */
  maxMessageSize?: number;
}

const EMPTY = Buffer.alloc(0);
const NEED_MORE = -1;
const FAILED = -2;

/**
 * Per type byte: 0 unknown, -1 any length, otherwise the only valid length-field value. Checking
 * the type eagerly catches a desynchronised stream at the first wrong byte instead of relaying
 * garbage framed as messages.
 */
const SHAPES = new Int32Array(256);
for (const ch of 'RKSTDCENAVvtGHWd') SHAPES[ch.charCodeAt(0)] = -1;
for (const ch of '123nsIc') SHAPES[ch.charCodeAt(0)] = 4;
SHAPES[BackendType.ReadyForQuery] = 5; // one status byte

/**
 * Incremental framer over what PostgreSQL sends. `push` yields one frame per message;
 * `pushWhole` yields every complete message as one buffer for pure pass-through. Both share the
 * pending state, so callers may switch between them at any chunk. Pushed chunks are referenced,
 * not copied, until their message completes, so callers must not reuse a chunk's memory.
 */
export class BackendFramer {
  private readonly maxMessageSize: number;
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** Total length of the pending message once its header is known, else -1. */
  private msgLen = -1;
  private readonly hdr = Buffer.alloc(8);
  private err: ProtocolError | null = null;
  /**
   * Set when a ParameterStatus ('S') header went by, so pass-through callers can look at the rare
   * setting changes without decoding every message. The caller clears it.
   */
  parameterStatusSeen = false;
  /** ReadyForQuery messages framed so far: lets a caller wait for the end of a statement cheaply. */
  readyForQueryCount = 0;
  /** Set by `frame`/`scan` on the happy path to avoid returning tuples. */
  private tailLen = -1;
  /** The message `next` is positioned on: type byte at buf[start], one past its last byte at end. */
  buf: Buffer = EMPTY;
  start = 0;
  end = 0;
  /** The chunk `next` walks, and how far it got. */
  private chunk: Buffer = EMPTY;
  private off = 0;
  /** A message completed by the fed chunk from pending parts: `next` returns it first. */
  private held?: Buffer;

  constructor(opts?: BackendFramerOptions) {
    const max = opts?.maxMessageSize;
    this.maxMessageSize = max !== undefined && max >= 4 ? Math.min(Math.floor(max), 0x7fffffff) : DEFAULT_MAX_MESSAGE_SIZE;
  }

  /** The violation that stopped the framer, if any; it is also returned by every later push. */
  get error(): ProtocolError | null {
    return this.err;
  }

  /** Bytes held back because their message is not complete yet. */
  get pendingBytes(): number {
    return this.partsLen;
  }

  /**
   * Frames `chunk` and returns one frame per complete message. Allocates two views and an object
   * per message; hot paths use `feed` + `next` instead.
   */
  push(chunk: Buffer): BackendFrame[] | ProtocolError {
    const e = this.feed(chunk);
    if (e !== undefined) return e;
    const out: BackendFrame[] = [];
    let t = this.next();
    for (; t >= 0; t = this.next()) out.push(this.current());
    return t === FAILED ? this.failure() : out;
  }

  /**
   * Starts framing `chunk` for `next`. The previous chunk must have been read to its end (`next`
   * returned a negative number): a caller that stops early breaks the stream, so that is reported
   * as an error rather than silently dropping messages.
   */
  feed(chunk: Buffer): ProtocolError | undefined {
    if (this.err !== null || this.unread()) return this.err!;
    this.chunk = chunk;
    this.off = 0;
    if (this.partsLen > 0 && chunk.length > 0) {
      const need = this.completePending(chunk);
      if (need === FAILED) return this.failure();
      if (need === NEED_MORE) {
        this.chunk = EMPTY;
        return undefined;
      }
      this.parts.push(need === chunk.length ? chunk : chunk.subarray(0, need));
      this.held = Buffer.concat(this.parts, this.msgLen);
      this.clearPending();
      this.off = need;
    }
    return undefined;
  }

  /**
   * Positions `buf`/`start`/`end` on the next complete message of the fed chunk and returns its type
   * byte, without allocating. Returns -1 when the chunk is used up (an incomplete tail is kept for
   * the next `feed`) and -2 when the stream is invalid (see `error`).
   */
  next(): number {
    if (this.err !== null) return FAILED;
    const held = this.held;
    if (held !== undefined) {
      this.held = undefined;
      this.buf = held;
      this.start = 0;
      this.end = held.length;
      return held[0] as number;
    }
    const chunk = this.chunk;
    const off = this.off;
    const avail = chunk.length - off;
    if (avail <= 0) {
      this.chunk = EMPTY;
      this.off = 0;
      return NEED_MORE;
    }
    const total = this.frame(chunk, off, avail);
    if (total === FAILED) return FAILED;
    if (total === NEED_MORE || total > avail) {
      this.stash(chunk, off, total);
      this.chunk = EMPTY;
      this.off = 0;
      return NEED_MORE;
    }
    this.buf = chunk;
    this.start = off;
    this.end = off + total;
    this.off = off + total;
    return chunk[off] as number;
  }

  /** The message `next` is positioned on, as a frame (views into the chunk, not copies). */
  current(): BackendFrame {
    const { buf, start, end } = this;
    return { type: buf[start] as number, body: buf.subarray(start + 5, end), raw: start === 0 && end === buf.length ? buf : buf.subarray(start, end) };
  }

  /**
   * Returns exactly the complete messages now available as one buffer: `chunk` itself or a
   * subarray of it when nothing was pending, a new buffer only when a message straddled chunks,
   * and an empty buffer when nothing is complete yet.
   */
  pushWhole(chunk: Buffer): Buffer | ProtocolError {
    if (this.err !== null || this.unread()) return this.err!;
    const len = chunk.length;
    if (this.partsLen === 0) {
      const end = this.scan(chunk, 0);
      if (end === FAILED) return this.failure();
      if (end === len) return chunk;
      this.stash(chunk, end, this.tailLen);
      return end === 0 ? EMPTY : chunk.subarray(0, end);
    }
    if (len === 0) return EMPTY;
    const need = this.completePending(chunk);
    if (need === FAILED) return this.failure();
    if (need === NEED_MORE) return EMPTY;
    const end = this.scan(chunk, need);
    if (end === FAILED) return this.failure();
    const tailLen = this.tailLen;
    const size = this.partsLen + end;
    this.parts.push(end === len ? chunk : chunk.subarray(0, end));
    const whole = Buffer.concat(this.parts, size);
    this.clearPending();
    if (end < len) this.stash(chunk, end, tailLen);
    return whole;
  }

  /** Walks headers from `from`; returns the end of the last complete message and leaves the tail's total (or -1) in `tailLen`. */
  private scan(chunk: Buffer, from: number): number {
    const len = chunk.length;
    let off = from;
    while (off < len) {
      const total = this.frame(chunk, off, len - off);
      if (total === FAILED) return FAILED;
      if (total === NEED_MORE || total > len - off) {
        this.tailLen = total;
        return off;
      }
      off += total;
    }
    return off;
  }

  private stash(chunk: Buffer, off: number, total: number): void {
    const piece = chunk.subarray(off);
    if (total === NEED_MORE) piece.copy(this.hdr, 0);
    this.parts.push(piece);
    this.partsLen = piece.length;
    this.msgLen = total;
  }

  /** Returns how many bytes of `chunk` finish the pending message, NEED_MORE after absorbing all of it, or FAILED. */
  private completePending(chunk: Buffer): number {
    if (this.msgLen < 0) {
      const take = Math.min(5 - this.partsLen, chunk.length);
      chunk.copy(this.hdr, this.partsLen, 0, take);
      const total = this.frame(this.hdr, 0, this.partsLen + take);
      if (total === FAILED) return FAILED;
      if (total === NEED_MORE) {
        this.parts.push(chunk);
        this.partsLen += chunk.length;
        return NEED_MORE;
      }
      this.msgLen = total;
    }
    const need = this.msgLen - this.partsLen;
    if (chunk.length < need) {
      this.parts.push(chunk);
      this.partsLen += chunk.length;
      return NEED_MORE;
    }
    return need;
  }

  private clearPending(): void {
    this.parts.length = 0;
    this.partsLen = 0;
    this.msgLen = -1;
  }

  /** Same verdict for the same bytes however the stream is split: each check uses only bytes already seen. */
  private frame(buf: Buffer, at: number, avail: number): number {
    const type = buf[at] as number;
    const shape = SHAPES[type] as number;
    if (shape === 0) return this.fail(`unknown backend message type ${hexByte(type)}`);
    if (type === BackendType.ParameterStatus) this.parameterStatusSeen = true;
    if (avail < 5) return NEED_MORE;
    const len = buf.readInt32BE(at + 1);
    if (len < 4 || (shape > 0 && len !== shape)) return this.fail(`invalid message length ${len} for type ${describeTypeByte(type)}`);
    if (len > this.maxMessageSize) {
      return this.fail(`message of ${len} bytes exceeds limit of ${this.maxMessageSize} (type ${describeTypeByte(type)})`);
    }
    // Counted here, past the length check, because each message reaches this point exactly once.
    if (type === BackendType.ReadyForQuery) this.readyForQueryCount++;
    return len + 1;
  }

  /** True (and the framer failed) when the last fed chunk was not read to its end: feeding more would reorder the stream. */
  private unread(): boolean {
    if (this.off >= this.chunk.length && this.held === undefined) return false;
    this.err = new ProtocolError('backend framer: a chunk was fed before the previous one was read to its end');
    this.clearPending();
    return true;
  }

  /** The stored error; TypeScript cannot see that `frame` set it. */
  private failure(): ProtocolError {
    return this.err ?? new ProtocolError('framer failed without an error');
  }

  private fail(message: string): number {
    this.err = new ProtocolError(message);
    this.clearPending();
    return FAILED;
  }
}
