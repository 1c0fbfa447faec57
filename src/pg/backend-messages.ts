// Backend (server→client) message serializer: one small function per message the gateway speaks to clients itself, each returning a buffer ready to write.
import { BackendType, TransactionStatusByte } from './message-types.js';

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';

export type TransactionStatus = 'I' | 'T' | 'E';

/**
 * Fields of an ErrorResponse or NoticeResponse. The first block is what the gateway writes; the
 * rest exist so an upstream error decoded by `decodeErrorFields` can be re-sent unchanged.
 */
export interface ErrorFields {
  severity: Severity;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  position?: number;
  where?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  /** 'S' when it differs from `severity` (a server running in another language). */
  localizedSeverity?: string;
  internalPosition?: number;
  internalQuery?: string;
  file?: string;
  line?: number;
  routine?: string;
}

export interface FieldDescription {
  name: string;
  tableOid: number;
  columnAttr: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  /** 0 text, 1 binary. */
  format: number;
}

/*
 * Integers are normalised with bit operations before writing: Buffer's writers throw on
 * out-of-range values, and a serializer on the data path should never throw. Strings that go into
 * NUL-terminated fields have any NUL replaced by U+FFFD, since one would cut the field short and
 * desynchronise the client.
 */

function cstr(s: string): string {
  return s.indexOf('\0') === -1 ? s : s.replaceAll('\0', '\uFFFD');
}

function alloc(type: number, bodyLen: number): Buffer {
  const b = Buffer.allocUnsafe(5 + bodyLen);
  b[0] = type;
  b.writeInt32BE(bodyLen + 4, 1);
  return b;
}

/** Writes `s` (already cleaned, `n` UTF-8 bytes) and its NUL at `off`; returns the offset after it. */
function putCString(b: Buffer, off: number, s: string, n: number): number {
  b.write(s, off, n, 'utf8');
  b[off + n] = 0;
  return off + n + 1;
}

function i16(v: number): number {
  return (v << 16) >> 16;
}

function fixed(type: number, body: number[] = []): Buffer {
  const b = alloc(type, body.length);
  for (let i = 0; i < body.length; i++) b[5 + i] = body[i] as number;
  return b;
}

// Fixed messages are shared constants: callers write them to sockets and must not mutate them.
const SSL_NO = Buffer.from('N', 'latin1');
const AUTH_OK = fixed(BackendType.Authentication, [0, 0, 0, 0]);
const RFQ_I = fixed(BackendType.ReadyForQuery, [TransactionStatusByte.Idle]);
const RFQ_T = fixed(BackendType.ReadyForQuery, [TransactionStatusByte.InTransaction]);
const RFQ_E = fixed(BackendType.ReadyForQuery, [TransactionStatusByte.Failed]);
const EMPTY_QUERY = fixed(BackendType.EmptyQueryResponse);
const PARSE_COMPLETE = fixed(BackendType.ParseComplete);
const BIND_COMPLETE = fixed(BackendType.BindComplete);
const CLOSE_COMPLETE = fixed(BackendType.CloseComplete);
const NO_DATA = fixed(BackendType.NoData);
const PORTAL_SUSPENDED = fixed(BackendType.PortalSuspended);
const COPY_DONE = fixed(BackendType.CopyDone);

/** The one-byte refusal of SSLRequest/GSSENCRequest; not a framed message. */
export function sslNo(): Buffer {
  return SSL_NO;
}

export function authenticationOk(): Buffer {
  return AUTH_OK;
}

export function parameterStatus(name: string, value: string): Buffer {
  const n = cstr(name);
  const v = cstr(value);
  const nl = Buffer.byteLength(n);
  const vl = Buffer.byteLength(v);
  const b = alloc(BackendType.ParameterStatus, nl + vl + 2);
  putCString(b, putCString(b, 5, n, nl), v, vl);
  return b;
}

/** `secretKey` is 4 bytes in protocol 3.0 (up to 256 in 3.2). */
export function backendKeyData(processId: number, secretKey: Buffer): Buffer {
  const b = alloc(BackendType.BackendKeyData, 4 + secretKey.length);
  b.writeInt32BE(processId | 0, 5);
  secretKey.copy(b, 9);
  return b;
}

export function readyForQuery(status: TransactionStatus): Buffer {
  return status === 'I' ? RFQ_I : status === 'T' ? RFQ_T : RFQ_E;
}

export function errorResponse(fields: ErrorFields): Buffer {
  return noticeLike(BackendType.ErrorResponse, fields);
}

export function noticeResponse(fields: ErrorFields): Buffer {
  return noticeLike(BackendType.NoticeResponse, fields);
}

/** Field codes in the order PostgreSQL writes them. */
const ERROR_FIELD_ORDER: readonly [number, keyof ErrorFields][] = [
  [0x53, 'localizedSeverity'], // 'S' (falls back to severity below)
  [0x56, 'severity'], // 'V'
  [0x43, 'code'], // 'C'
  [0x4d, 'message'], // 'M'
  [0x44, 'detail'], // 'D'
  [0x48, 'hint'], // 'H'
  [0x50, 'position'], // 'P'
  [0x70, 'internalPosition'], // 'p'
  [0x71, 'internalQuery'], // 'q'
  [0x57, 'where'], // 'W'
  [0x73, 'schema'], // 's'
  [0x74, 'table'], // 't'
  [0x63, 'column'], // 'c'
  [0x64, 'dataType'], // 'd'
  [0x6e, 'constraint'], // 'n'
  [0x46, 'file'], // 'F'
  [0x4c, 'line'], // 'L'
  [0x52, 'routine'], // 'R'
];

