// Frontend (client→server) PostgreSQL message parser: a sans-I/O state machine turning pushed byte chunks into typed messages, failing closed on the first protocol violation.
import { Cursor } from './cursor.js';
import { ProtocolError, describeTypeByte, hexByte } from './errors.js';
import { FrontendType } from './message-types.js';

export type FrontendMessage =
  | { type: 'SSLRequest'; raw: Buffer }
  | { type: 'GSSENCRequest'; raw: Buffer }
  | { type: 'CancelRequest'; processId: number; secretKey: Buffer; raw: Buffer }
  | { type: 'Startup'; protocolVersion: number; parameters: Record<string, string>; raw: Buffer }
  | { type: 'Query'; sql: string; raw: Buffer }
  | { type: 'Parse'; name: string; sql: string; paramTypes: number[]; raw: Buffer }
  | {
      type: 'Bind';
      portal: string;
      statement: string;
      paramFormats: number[];
      params: (Buffer | null)[];
      resultFormats: number[];
      raw: Buffer;
    }
  | { type: 'Describe'; kind: 'S' | 'P'; name: string; raw: Buffer }
  | { type: 'Execute'; portal: string; maxRows: number; raw: Buffer }
  | { type: 'Sync'; raw: Buffer }
  | { type: 'Flush'; raw: Buffer }
  | { type: 'Terminate'; raw: Buffer }
  | { type: 'Close'; kind: 'S' | 'P'; name: string; raw: Buffer }
  | {
      type: 'FunctionCall';
      functionOid: number;
      argFormats: number[];
      args: (Buffer | null)[];
      resultFormat: number;
      raw: Buffer;
    }
  | { type: 'CopyData'; data: Buffer; raw: Buffer }
  | { type: 'CopyDone'; raw: Buffer }
  | { type: 'CopyFail'; message: string; raw: Buffer }
  | { type: 'AuthResponse'; data: Buffer; raw: Buffer }
  | { type: 'ProtocolError'; error: ProtocolError };

export type FrontendPhase = 'startup' | 'normal' | 'failed' | 'done';

export interface FrontendParserOptions {
  /** Largest accepted value of a message's length field (body + 4). Default 256 MiB. */
  maxMessageSize?: number;
}

export const DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024 * 1024;

export const PROTOCOL_VERSION_3_0 = 196608;
export const CANCEL_REQUEST_CODE = 80877102;
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;

/** PostgreSQL's MAX_STARTUP_PACKET_LENGTH: a client cannot make us buffer more before it is even identified. */
const MAX_STARTUP_PACKET = 10_000;
/** PostgreSQL's PQ_SMALL_MESSAGE_LIMIT for messages whose body is a name or two. */
const SMALL_LIMIT = 10_000;
/** PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH bounds password and SASL messages. */
const AUTH_LIMIT = 65_535;

const NEED_MORE = -1;
const FAILED = -2;

/** Length-field limit per type byte; 0 marks an unknown type, 4 a message that must have an empty body. */
const LIMITS = new Int32Array(256);
const NAMES: string[] = [];
function def(ch: string, name: string, limit: number): void {
  const code = ch.charCodeAt(0);
  LIMITS[code] = limit;
  NAMES[code] = name;
}
const LARGE = 0x7fffffff;
def('Q', 'Query', LARGE);
def('P', 'Parse', LARGE);
def('B', 'Bind', LARGE);
def('D', 'Describe', SMALL_LIMIT);
def('E', 'Execute', SMALL_LIMIT);
def('S', 'Sync', 4);
def('H', 'Flush', 4);
def('X', 'Terminate', 4);
def('C', 'Close', SMALL_LIMIT);
def('F', 'FunctionCall', LARGE);
def('d', 'CopyData', LARGE);
def('c', 'CopyDone', 4);
def('f', 'CopyFail', SMALL_LIMIT);
def('p', 'AuthResponse', AUTH_LIMIT);

/**
 * Incremental parser for everything a PostgreSQL client sends.
 *
 * `raw` of each message is a subarray of the pushed chunk when the message lies whole inside it;
 * a message split across chunks is assembled once, when its last byte arrives. The parser keeps
 * references to pushed chunks (no copies) until their message completes, so callers must not
 * reuse a chunk's memory after pushing it.
 */
