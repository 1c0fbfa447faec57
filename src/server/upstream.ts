// Opens the gateway's own connection to the real PostgreSQL (TCP or TLS, startup, authentication).
import net from 'node:net';
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import { serialize, type DatabaseError } from 'pg-protocol';
import type {
  AuthenticationMD5Password, BackendKeyDataMessage, ParameterStatusMessage, ReadyForQueryMessage,
} from 'pg-protocol/dist/messages.js';
import {
  ProtocolViolation, SQLSTATE_CONNECTION_FAILURE, SQLSTATE_INVALID_AUTHORIZATION, SQLSTATE_PROTOCOL_VIOLATION,
  UpstreamError, errorFields, type UpstreamErrorKind,
} from './upstream/errors.js';
import { AUTH_MESSAGE_NAMES, AUTH_METHOD_NAMES, decodeFrame, startupMessage, takeFrame, type Frame } from './upstream/frames.js';
import { SCRAM_SHA_256, ScramClient, ScramError } from './upstream/scram.js';

export { UpstreamError, type UpstreamErrorKind } from './upstream/errors.js';
export { parseUpstreamUrl, type UpstreamUrlParts } from './upstream/url.js';

export interface UpstreamTarget {
  host: string;
  port: number;
  user: string;
  database: string;
  password?: string;
  tls: 'disable' | 'require' | 'verify-full';
  /** PEM for verify-full; the system roots when absent. */
  ca?: string | Buffer;
  /** Deadline for the whole startup (TCP, TLS, authentication, first ReadyForQuery). Default 10 s. */
  connectTimeoutMs?: number;
}

export interface UpstreamSession {
  /** A tls.TLSSocket when TLS is on; paused, with no listeners of ours left attached. */
  socket: net.Socket;
  /** Every ParameterStatus received during startup, in arrival order. */
  parameters: Map<string, string>;
  /** For cancelUpstream. processId 0 and an empty key if the server sent no BackendKeyData. */
  backendKey: { processId: number; secretKey: Buffer };
  /** From the first ReadyForQuery. */
  transactionStatus: 'I' | 'T' | 'E';
  /** Raw NoticeResponse messages received during startup, to relay to the client. */
  notices: Buffer[];
  /** Bytes read after the first ReadyForQuery (normally empty); they belong to the relay. */
  leftover: Buffer;
  tls: boolean;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const KEEPALIVE_DELAY_MS = 30_000;
const EMPTY = Buffer.alloc(0);

type Listener = (...args: unknown[]) => void;

type Phase = 'connect' | 'ssl' | 'tls' | 'auth' | 'startup' | 'cancel';

const PHASE_TEXT: Record<Phase, string> = {
  connect: 'connecting',
  ssl: 'waiting for the answer to SSLRequest',
  tls: 'during the TLS handshake',
  auth: 'during authentication',
  startup: 'waiting for the server to become ready',
  cancel: 'sending the cancel request',
};

function hostPort(target: Pick<UpstreamTarget, 'host' | 'port'>): string {
  return net.isIPv6(target.host) ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

const NET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed (temporary DNS failure)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset by the server',
  EPIPE: 'connection closed by the server',
  ETIMEDOUT: 'connection timed out',
};

function describeNetError(err: unknown): string {
  // With autoSelectFamily, Node reports one AggregateError for all the addresses it tried.
  const first = err instanceof AggregateError && err.errors.length > 0 ? err.errors[0] : err;
  const code = (first as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && NET_ERRORS[code]) return `${NET_ERRORS[code]} (${code})`;
  return first instanceof Error ? first.message : String(first);
}

function connectTimeout(target: UpstreamTarget): number {
  const ms = target.connectTimeoutMs;
  return ms !== undefined && Number.isFinite(ms) && ms > 0 ? ms : DEFAULT_CONNECT_TIMEOUT_MS;
}

/**
 * One TCP (then maybe TLS) connection during startup: collects bytes, hands out whole messages, and
 * turns every socket event, the deadline and protocol breakage into a single UpstreamError.
 */
class StartupWire {
  phase: Phase = 'connect';
  raw: net.Socket | undefined;
  socket: net.Socket | undefined;
  private buf: Buffer = EMPTY;
  private wake: (() => void) | undefined;
  private failure: UpstreamError | undefined;
  private rejectFailed!: (err: UpstreamError) => void;
  /** Rejects with the first failure; raced against every wait so nothing outlives the deadline. */
  readonly failed = new Promise<never>((_resolve, reject) => {
    this.rejectFailed = reject;
  });
  private readonly timer: NodeJS.Timeout;
  private readonly attached: Array<[net.Socket, string, Listener]> = [];