function noticeLike(type: number, fields: ErrorFields): Buffer {
  // Errors are rare, so clarity wins over a hand-rolled two-pass writer here.
  const values: string[] = [];
  const codes: number[] = [];
  let size = 1;
  for (const [code, key] of ERROR_FIELD_ORDER) {
    let v = fields[key];
    if (code === 0x53 && v === undefined) v = fields.severity;
    if (v === undefined || v === null) continue;
    const s = cstr(String(v));
    codes.push(code);
    values.push(s);
    size += 2 + Buffer.byteLength(s);
  }
  const b = alloc(type, size);
  let off = 5;
  for (let i = 0; i < codes.length; i++) {
    const s = values[i] as string;
    b[off++] = codes[i] as number;
    off = putCString(b, off, s, Buffer.byteLength(s));
  }
  b[off] = 0;
  return b;
}

export function commandComplete(tag: string): Buffer {
  const t = cstr(tag);
  const n = Buffer.byteLength(t);
  const b = alloc(BackendType.CommandComplete, n + 1);
  putCString(b, 5, t, n);
  return b;
}

export function emptyQueryResponse(): Buffer {
  return EMPTY_QUERY;
}

export function rowDescription(fields: readonly FieldDescription[]): Buffer {
  let size = 2;
  const names: string[] = [];
  const lens: number[] = [];
  for (const f of fields) {
    const name = cstr(f.name);
    const n = Buffer.byteLength(name);
    names.push(name);
    lens.push(n);
    size += n + 1 + 18;
  }
  const b = alloc(BackendType.RowDescription, size);
  b.writeUInt16BE(fields.length & 0xffff, 5);
  let off = 7;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i] as FieldDescription;
    off = putCString(b, off, names[i] as string, lens[i] as number);
    b.writeUInt32BE(f.tableOid >>> 0, off);
    b.writeInt16BE(i16(f.columnAttr), off + 4);
    b.writeUInt32BE(f.typeOid >>> 0, off + 6);
    b.writeInt16BE(i16(f.typeSize), off + 10);
    b.writeInt32BE(f.typeModifier | 0, off + 12);
    b.writeInt16BE(i16(f.format), off + 16);
    off += 18;
  }
  return b;
}

/** Strings are written as UTF-8 text values; buffers as they are; null as SQL NULL. */
export function dataRow(values: readonly (Buffer | string | null)[]): Buffer {
  let size = 2 + 4 * values.length;
  for (const v of values) {
    if (v === null) continue;
    size += typeof v === 'string' ? Buffer.byteLength(v) : v.length;
  }
  const b = alloc(BackendType.DataRow, size);
  b.writeUInt16BE(values.length & 0xffff, 5);
  let off = 7;
  for (const v of values) {
    if (v === null) {
      b.writeInt32BE(-1, off);
      off += 4;
    } else if (typeof v === 'string') {
      const n = b.write(v, off + 4, 'utf8');
      b.writeInt32BE(n, off);
      off += 4 + n;
    } else {
      b.writeInt32BE(v.length, off);
      v.copy(b, off + 4);
      off += 4 + v.length;
    }
  }
  return b;
}

export function parseComplete(): Buffer {
  return PARSE_COMPLETE;
}

export function bindComplete(): Buffer {
  return BIND_COMPLETE;
}

export function closeComplete(): Buffer {
  return CLOSE_COMPLETE;
}

export function noData(): Buffer {
  return NO_DATA;
}

export function portalSuspended(): Buffer {
  return PORTAL_SUSPENDED;
}

export function parameterDescription(oids: readonly number[]): Buffer {
  const b = alloc(BackendType.ParameterDescription, 2 + 4 * oids.length);
  b.writeUInt16BE(oids.length & 0xffff, 5);
  for (let i = 0; i < oids.length; i++) b.writeUInt32BE((oids[i] as number) >>> 0, 7 + 4 * i);
  return b;
}

function copyResponse(type: number, format: number, columnFormats: readonly number[]): Buffer {
  const b = alloc(type, 3 + 2 * columnFormats.length);
  b[5] = format & 0xff;
  b.writeUInt16BE(columnFormats.length & 0xffff, 6);
  for (let i = 0; i < columnFormats.length; i++) b.writeInt16BE(i16(columnFormats[i] as number), 8 + 2 * i);
  return b;
}

/** `format`: 0 text, 1 binary (then every column format must be 1). */
export function copyInResponse(format: number, columnFormats: readonly number[]): Buffer {
  return copyResponse(BackendType.CopyInResponse, format, columnFormats);
}

export function copyOutResponse(format: number, columnFormats: readonly number[]): Buffer {
  return copyResponse(BackendType.CopyOutResponse, format, columnFormats);
}

export function copyBothResponse(format: number, columnFormats: readonly number[]): Buffer {
  return copyResponse(BackendType.CopyBothResponse, format, columnFormats);
}

export function copyData(data: Buffer): Buffer {
  const b = alloc(BackendType.CopyData, data.length);
  data.copy(b, 5);
  return b;
}

export function copyDone(): Buffer {
  return COPY_DONE;
}

/**
 * Tells a client that asked for a newer 3.x minor version, or for `_pq_.` protocol options, what
 * the gateway speaks instead; PostgreSQL sends it right after the Startup message.
 */
export function negotiateProtocolVersion(newestMinor: number, unsupportedOptions: readonly string[]): Buffer {
  const opts = unsupportedOptions.map(cstr);
  let size = 8;
  for (const o of opts) size += Buffer.byteLength(o) + 1;
  const b = alloc(BackendType.NegotiateProtocolVersion, size);
  b.writeInt32BE(((3 << 16) | (newestMinor & 0xffff)) | 0, 5);
  b.writeInt32BE(opts.length, 9);
  let off = 13;
  for (const o of opts) off = putCString(b, off, o, Buffer.byteLength(o));
  return b;
}