export class FrontendParser {
  private state: FrontendPhase = 'startup';
  /** Read at every message header, so a new limit (a reloaded policy) applies from the next message on. */
  maxMessageSize: number;
  /** Bytes of the incomplete message at the end of the stream, as views of the chunks they came in. */
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** Total length of the pending message once its header is known, else -1. */
  private msgLen = -1;
  /** Copy of a pending header split across chunks (at most 5 bytes), so it can be read in one place. */
  private readonly hdr = Buffer.alloc(8);
  private readonly cur = new Cursor();

  constructor(opts?: FrontendParserOptions) {
    const max = opts?.maxMessageSize;
    this.maxMessageSize = max !== undefined && max >= 4 ? Math.min(Math.floor(max), 0x7fffffff) : DEFAULT_MAX_MESSAGE_SIZE;
  }

  get phase(): FrontendPhase {
    return this.state;
  }

  /**
   * Feeds the next bytes from the client. Returns the messages completed by them, in order; on a
   * violation the last element is the single `ProtocolError` and every later push returns `[]`.
   */
  push(chunk: Buffer): FrontendMessage[] {
    const out: FrontendMessage[] = [];
    if (this.state === 'failed' || chunk.length === 0) return out;
    try {
      let off = 0;
      if (this.partsLen > 0) {
        off = this.resume(chunk, out);
        if (off < 0) return out;
      }
      const len = chunk.length;
      while (off < len) {
        if (this.state !== 'normal' && this.state !== 'startup') {
          // No count: how many bytes one push holds depends on how the stream was split.
          if (this.state === 'done') this.fail(out, 'unexpected bytes after CancelRequest');
          break;
        }
        const avail = len - off;
        const total = this.frame(chunk, off, avail, out);
        if (total === FAILED) break;
        if (total === NEED_MORE) {
          chunk.copy(this.hdr, 0, off, len);
          this.stash(chunk.subarray(off), -1);
          break;
        }
        if (total > avail) {
          this.stash(chunk.subarray(off), total);
          break;
        }
        this.decode(chunk, off, total, out);
        off += total;
      }
    } catch (e) {
      // Unreachable by design; kept so a codec bug ends one connection cleanly instead of the process.
      this.fail(out, `internal codec error: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.cur.release();
    return out;
  }

  private stash(piece: Buffer, msgLen: number): void {
    this.parts.push(piece);
    this.partsLen = piece.length;
    this.msgLen = msgLen;
  }

  /** Continues the message left incomplete by earlier pushes; returns the offset in `chunk` after it, or -1 when done with the chunk. */
  private resume(chunk: Buffer, out: FrontendMessage[]): number {
    if (this.msgLen < 0) {
      const take = Math.min(this.headerSize() - this.partsLen, chunk.length);
      chunk.copy(this.hdr, this.partsLen, 0, take);
      const total = this.frame(this.hdr, 0, this.partsLen + take, out);
      if (total === FAILED) return -1;
      if (total === NEED_MORE) {
        this.parts.push(chunk);
        this.partsLen += chunk.length;
        return -1;
      }
      this.msgLen = total;
    }
    const need = this.msgLen - this.partsLen;
    if (chunk.length < need) {
      this.parts.push(chunk);
      this.partsLen += chunk.length;
      return -1;
    }
    this.parts.push(need === chunk.length ? chunk : chunk.subarray(0, need));
    const total = this.msgLen;
    const raw = Buffer.concat(this.parts, total);
    this.clearPending();
    this.decode(raw, 0, total, out);
    return need;
  }

  private clearPending(): void {
    this.parts.length = 0;
    this.partsLen = 0;
    this.msgLen = -1;
  }

  private headerSize(): number {
    return this.state === 'startup' ? 4 : 5;
  }

  /**
   * Checks the header bytes available so far. Every check here depends only on the bytes it has
   * seen, so the same stream gives the same verdict however it is split into chunks.
   */
  private frame(buf: Buffer, at: number, avail: number, out: FrontendMessage[]): number {
    if (this.state === 'startup') {
      if (avail < 4) return NEED_MORE;
      const len = buf.readInt32BE(at);
      const limit = Math.min(MAX_STARTUP_PACKET, this.maxMessageSize);
      if (len < 8 || len > limit) {
        this.fail(out, `invalid startup packet length ${len}`);
        return FAILED;
      }
      return len;
    }
    const type = buf[at] as number;
    const typeLimit = LIMITS[type] as number;
    if (typeLimit === 0) {
      this.fail(out, `unknown frontend message type ${hexByte(type)}`);
      return FAILED;
    }
    if (avail < 5) return NEED_MORE;
    const len = buf.readInt32BE(at + 1);
    if (len < 4 || (typeLimit === 4 && len !== 4)) {
      this.fail(out, `invalid message length ${len} for type ${describeTypeByte(type)}`);
      return FAILED;
    }
    const limit = typeLimit < this.maxMessageSize ? typeLimit : this.maxMessageSize;
    if (len > limit) {
      const message = `message of ${len} bytes exceeds limit of ${limit} (type ${describeTypeByte(type)})`;
      this.fail(out, message, limit === this.maxMessageSize ? { length: len, limit } : undefined);
      return FAILED;
    }
    return len + 1;
  }

  private fail(out: FrontendMessage[], message: string, size?: { length: number; limit: number }): void {
    this.state = 'failed';
    this.clearPending();
    out.push({ type: 'ProtocolError', error: new ProtocolError(message, size) });
  }

  private decode(buf: Buffer, at: number, total: number, out: FrontendMessage[]): void {
    const raw = at === 0 && total === buf.length ? buf : buf.subarray(at, at + total);
    const c = this.cur;
    if (this.state === 'startup') {
      c.reset(buf, at + 4, at + total);
      const msg = this.decodeStartup(c, raw);
      if (c.fault !== null) {
        this.fail(out, c.fault);
        return;
      }
      out.push(msg as FrontendMessage);
      return;
    }
    const type = buf[at] as number;
    c.reset(buf, at + 5, at + total);
    const msg = decodeNormal(c, type, raw);
    c.finish();
    if (c.fault !== null) {
      this.fail(out, `invalid ${NAMES[type] ?? hexByte(type)} message: ${c.fault}`);
      return;
    }
    out.push(msg);
  }

  /** Returns a message, or sets `c.fault` with a complete error text. */
  private decodeStartup(c: Cursor, raw: Buffer): FrontendMessage | null {
    const code = c.u32();
    switch (code) {
      case SSL_REQUEST_CODE:
      case GSSENC_REQUEST_CODE: {
        const name = code === SSL_REQUEST_CODE ? 'SSLRequest' : 'GSSENCRequest';
        if (c.remaining !== 0) {
          c.fail(`invalid ${name}: ${c.remaining} trailing bytes`);
          return null;
        }
        return code === SSL_REQUEST_CODE ? { type: 'SSLRequest', raw } : { type: 'GSSENCRequest', raw };
      }
      case CANCEL_REQUEST_CODE: {
        // Protocol 3.0 keys are 4 bytes; 3.2 allows up to 256.
        if (c.remaining < 8 || c.remaining > 4 + 256) {
          c.fail(`invalid CancelRequest length ${c.remaining + 8}`);
          return null;
        }
        const processId = c.i32();
        this.state = 'done';
        return { type: 'CancelRequest', processId, secretKey: c.rest(), raw };
      }
    }
    const major = code >>> 16;
    const minor = code & 0xffff;
    if (major !== 3) {
      c.fail(major === 1234 ? `unsupported frontend request code 1234.${minor}` : `unsupported frontend protocol version ${major}.${minor}`);
      return null;
    }
    // A null prototype so that a parameter named "__proto__" is stored, not swallowed.
    const parameters = Object.create(null) as Record<string, string>;
    for (;;) {
      if (c.remaining === 0) {
        c.fail('invalid startup packet: parameter list is not terminated');
        return null;
      }
      if (c.buf[c.pos] === 0) {
        c.pos++;
        break;
      }
      const key = c.cstring();
      const value = c.cstring();
      if (c.fault !== null) {
        c.fault = null;
        c.fail('invalid startup packet: parameter without NUL terminator');
        return null;
      }
      if (key in parameters) {
        c.fail(`invalid startup packet: duplicate parameter "${key}"`);
        return null;
      }
      parameters[key] = value;
    }
    if (c.remaining !== 0) {
      c.fail(`invalid startup packet: ${c.remaining} trailing bytes after the parameter list`);
      return null;
    }
    this.state = 'normal';
    return { type: 'Startup', protocolVersion: code, parameters, raw };
  }
}

function decodeNormal(c: Cursor, type: number, raw: Buffer): FrontendMessage {
  switch (type) {
    case FrontendType.Query:
      return { type: 'Query', sql: c.cstring(), raw };
    case FrontendType.Parse: {
      const name = c.name();
      const sql = c.cstring();
      const n = c.u16();
      const paramTypes: number[] = [];
      if (n * 4 > c.remaining) c.fail(`${n} parameter types overflow the message`);
      else for (let i = 0; i < n; i++) paramTypes.push(c.u32());
      return { type: 'Parse', name, sql, paramTypes, raw };
    }
    case FrontendType.Bind: {
      const portal = c.name();
      const statement = c.name();
      const paramFormats = readInt16List(c, 'parameter format codes');
      const params = readValues(c, 'parameters');
      const resultFormats = readInt16List(c, 'result format codes');
      if (paramFormats.length > 1 && paramFormats.length !== params.length) {
        c.fail(`${paramFormats.length} parameter formats for ${params.length} parameters`);
      }
      return { type: 'Bind', portal, statement, paramFormats, params, resultFormats, raw };
    }
    case FrontendType.Describe:
    case FrontendType.Close: {
      const k = c.u8();
      if (c.fault === null && k !== 0x53 && k !== 0x50) c.fail(`kind ${describeTypeByte(k)} is neither 'S' nor 'P'`);
      const kind = k === 0x53 ? 'S' : 'P';
      const name = c.name();
      return type === FrontendType.Describe ? { type: 'Describe', kind, name, raw } : { type: 'Close', kind, name, raw };
    }
    case FrontendType.Execute: {
      const portal = c.name();
      return { type: 'Execute', portal, maxRows: c.i32(), raw };
    }
    case FrontendType.Sync:
      return { type: 'Sync', raw };
    case FrontendType.Flush:
      return { type: 'Flush', raw };
    case FrontendType.Terminate:
      return { type: 'Terminate', raw };
    case FrontendType.FunctionCall: {
      const functionOid = c.u32();
      const argFormats = readInt16List(c, 'argument format codes');
      const args = readValues(c, 'arguments');
      const resultFormat = c.i16();
      if (argFormats.length > 1 && argFormats.length !== args.length) {
        c.fail(`${argFormats.length} argument formats for ${args.length} arguments`);
      }
      return { type: 'FunctionCall', functionOid, argFormats, args, resultFormat, raw };
    }
    case FrontendType.CopyData:
      return { type: 'CopyData', data: c.rest(), raw };
    case FrontendType.CopyDone:
      return { type: 'CopyDone', raw };
    case FrontendType.CopyFail:
      return { type: 'CopyFail', message: c.cstring(), raw };
    default:
      // 'p': only the caller knows which auth exchange is under way, so the bytes stay opaque.
      return { type: 'AuthResponse', data: c.rest(), raw };
  }
}

function readInt16List(c: Cursor, what: string): number[] {
  const n = c.u16();
  const list: number[] = [];
  if (n * 2 > c.remaining) {
    c.fail(`${n} ${what} overflow the message`);
    return list;
  }
  for (let i = 0; i < n; i++) list.push(c.i16());
  return list;
}

function readValues(c: Cursor, what: string): (Buffer | null)[] {
  const n = c.u16();
  const list: (Buffer | null)[] = [];
  if (n * 4 > c.remaining) {
    c.fail(`${n} ${what} overflow the message`);
    return list;
  }
  for (let i = 0; i < n && c.fault === null; i++) {
    const len = c.i32();
    if (len === -1) list.push(null);
    else if (len < -1) c.fail(`${what.slice(0, -1)} ${i + 1} has length ${len}`);
    else list.push(c.bytes(len));
  }
  return list;
}