  constructor(
    readonly target: UpstreamTarget,
    private readonly timeoutMs: number,
  ) {
    this.failed.catch(() => {});
    this.timer = setTimeout(() => {
      const doing = this.phase === 'connect' ? 'connecting' : PHASE_TEXT[this.phase];
      this.fail(this.error('timeout', SQLSTATE_CONNECTION_FAILURE, `timed out after ${this.timeoutMs} ms ${doing}`));
    }, timeoutMs);
    this.timer.unref();
  }

  error(kind: UpstreamErrorKind, sqlstate: string, what: string, fields?: Record<string, string>, cause?: unknown): UpstreamError {
    return new UpstreamError(kind, sqlstate, `cannot connect to PostgreSQL at ${hostPort(this.target)}: ${what}`, fields, { cause, reason: what });
  }

  fail(err: UpstreamError): void {
    if (this.failure) return;
    this.failure = err;
    clearTimeout(this.timer);
    this.socket?.destroy();
    this.raw?.destroy();
    this.rejectFailed(err);
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private on<A extends unknown[]>(socket: net.Socket, event: string, handler: (...args: A) => void): void {
    const listener = handler as Listener;
    socket.on(event, listener);
    this.attached.push([socket, event, listener]);
  }

  private detach(socket: net.Socket, events?: string[]): void {
    for (let i = this.attached.length - 1; i >= 0; i--) {
      const entry = this.attached[i];
      if (!entry || entry[0] !== socket || (events && !events.includes(entry[1]))) continue;
      socket.removeListener(entry[1], entry[2]);
      this.attached.splice(i, 1);
    }
  }

  /** Listens on `socket` for bytes and for its death, described according to the phase it dies in. */
  private listen(socket: net.Socket): void {
    this.on(socket, 'data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.wakeUp();
    });
    this.on(socket, 'error', (err: Error) => {
      if (this.phase === 'connect') {
        this.fail(this.error('unreachable', SQLSTATE_CONNECTION_FAILURE, describeNetError(err), undefined, err));
      } else if (this.phase === 'tls') {
        this.fail(this.error('tls', SQLSTATE_CONNECTION_FAILURE, `TLS handshake failed: ${err.message}`, undefined, err));
      } else {
        this.fail(this.error('unreachable', SQLSTATE_CONNECTION_FAILURE,
          `connection lost ${PHASE_TEXT[this.phase]}: ${describeNetError(err)}`, undefined, err));
      }
    });
    this.on(socket, 'close', () => {
      // Bytes already received (an ErrorResponse before the close, typically) are read first.
      const kind = this.phase === 'tls' ? 'tls' : 'unreachable';
      this.fail(this.error(kind, SQLSTATE_CONNECTION_FAILURE, `server closed the connection ${PHASE_TEXT[this.phase]}`));
    });
  }

