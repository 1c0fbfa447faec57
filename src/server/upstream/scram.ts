// SCRAM-SHA-256 client (RFC 5802/7677) as PostgreSQL speaks it: pure message functions, no I/O.
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** A SCRAM message the client cannot accept: 'protocol' when malformed, 'auth' when the server failed to prove itself. */
export class ScramError extends Error {
  constructor(readonly kind: 'auth' | 'protocol', message: string) {
    super(message);
  }
}

// RFC 3454 table C.1.2: non-ASCII spaces, which SASLprep maps to U+0020.
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
// RFC 3454 table B.1: characters mapped to nothing.
// U+200B is in both tables; like pg_saslprep, the space mapping wins.
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
// RFC 3454 tables C.2-C.9 (controls, private use, surrogates, non-characters, tagging and
// direction-changing characters). Table A.1 (unassigned in Unicode 3.2) is not checked.
const PROHIBITED =
  /[\u0000-\u001F\u007F-\u009F\u06DD\u070F\u180E\u200E\u200F\u2028-\u202E\u2060-\u2063\u206A-\u206F\u2FF0-\u2FFB\uD800-\uDFFF\uE000-\uF8FF\uFDD0-\uFDEF\uFEFF\uFFF9-\uFFFF\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}\u{F0000}-\u{10FFFF}]|[\u{1FFFE}\u{1FFFF}\u{2FFFE}\u{2FFFF}\u{3FFFE}\u{3FFFF}\u{4FFFE}\u{4FFFF}\u{5FFFE}\u{5FFFF}\u{6FFFE}\u{6FFFF}\u{7FFFE}\u{7FFFF}\u{8FFFE}\u{8FFFF}\u{9FFFE}\u{9FFFF}\u{AFFFE}\u{AFFFF}\u{BFFFE}\u{BFFFF}\u{CFFFE}\u{CFFFF}\u{DFFFE}\u{DFFFF}\u{EFFFE}\u{EFFFF}]/u;

/**
 * SASLprep (RFC 4013) the way PostgreSQL's pg_saslprep applies it to SCRAM passwords: pure ASCII is
 * used as is, and a password that SASLprep would reject is used unnormalized rather than refused
 * (the server stored its verifier the same way). The bidirectional-text rule is not checked; such
 * passwords normalize to the same NFKC form in practice.
 */
export function saslprep(password: string): string {
  if (/^[\x00-\x7F]*$/.test(password)) return password;
  const mapped = password.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ').normalize('NFKC');
  if (PROHIBITED.test(mapped)) return password;
  return mapped;
}

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

// Printable ASCII except ',' (RFC 5802 `printable`), which every nonce must be.
const PRINTABLE = /^[\x21-\x2B\x2D-\x7E]+$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function parseAttributes(message: string, what: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of message.split(',')) {
    const m = /^([A-Za-z])=(.*)$/s.exec(part);
    if (!m || m[1] === undefined || m[2] === undefined) {
      throw new ScramError('protocol', `malformed SCRAM ${what}`);
    }
    if (!attrs.has(m[1])) attrs.set(m[1], m[2]);
  }
  return attrs;
}

/** Iteration counts above this are refused: a hostile server could otherwise pin a CPU for minutes. */
export const MAX_SCRAM_ITERATIONS = 10_000_000;

/**
 * One SCRAM-SHA-256 exchange without channel binding (gs2 header `n,,`). PostgreSQL ignores the
 * SCRAM user name in favour of the startup packet's, so it is empty by default, as in libpq.
 */
export class ScramClient {
  private readonly clientNonce: string;
  private readonly clientFirstBare: string;
  private expectedServerSignature: Buffer | undefined;
  private verified = false;

  constructor(
    private readonly password: string,
    options: { user?: string; nonce?: string } = {},
  ) {
    this.clientNonce = options.nonce ?? randomBytes(18).toString('base64');
    const user = (options.user ?? '').replace(/=/g, '=3D').replace(/,/g, '=2C');
    this.clientFirstBare = `n=${user},r=${this.clientNonce}`;
  }

  /** The client-first-message, sent in SASLInitialResponse. */
  clientFirst(): string {
    return `n,,${this.clientFirstBare}`;
  }

  /** Answers the server-first-message (from SASLContinue) with the client-final-message. */
  async clientFinal(serverFirst: string): Promise<string> {
    const attrs = parseAttributes(serverFirst, 'server-first-message');
    if (attrs.has('m')) throw new ScramError('protocol', 'server requires an unsupported SCRAM extension');
    const nonce = attrs.get('r');
    const saltB64 = attrs.get('s');
    const iterText = attrs.get('i');
    if (nonce === undefined || saltB64 === undefined || iterText === undefined) {
      throw new ScramError('protocol', 'SCRAM server-first-message lacks its nonce, salt or iteration count');
    }
    // A server nonce that does not extend ours means the reply is not to this exchange.
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length || !PRINTABLE.test(nonce)) {
      throw new ScramError('auth', 'server sent a SCRAM nonce that does not extend the client nonce');
    }
    if (saltB64 === '' || !BASE64.test(saltB64)) throw new ScramError('protocol', 'SCRAM salt is not valid base64');
    if (!/^[1-9][0-9]*$/.test(iterText)) throw new ScramError('protocol', 'SCRAM iteration count is not a positive integer');
    const iterations = Number(iterText);
    if (iterations > MAX_SCRAM_ITERATIONS) {
      throw new ScramError('protocol', `SCRAM iteration count ${iterations} exceeds the limit of ${MAX_SCRAM_ITERATIONS}`);
    }
    const salted = await pbkdf2Async(
      Buffer.from(saslprep(this.password), 'utf8'), Buffer.from(saltB64, 'base64'), iterations, 32, 'sha256',
    );
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks the server-final-message (from SASLFinal): the server must prove it knows the verifier. */
  verifyServerFinal(serverFinal: string): void {
    if (!this.expectedServerSignature) throw new ScramError('protocol', 'SCRAM final message arrived before the challenge');
    const attrs = parseAttributes(serverFinal, 'server-final-message');
    const error = attrs.get('e');
    if (error !== undefined) throw new ScramError('auth', `server rejected the SCRAM exchange: ${error}`);
    const v = attrs.get('v');
    if (v === undefined || !BASE64.test(v)) throw new ScramError('protocol', 'SCRAM server-final-message lacks a valid signature');
    const got = Buffer.from(v, 'base64');
    if (got.length !== this.expectedServerSignature.length || !timingSafeEqual(got, this.expectedServerSignature)) {
      throw new ScramError('auth', 'server signature does not match: the server does not know this password');
    }
    this.verified = true;
  }

  /** True once the server has proven itself; AuthenticationOk before this is not to be trusted. */
  get serverVerified(): boolean {
    return this.verified;
  }
}
