// Startup-phase wire helpers: our StartupMessage, whole-message framing of backend bytes, decoding.
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { ProtocolViolation } from './errors.js';

/** Protocol 3.0: the only version we ask for, so the server never needs NegotiateProtocolVersion. */
const PROTOCOL_3_0 = 196608;

// The session's identity is the connection's, never the client's; a replication connection would
// bypass statement-level policy; `_pq_.` options would require protocol negotiation we do not do.
const RESERVED_PARAMS = new Set(['user', 'database', 'replication']);

/**
 * The StartupMessage. pg-protocol's `serialize.startup` always appends `client_encoding=UTF8` after
 * the caller's parameters, which overrides a client's own choice, so this one adds UTF8 only when the
 * caller passed no client_encoding.
 */
export function startupMessage(user: string, database: string, params: Record<string, string>): Buffer {
  const pairs: Array<[string, string]> = [['user', user], ['database', database]];
  let hasEncoding = false;
  for (const [key, value] of Object.entries(params)) {
    if (RESERVED_PARAMS.has(key) || key.startsWith('_pq_.')) continue;
    if (key === 'client_encoding') hasEncoding = true;
    pairs.push([key, value]);
  }
  if (!hasEncoding) pairs.push(['client_encoding', 'UTF8']);
  const parts: Buffer[] = [Buffer.alloc(8)];
  for (const [key, value] of pairs) {
    if (key === '' || key.includes('\0') || value.includes('\0')) {
      throw new ProtocolViolation(`startup parameter ${JSON.stringify(key)} is empty or contains a NUL byte`);
    }
    parts.push(Buffer.from(`${key}\0${value}\0`, 'utf8'));
  }
  parts.push(Buffer.from([0]));
  const message = Buffer.concat(parts);
  message.writeInt32BE(message.length, 0);
  message.writeInt32BE(PROTOCOL_3_0, 4);
  return message;
}

/** One backend message: its type character and its whole bytes (type, length and body). */
export interface Frame {
  code: string;
  bytes: Buffer;
}

/** Message types a server may send before the first ReadyForQuery. */
const STARTUP_CODES = new Set(['R', 'E', 'N', 'S', 'K', 'Z', 'v']);

/** Larger than any real startup message; a garbage length is caught before we wait for its bytes. */
export const MAX_STARTUP_MESSAGE = 1 << 20;

/**
 * Cuts the first whole message off `buf`, or returns undefined when more bytes are needed. Unknown
 * types and impossible lengths are rejected at once, so a non-PostgreSQL peer fails fast.
 */
export function takeFrame(buf: Buffer): Frame | undefined {
  const first = buf[0];
  if (first === undefined) return undefined;
  const code = String.fromCharCode(first);
  if (!STARTUP_CODES.has(code)) {
    throw new ProtocolViolation(`server sent an unexpected message type 0x${first.toString(16).padStart(2, '0')} during startup; is it PostgreSQL?`);
  }
  if (buf.length < 5) return undefined;
  const length = buf.readUInt32BE(1);
  if (length < 4 || length > MAX_STARTUP_MESSAGE) {
    throw new ProtocolViolation(`server sent a '${code}' message with an invalid length ${length}; is it PostgreSQL?`);
  }
  if (buf.length < 1 + length) return undefined;
  return { code, bytes: buf.subarray(0, 1 + length) };
}

/** Decodes one whole frame with pg-protocol's backend parser (a fresh one, so a bad frame leaves no state). */
export function decodeFrame(frame: Frame): BackendMessage {
  let message: BackendMessage | undefined;
  try {
    new Parser().parse(frame.bytes, (m) => {
      message = m;
    });
  } catch (err) {
    throw new ProtocolViolation(`server sent a malformed '${frame.code}' message (${(err as Error).message})`);
  }
  if (!message) throw new ProtocolViolation(`server sent a truncated '${frame.code}' message`);
  return message;
}

/** Authentication request codes we name in errors; the ones we implement are 0, 3, 5, 10, 11, 12. */
export const AUTH_METHOD_NAMES: Record<number, string> = {
  0: 'AuthenticationOk',
  2: 'Kerberos V5',
  3: 'cleartext password',
  5: 'MD5 password',
  6: 'SCM credentials',
  7: 'GSSAPI',
  8: 'GSSAPI continuation',
  9: 'SSPI',
  10: 'SASL',
  11: 'SASL continuation',
  12: 'SASL final',
};

/** pg-protocol's name for each implemented request code; anything else in an 'R' frame is refused. */
export const AUTH_MESSAGE_NAMES: Record<number, string> = {
  0: 'authenticationOk',
  3: 'authenticationCleartextPassword',
  5: 'authenticationMD5Password',
  10: 'authenticationSASL',
  11: 'authenticationSASLContinue',
  12: 'authenticationSASLFinal',
};