  /** Waits for `promise`, or fails with the wire's failure (deadline, socket error) first. */
  until<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.failed]);
  }

  send(bytes: Buffer): void {
    if (this.failure) throw this.failure;
    this.socket?.write(bytes);
  }

  private async more(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  /** The next whole backend message. */
  async next(): Promise<Frame> {
    for (;;) {
      let frame: Frame | undefined;
      try {
        frame = takeFrame(this.buf);
      } catch (err) {
        throw this.violation(err);
      }
      if (frame) {
        this.buf = this.buf.subarray(frame.bytes.length);
        return frame;
      }
      await this.more();
    }
  }

  violation(err: unknown): UpstreamError {
    if (err instanceof UpstreamError) return err;
    if (err instanceof ProtocolViolation) return this.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, err.message);
    return this.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, `unexpected failure: ${(err as Error).message}`, undefined, err);
  }

  /** The server's ErrorResponse as an UpstreamError: 'auth' for the authorization class, else 'server'. */
  serverError(frame: Frame): UpstreamError {
    const message = decodeFrame(frame) as DatabaseError;
    const fields = errorFields(message);
    const sqlstate = fields.C ?? 'XX000';
    const kind = sqlstate === '28000' || sqlstate === '28P01' ? 'auth' : 'server';
    return this.error(kind, sqlstate, `${fields.M ?? 'server reported an error'} (${sqlstate})`, fields);
  }

  /**
   * TCP connect, then SSLRequest and the TLS handshake unless TLS is disabled. On return `socket` is
   * the stream to speak the protocol on.
   */
  async open(): Promise<void> {
    const { target } = this;
    let raw: net.Socket;
    try {
      raw = net.connect({ host: target.host, port: target.port });
    } catch (err) {
      // Invalid host or port values throw synchronously.
      throw this.error('unreachable', SQLSTATE_CONNECTION_FAILURE, (err as Error).message, undefined, err);
    }
    this.raw = raw;
    this.socket = raw;
    raw.setNoDelay(true);
    raw.setKeepAlive(true, KEEPALIVE_DELAY_MS);
    this.listen(raw);
    await this.until(new Promise<void>((resolve) => raw.once('connect', () => resolve())));
    if (target.tls === 'disable') return;

    this.phase = 'ssl';
    this.send(serialize.requestSsl());
    while (this.buf.length === 0) await this.more();
    const answer = String.fromCharCode(this.buf[0] ?? 0);
    if (answer === 'E') {
      // A server that cannot even start a backend (fork failure) answers with an ErrorResponse.
      const frame = await this.next();
      throw this.serverError(frame);
    }
    if (answer === 'N') {
      throw this.error('tls', SQLSTATE_CONNECTION_FAILURE, `server does not accept TLS connections but tls is '${target.tls}'`);
    }
    if (answer !== 'S') {
      throw this.error('protocol', SQLSTATE_PROTOCOL_VIOLATION,
        `server answered SSLRequest with 0x${(this.buf[0] ?? 0).toString(16).padStart(2, '0')}; is it PostgreSQL?`);
    }
    if (this.buf.length > 1) {
      // Bytes sent before the handshake would be trusted as if encrypted (CVE-2021-23222).
      throw this.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, 'server sent unencrypted data after accepting TLS');
    }
    this.buf = EMPTY;
    this.detach(raw, ['data']);

    this.phase = 'tls';
    const verify = target.tls === 'verify-full';
    const isIp = net.isIP(target.host) !== 0;
    let secure: tls.TLSSocket;
    try {
      secure = tls.connect({
        socket: raw,
        // SNI cannot carry an IP address; the identity check below still compares the IP to the certificate.
        servername: isIp ? undefined : target.host,
        rejectUnauthorized: verify,
        ca: verify ? target.ca : undefined,
        checkServerIdentity: (_servername, cert) => tls.checkServerIdentity(target.host, cert),
      });
    } catch (err) {
      throw this.error('tls', SQLSTATE_CONNECTION_FAILURE, `TLS setup failed: ${(err as Error).message}`, undefined, err);
    }
    this.socket = secure;
    this.listen(secure);
    await this.until(new Promise<void>((resolve) => secure.once('secureConnect', () => resolve())));
    if (verify && !secure.authorized) {
      throw this.error('tls', SQLSTATE_CONNECTION_FAILURE,
        `server certificate not trusted: ${String(secure.authorizationError ?? 'unknown reason')}`);
    }
  }

  /** Hands the socket over: no deadline, none of our listeners, paused, unread bytes returned. */
  release(): { socket: net.Socket; leftover: Buffer } {
    clearTimeout(this.timer);
    for (const [socket, event, listener] of this.attached) socket.removeListener(event, listener);
    this.attached.length = 0;
    const socket = this.socket as net.Socket;
    socket.pause();
    const leftover = this.buf.length === 0 ? EMPTY : Buffer.from(this.buf);
    this.buf = EMPTY;
    return { socket, leftover };
  }

  destroy(): void {
    clearTimeout(this.timer);
    this.socket?.destroy();
    this.raw?.destroy();
  }
}

