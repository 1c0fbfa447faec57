// Decoders for the bodies of the backend messages the gateway has to look inside (errors, notices, transaction status, result metadata and rows, auth); each returns a ProtocolError instead of throwing.
import type { ErrorFields, FieldDescription, Severity, TransactionStatus } from './backend-messages.js';
import { Cursor } from './cursor.js';
import { ProtocolError } from './errors.js';
import { TransactionStatusByte } from './message-types.js';

/** Decoding is synchronous and never re-entered, so one cursor serves every call. */
const cur = new Cursor();

function fault(what: string, c: Cursor): ProtocolError {
  const err = new ProtocolError(`invalid ${what} message: ${c.fault ?? 'malformed'}`);
  c.release();
  return err;
}

function begin(body: Buffer): Cursor {
  cur.reset(body, 0, body.length);
  return cur;
}

/** Ends a decode: checks that the body was consumed exactly and releases the buffer. */
function end(c: Cursor): boolean {
  c.finish();
  if (c.fault !== null) return false;
  c.release();
  return true;
}

/**
 * The raw fields of an ErrorResponse or NoticeResponse body, keyed by their one-letter codes
 * ('S', 'V', 'C', 'M', ...). Unknown codes are kept, as the protocol asks clients to tolerate them.
 */
export function decodeErrorFieldMap(body: Buffer): Record<string, string> | ProtocolError {
  const c = begin(body);
  const map = Object.create(null) as Record<string, string>;
  for (;;) {
    const code = c.u8();
    if (c.fault !== null) {
      c.fault = 'field list is not terminated';
      return fault('ErrorResponse/NoticeResponse', c);
    }
    if (code === 0) break;
    const value = c.cstring();
    if (c.fault !== null) return fault('ErrorResponse/NoticeResponse', c);
    map[String.fromCharCode(code)] = value;
  }
  if (!end(c)) return fault('ErrorResponse/NoticeResponse', c);
  return map;
}

const SEVERITIES: ReadonlySet<string> = new Set<Severity>(['ERROR', 'FATAL', 'PANIC', 'WARNING', 'NOTICE', 'DEBUG', 'INFO', 'LOG']);

type StringField = 'detail' | 'hint' | 'internalQuery' | 'where' | 'schema' | 'table' | 'column' | 'dataType' | 'constraint' | 'file' | 'routine';

const STRING_FIELDS: readonly [string, StringField][] = [
  ['D', 'detail'],
  ['H', 'hint'],
  ['q', 'internalQuery'],
  ['W', 'where'],
  ['s', 'schema'],
  ['t', 'table'],
  ['c', 'column'],
  ['d', 'dataType'],
  ['n', 'constraint'],
  ['F', 'file'],
  ['R', 'routine'],
];

const NUMBER_FIELDS: readonly [string, 'position' | 'internalPosition' | 'line'][] = [
  ['P', 'position'],
  ['p', 'internalPosition'],
  ['L', 'line'],
];

/**
 * The typed fields of an ErrorResponse or NoticeResponse body. Severity comes from 'V' (never
 * localised) and falls back to 'S'; `localizedSeverity` is set only when 'S' differs from it.
 * Missing severity, code or message, or a non-numeric position/line, is a ProtocolError.
 */
export function decodeErrorFields(body: Buffer): ErrorFields | ProtocolError {
  const map = decodeErrorFieldMap(body);
  if (map instanceof ProtocolError) return map;
  const v = map.V;
  const s = map.S;
  const severity = v !== undefined ? v : s;
  if (severity === undefined || !SEVERITIES.has(severity)) {
    return new ProtocolError(`invalid ErrorResponse/NoticeResponse message: unknown severity ${JSON.stringify(severity ?? null)}`);
  }
  const code = map.C;
  const message = map.M;
  if (code === undefined || message === undefined) {
    return new ProtocolError(`invalid ErrorResponse/NoticeResponse message: missing ${code === undefined ? "code ('C')" : "message ('M')"} field`);
  }
  const fields: ErrorFields = { severity: severity as Severity, code, message };
  if (s !== undefined && s !== severity) fields.localizedSeverity = s;
  for (const [k, name] of STRING_FIELDS) {
    const val = map[k];
    if (val !== undefined) fields[name] = val;
  }
  for (const [k, name] of NUMBER_FIELDS) {
    const val = map[k];
    if (val === undefined) continue;
    if (!/^\d{1,15}$/.test(val)) {
      return new ProtocolError(`invalid ErrorResponse/NoticeResponse message: field '${k}' is not a number: ${JSON.stringify(val)}`);
    }
    fields[name] = Number(val);
  }
  return fields;
}