function md5hex(data: string | Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/**
 * Opens an authenticated upstream session ready for relaying. `startupParams` are passed through
 * to the server (application_name, client_encoding, DateStyle, options, ...); `user`, `database`,
 * `replication` and `_pq_.*` among them are ignored because the target decides those.
 */
export async function connectUpstream(target: UpstreamTarget, startupParams: Record<string, string> = {}): Promise<UpstreamSession> {
  const wire = new StartupWire(target, connectTimeout(target));
  try {
    let startup: Buffer;
    try {
      startup = startupMessage(target.user, target.database, startupParams);
    } catch (err) {
      throw wire.violation(err);
    }
    await wire.open();
    wire.phase = 'auth';
    wire.send(startup);
    return await authenticate(wire, target);
  } catch (err) {
    const failure = wire.violation(err);
    wire.fail(failure);
    throw failure;
  }
}

async function authenticate(wire: StartupWire, target: UpstreamTarget): Promise<UpstreamSession> {
  const parameters = new Map<string, string>();
  const notices: Buffer[] = [];
  let backendKey: UpstreamSession['backendKey'] | undefined;
  let scram: ScramClient | undefined;
  const needPassword = (method: string): string => {
    if (target.password !== undefined) return target.password;
    throw wire.error('auth', SQLSTATE_INVALID_AUTHORIZATION,
      `server requires ${method} authentication for user "${target.user}" but the connection's password is not configured`);
  };

  for (;;) {
    const frame = await wire.next();
    switch (frame.code) {
      case 'E':
        throw wire.serverError(frame);
      case 'N':
        notices.push(Buffer.from(frame.bytes));
        break;
      case 'v':
        throw wire.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, 'server does not support protocol version 3.0');
      case 'R': {
        if (wire.phase !== 'auth') throw wire.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, 'server sent an authentication request after AuthenticationOk');
        if (frame.bytes.length < 9) throw wire.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, 'server sent a truncated authentication request');
        const code = frame.bytes.readInt32BE(5);
        const expected = AUTH_MESSAGE_NAMES[code];
        if (expected === undefined) {
          const method = AUTH_METHOD_NAMES[code] ?? `unknown method (code ${code})`;
          throw wire.error('auth', SQLSTATE_INVALID_AUTHORIZATION, `server requires ${method} authentication, which phigate does not support`);
        }
        const message = decodeFrame(frame);
        // pg-protocol reads a wrongly sized request as AuthenticationOk; never let that slip through.
        if (message.name !== expected) throw wire.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, `server sent a malformed authentication request (code ${code})`);
        await answerAuth(wire, target, message, needPassword, scram, (c) => (scram = c));
        break;
      }
      case 'S': {
        const status = decodeFrame(frame) as ParameterStatusMessage;
        parameters.set(status.parameterName, status.parameterValue);
        break;
      }
      case 'K': {
        if (frame.bytes.length !== 13) throw wire.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, 'server sent BackendKeyData of an unexpected size');
        const key = decodeFrame(frame) as BackendKeyDataMessage;
        const secretKey = Buffer.alloc(4);
        secretKey.writeInt32BE(key.secretKey, 0);
        backendKey = { processId: key.processID, secretKey };
        break;
      }
      case 'Z': {
        if (wire.phase !== 'startup') throw wire.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, 'server sent ReadyForQuery before authentication completed');
        const ready = decodeFrame(frame) as ReadyForQueryMessage;
        if (ready.status !== 'I' && ready.status !== 'T' && ready.status !== 'E') {
          throw wire.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, `server sent ReadyForQuery with an invalid status ${JSON.stringify(ready.status)}`);
        }
        const { socket, leftover } = wire.release();
        return {
          socket, parameters, notices, leftover,
          backendKey: backendKey ?? { processId: 0, secretKey: EMPTY },
          transactionStatus: ready.status,
          tls: target.tls !== 'disable',
        };
      }
      default:
        throw wire.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, `server sent an unexpected '${frame.code}' message during startup`);
    }
  }
}

type AuthMessage = ReturnType<typeof decodeFrame> & { mechanisms?: string[]; data?: string };