/** The transaction status of a ReadyForQuery body. */
export function readyForQueryStatus(body: Buffer): TransactionStatus | ProtocolError {
  if (body.length !== 1) return new ProtocolError(`invalid ReadyForQuery message: body of ${body.length} bytes`);
  const b = body[0];
  if (b === TransactionStatusByte.Idle) return 'I';
  if (b === TransactionStatusByte.InTransaction) return 'T';
  if (b === TransactionStatusByte.Failed) return 'E';
  return new ProtocolError(`invalid ReadyForQuery message: unknown transaction status 0x${(b as number).toString(16).padStart(2, '0')}`);
}

export function decodeRowDescription(body: Buffer): FieldDescription[] | ProtocolError {
  const c = begin(body);
  const n = c.u16();
  const fields: FieldDescription[] = [];
  // 19 bytes is the smallest field: an empty name and 18 bytes of numbers.
  if (n * 19 > c.remaining) c.fail(`${n} fields overflow the message`);
  for (let i = 0; i < n && c.fault === null; i++) {
    const name = c.cstring();
    fields.push({
      name,
      tableOid: c.u32(),
      columnAttr: c.i16(),
      typeOid: c.u32(),
      typeSize: c.i16(),
      typeModifier: c.i32(),
      format: c.i16(),
    });
  }
  if (!end(c)) return fault('RowDescription', c);
  return fields;
}

/** Column values as views into `body` (no copies); null for SQL NULL. */
export function decodeDataRow(body: Buffer): (Buffer | null)[] | ProtocolError {
  const c = begin(body);
  const n = c.u16();
  const values: (Buffer | null)[] = [];
  if (n * 4 > c.remaining) c.fail(`${n} columns overflow the message`);
  for (let i = 0; i < n && c.fault === null; i++) {
    const len = c.i32();
    if (len === -1) values.push(null);
    else if (len < -1) c.fail(`column ${i + 1} has length ${len}`);
    else values.push(c.bytes(len));
  }
  if (!end(c)) return fault('DataRow', c);
  return values;
}

export function decodeCommandComplete(body: Buffer): string | ProtocolError {
  const c = begin(body);
  const tag = c.cstring();
  if (!end(c)) return fault('CommandComplete', c);
  return tag;
}

export function decodeParameterStatus(body: Buffer): { name: string; value: string } | ProtocolError {
  const c = begin(body);
  const name = c.cstring();
  const value = c.cstring();
  if (!end(c)) return fault('ParameterStatus', c);
  return { name, value };
}

/** `secretKey` is a view into `body`: 4 bytes in protocol 3.0, up to 256 in 3.2. */
export function decodeBackendKeyData(body: Buffer): { processId: number; secretKey: Buffer } | ProtocolError {
  const c = begin(body);
  const processId = c.i32();
  if (c.remaining < 4 || c.remaining > 256) c.fail(`secret key of ${c.remaining} bytes`);
  const secretKey = c.rest();
  if (!end(c)) return fault('BackendKeyData', c);
  return { processId, secretKey };
}

export function decodeParameterDescription(body: Buffer): number[] | ProtocolError {
  const c = begin(body);
  const n = c.u16();
  const oids: number[] = [];
  if (n * 4 > c.remaining) c.fail(`${n} parameters overflow the message`);
  for (let i = 0; i < n && c.fault === null; i++) oids.push(c.u32());
  if (!end(c)) return fault('ParameterDescription', c);
  return oids;
}

export type AuthenticationRequest =
  | { kind: 'ok' }
  | { kind: 'cleartextPassword' }
  | { kind: 'md5Password'; salt: Buffer }
  | { kind: 'sasl'; mechanisms: string[] }
  | { kind: 'saslContinue'; data: Buffer }
  | { kind: 'saslFinal'; data: Buffer }
  | { kind: 'other'; code: number; data: Buffer };

/**
 * An Authentication ('R') body. Methods the gateway does not implement upstream (Kerberos, GSS,
 * SSPI, SCM) come back as `other` so the caller can name them in its error. Buffers are views.
 */
export function decodeAuthentication(body: Buffer): AuthenticationRequest | ProtocolError {
  const c = begin(body);
  const code = c.i32();
  let req: AuthenticationRequest;
  switch (code) {
    case 0:
      req = { kind: 'ok' };
      break;
    case 3:
      req = { kind: 'cleartextPassword' };
      break;
    case 5:
      req = { kind: 'md5Password', salt: c.bytes(4) };
      break;
    case 10: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = c.cstring();
        if (c.fault !== null || m === '') break;
        mechanisms.push(m);
      }
      if (c.fault === null && mechanisms.length === 0) c.fail('no SASL mechanisms');
      req = { kind: 'sasl', mechanisms };
      break;
    }
    case 11:
      req = { kind: 'saslContinue', data: c.rest() };
      break;
    case 12:
      req = { kind: 'saslFinal', data: c.rest() };
      break;
    default:
      req = { kind: 'other', code, data: c.rest() };
  }
  if (!end(c)) return fault('Authentication', c);
  return req;
}