async function answerAuth(
  wire: StartupWire,
  target: UpstreamTarget,
  message: AuthMessage,
  needPassword: (method: string) => string,
  scram: ScramClient | undefined,
  setScram: (client: ScramClient) => void,
): Promise<void> {
  const protocolError = (what: string) => wire.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, what);
  try {
    switch (message.name) {
      case 'authenticationOk':
        // A server that skips the end of SCRAM has not proven it knows the password: refuse it.
        if (scram && !scram.serverVerified) {
          throw wire.error('auth', SQLSTATE_INVALID_AUTHORIZATION, 'server accepted the login without completing SCRAM authentication');
        }
        wire.phase = 'startup';
        return;
      case 'authenticationCleartextPassword':
        if (scram) throw protocolError('server switched authentication method mid-exchange');
        wire.send(serialize.password(needPassword('password')));
        return;
      case 'authenticationMD5Password': {
        if (scram) throw protocolError('server switched authentication method mid-exchange');
        const password = needPassword('MD5 password');
        const salt = (message as AuthenticationMD5Password).salt;
        const hashed = md5hex(Buffer.concat([Buffer.from(md5hex(password + target.user)), salt]));
        wire.send(serialize.password(`md5${hashed}`));
        return;
      }
      case 'authenticationSASL': {
        if (scram) throw protocolError('server restarted SASL authentication mid-exchange');
        const mechanisms = message.mechanisms ?? [];
        if (!mechanisms.includes(SCRAM_SHA_256)) {
          const offered = mechanisms.length > 0 ? mechanisms.join(', ') : 'no mechanism';
          throw wire.error('auth', SQLSTATE_INVALID_AUTHORIZATION,
            `server offers SASL ${offered}, which phigate does not support (it speaks SCRAM-SHA-256 without channel binding)`);
        }
        const client = new ScramClient(needPassword('SCRAM-SHA-256'));
        setScram(client);
        wire.send(serialize.sendSASLInitialResponseMessage(SCRAM_SHA_256, client.clientFirst()));
        return;
      }
      case 'authenticationSASLContinue': {
        if (!scram) throw protocolError('server sent a SASL challenge without starting SASL');
        const final = await wire.until(scram.clientFinal(message.data ?? ''));
        wire.send(serialize.sendSCRAMClientFinalMessage(final));
        return;
      }
      case 'authenticationSASLFinal':
        if (!scram) throw protocolError('server sent a SASL outcome without starting SASL');
        scram.verifyServerFinal(message.data ?? '');
        return;
      default:
        throw protocolError(`server sent an unexpected authentication message ${message.name}`);
    }
  } catch (err) {
    if (err instanceof ScramError) {
      throw err.kind === 'auth'
        ? wire.error('auth', SQLSTATE_INVALID_AUTHORIZATION, `SCRAM authentication failed: ${err.message}`)
        : protocolError(err.message);
    }
    throw err;
  }
}

/**
 * Asks the server to cancel the query running on `backendKey`'s backend: a CancelRequest on a fresh
 * connection, over TLS when the target uses TLS (as libpq does). Resolves once the server has closed
 * that connection, which it does after acting on the request; the outcome is seen on the session.
 */
export async function cancelUpstream(target: UpstreamTarget, backendKey: { processId: number; secretKey: Buffer }): Promise<void> {
  const wire = new StartupWire(target, connectTimeout(target));
  try {
    let request: Buffer;
    if (backendKey.secretKey.length === 4) {
      request = serialize.cancel(backendKey.processId, backendKey.secretKey.readInt32BE(0));
    } else if (backendKey.secretKey.length === 0) {
      throw wire.error('protocol', SQLSTATE_PROTOCOL_VIOLATION, 'cannot cancel: the server sent no BackendKeyData for this session');
    } else {
      // Protocol 3.2 keys may be up to 256 bytes; the request layout is the same with a longer key.
      request = Buffer.alloc(12 + backendKey.secretKey.length);
      request.writeInt32BE(request.length, 0);
      request.writeInt32BE(80877102, 4);
      request.writeInt32BE(backendKey.processId, 8);
      backendKey.secretKey.copy(request, 12);
    }
    await wire.open();
    wire.phase = 'cancel';
    const socket = wire.socket as net.Socket;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    wire.send(request);
    // The server answers nothing: its closing the connection is the acknowledgement.
    await Promise.race([closed, wire.failed.catch((err: UpstreamError) => {
      if (err.kind !== 'unreachable') throw err;
    })]);
  } catch (err) {
    throw wire.violation(err);
  } finally {
    wire.destroy();
  }
}
