// One client session on the server: a tunnel stream (WebSocket) on one side, an upstream PostgreSQL
// connection opened with the connection's own credentials on the other. Terminates the client's
// startup phase itself (no password: identity came with the tunnel), then relays message by message.
import type { WebSocket, RawData } from 'ws';
import type { Socket } from 'node:net';
import {
  FrontendParser, BackendFramer, ProtocolError, type FrontendMessage,
  authenticationOk, parameterStatus, backendKeyData, readyForQuery, errorResponse, noticeResponse, sslNo, negotiateProtocolVersion,
} from '../pg/index.js';
import type { Identity } from '../auth/index.js';
import type { ConnectionPolicy } from '../policy/file.js';
import { connectUpstream, cancelUpstream, UpstreamError, type UpstreamSession, type UpstreamTarget } from './upstream.js';
import type { CancelRegistry } from './cancel-registry.js';
import type { Logger } from './log.js';
import { CloseCode } from '../tunnel/protocol.js';

/** Startup parameters passed through to the upstream; anything else could change who we are there. */
const FORWARDED_PARAMS = new Set([
  'application_name', 'client_encoding', 'datestyle', 'timezone', 'intervalstyle', 'extra_float_digits', 'search_path',
]);

/** Pause reading the upstream when this much is queued towards a slow client. */
const CLIENT_HIGH_WATER = 4 * 1024 * 1024;

export interface SessionOptions {
  id: string;
  identity: Identity;
  connection: ConnectionPolicy;
  label?: string;
  reason?: string;
  remoteAddress?: string;
  cancels: CancelRegistry;
  log: Logger;
  resolveTarget: (conn: ConnectionPolicy) => UpstreamTarget;
  onClose?: (session: ClientSession) => void;
}

type State = 'startup' | 'connecting' | 'relay' | 'closing' | 'closed';

export class ClientSession {
  private state: State = 'startup';
  private readonly parser = new FrontendParser();
  private readonly framer = new BackendFramer();
  private upstream?: Socket;
  private clientKey?: { processId: number; secretKey: Buffer };
  /** Client messages that arrived before the upstream was ready (pipelining clients). */
  private queued: FrontendMessage[] = [];
  private upstreamPaused = false;
  private clientPaused = false;
  private terminated = false;
  private readonly startedAt = Date.now();
  clientParams: Record<string, string> = {};
  bytesIn = 0;
  bytesOut = 0;
  statements = 0;

  constructor(
    private readonly ws: WebSocket,
    readonly opts: SessionOptions,
  ) {
    ws.binaryType = 'nodebuffer';
    ws.on('message', this.onMessage);
    ws.on('close', () => this.cleanup('client closed'));
    ws.on('error', (err) => {
      opts.log.warn('tunnel stream error', { session: opts.id, error: err.message });
      this.cleanup('tunnel error');
    });
  }

  get id(): string {
    return this.opts.id;
  }

  /** Ends the session from the server side (shutdown, access expired), telling the client why. */
  terminate(code: string, message: string): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.fatal(code, message, CloseCode.ServerShutdown);
  }

  private readonly onMessage = (data: RawData, isBinary: boolean): void => {
    if (!isBinary) return; // the CLI sends no control messages yet
    const buf = data as Buffer;
    this.bytesIn += buf.length;
    if (this.state === 'relay') {
      this.relayToUpstream(buf);
      return;
    }
    if (this.state === 'connecting') {
      for (const msg of this.parser.push(buf)) this.queued.push(msg);
      return;
    }
    if (this.state !== 'startup') return;
    for (const msg of this.parser.push(buf)) {
      if (this.state === 'startup') this.onStartupMessage(msg);
      else if (this.state === 'connecting') this.queued.push(msg); // pipelined after the StartupMessage
    }
  };

  private onStartupMessage(msg: FrontendMessage): void {
    switch (msg.type) {
      case 'SSLRequest':
      case 'GSSENCRequest':
        // The tunnel is already encrypted end to end; PostgreSQL-level TLS would add nothing.
        this.send(sslNo());
        return;
      case 'CancelRequest':
        this.onCancelRequest(msg.processId, msg.secretKey);
        return;
      case 'Startup':
        this.onStartup(msg.protocolVersion, msg.parameters);
        return;
      case 'ProtocolError':
        this.fatal('08P01', `invalid startup packet: ${msg.error.message}`, CloseCode.ProtocolError);
        return;
      default:
        this.fatal('08P01', `unexpected ${msg.type} message before startup`, CloseCode.ProtocolError);
    }
  }

  private onCancelRequest(processId: number, secretKey: Buffer): void {
    const { log, identity } = this.opts;
    const target = this.opts.cancels.lookup(processId, secretKey);
    if (!target) {
      log.warn('cancel request for unknown backend key', { subject: identity.subject });
    } else if (target.subject !== identity.subject) {
      log.warn('cancel request refused: key belongs to another identity', { subject: identity.subject, target: target.sessionId });
    } else {
      log.info('cancel request', { session: target.sessionId, subject: identity.subject });
      target.cancel().catch((err: Error) => log.warn('cancel request failed', { session: target.sessionId, error: err.message }));
    }
    // PostgreSQL answers a CancelRequest with nothing but a closed connection.
    this.state = 'closing';
    this.ws.close(CloseCode.Normal);
  }

  private onStartup(protocolVersion: number, params: Record<string, string>): void {
    const { log, connection, identity } = this.opts;
    this.clientParams = params;
    const replication = params['replication'];
    if (replication !== undefined && !['false', 'off', 'no', '0'].includes(replication.toLowerCase())) {
      this.fatal('0A000', 'replication connections are not supported through phigate');
      return;
    }
    const forwarded: Record<string, string> = {};
    const ignored: string[] = [];
    for (const [k, v] of Object.entries(params)) {
      if (k === 'user' || k === 'database' || k === 'replication') continue;
      if (FORWARDED_PARAMS.has(k.toLowerCase())) forwarded[k] = v;
      else if (!k.startsWith('_pq_.')) ignored.push(k);
    }
    const notices: Buffer[] = [];
    if (ignored.length > 0) {
      notices.push(noticeResponse({ severity: 'NOTICE', code: '01000', message: `phigate ignored startup parameter(s): ${ignored.join(', ')}` }));
    }
    const minor = protocolVersion & 0xffff;
    const pqOptions = Object.keys(params).filter((k) => k.startsWith('_pq_.'));
    const negotiate = minor > 0 || pqOptions.length > 0 ? negotiateProtocolVersion(0, pqOptions) : undefined;

    let target: UpstreamTarget;
    try {
      target = this.opts.resolveTarget(connection);
    } catch (err) {
      const e = err as UpstreamError;
      log.error('upstream target unavailable', { session: this.id, connection: connection.name, error: e.message });
      this.fatal('08001', `phigate: ${e.message}`, CloseCode.UpstreamFailed);
      return;
    }
    this.state = 'connecting';
    log.info('session start', {
      session: this.id, connection: connection.name, subject: identity.subject, name: identity.name, kind: identity.kind,
      label: this.opts.label, client_user: params['user'], client_database: params['database'],
      application_name: params['application_name'], remote: this.opts.remoteAddress,
    });
    connectUpstream(target, forwarded).then(
      (up) => this.onUpstreamReady(up, target, negotiate, notices),
      (err: unknown) => {
        const e = err instanceof UpstreamError ? err : new UpstreamError('protocol', '08P01', String(err));
        log.error('upstream connect failed', { session: this.id, connection: connection.name, kind: e.kind, sqlstate: e.sqlstate, error: e.message });
        this.fatal(e.kind === 'server' || e.kind === 'auth' ? e.sqlstate : '08001',
          `phigate could not connect to the database of "${connection.name}": ${e.message}`, CloseCode.UpstreamFailed);
      },
    );
  }

  private onUpstreamReady(up: UpstreamSession, target: UpstreamTarget, negotiate: Buffer | undefined, notices: Buffer[]): void {
    if (this.state !== 'connecting') {
      up.socket.destroy();
      return;
    }
    this.upstream = up.socket;
    this.clientKey = this.opts.cancels.register({
      sessionId: this.id,
      subject: this.opts.identity.subject,
      cancel: () => cancelUpstream(target, up.backendKey),
    });
    const parts: Buffer[] = [];
    if (negotiate) parts.push(negotiate);
    parts.push(authenticationOk());
    for (const [k, v] of up.parameters) parts.push(parameterStatus(k, v));
    parts.push(backendKeyData(this.clientKey.processId, this.clientKey.secretKey));
    parts.push(...up.notices, ...notices, readyForQuery(up.transactionStatus));
    this.send(Buffer.concat(parts));

    const sock = up.socket;
    sock.on('data', this.onUpstreamData);
    sock.on('error', (err) => {
      this.opts.log.warn('upstream socket error', { session: this.id, error: err.message });
    });
    sock.on('close', this.onUpstreamClose);
    this.state = 'relay';
    if (up.leftover.length > 0) this.onUpstreamData(up.leftover);
    sock.resume();
    const queued = this.queued;
    this.queued = [];
    if (queued.length > 0) this.relayMessages(queued, undefined);
  }

  private relayToUpstream(data: Buffer): void {
    this.relayMessages(this.parser.push(data), data);
  }

  /** `data`, when given, is the chunk the messages were parsed from (enables whole-chunk writes). */
  private relayMessages(msgs: FrontendMessage[], data: Buffer | undefined): void {
    if (!this.upstream) return;
    const n = msgs.length;
    if (n === 0) return;
    let failed: ProtocolError | undefined;
    let end = n;
    for (let i = 0; i < n; i++) {
      const m = msgs[i]!;
      switch (m.type) {
        case 'Query':
        case 'Parse':
          this.statements++;
          break;
        case 'Terminate':
          this.terminated = true;
          break;
        case 'ProtocolError':
          failed = m.error;
          end = i;
          break;
      }
    }
    if (end > 0) this.writeUpstream(data, msgs, end);
    if (failed) {
      this.opts.log.warn('client protocol error', { session: this.id, error: failed.message });
      this.fatal('08P01', `invalid frontend message: ${failed.message}`, CloseCode.ProtocolError);
    }
  }

  /** Writes messages [0, end) upstream: the whole chunk when they are exactly it, else each slice. */
  private writeUpstream(data: Buffer | undefined, msgs: FrontendMessage[], end: number): void {
    const up = this.upstream!;
    const first = (msgs[0] as { raw: Buffer }).raw;
    const last = (msgs[end - 1] as { raw: Buffer }).raw;
    let ok: boolean;
    if (
      data !== undefined && first.buffer === data.buffer && first.byteOffset === data.byteOffset &&
      last.buffer === data.buffer && last.byteOffset + last.length === data.byteOffset + data.length
    ) {
      ok = up.write(data);
    } else if (end === 1) {
      ok = up.write(first);
    } else {
      up.cork();
      for (let i = 0; i < end; i++) up.write((msgs[i] as { raw: Buffer }).raw);
      up.uncork();
      ok = !up.writableNeedDrain;
    }
    if (!ok && !this.clientPaused) {
      // Backpressure towards the client: stop reading the tunnel until the database catches up.
      this.clientPaused = true;
      this.ws.pause();
      up.once('drain', () => {
        this.clientPaused = false;
        if (this.state === 'relay') this.ws.resume();
      });
    }
  }

  private readonly onUpstreamData = (chunk: Buffer): void => {
    const whole = this.framer.pushWhole(chunk);
    if (whole instanceof ProtocolError) {
      this.opts.log.error('upstream protocol error', { session: this.id, error: whole.message });
      this.fatal('08P01', 'phigate received an invalid message from the database', CloseCode.UpstreamFailed);
      return;
    }
    if (whole.length === 0) return;
    this.bytesOut += whole.length;
    const ws = this.ws;
    if (ws.bufferedAmount + whole.length > CLIENT_HIGH_WATER && !this.upstreamPaused) {
      // Backpressure towards the database: a client that stops reading must not grow our memory.
      this.upstreamPaused = true;
      this.upstream!.pause();
      ws.send(whole, { binary: true }, () => {
        this.upstreamPaused = false;
        if (this.state === 'relay') this.upstream?.resume();
      });
      return;
    }
    ws.send(whole, { binary: true });
  };

  private readonly onUpstreamClose = (): void => {
    if (this.state === 'closed' || this.state === 'closing') return;
    if (this.terminated) {
      this.state = 'closing';
      this.ws.close(CloseCode.Normal);
      return;
    }
    // PostgreSQL normally sends a FATAL first, which was relayed; if it did not, say what happened.
    this.opts.log.warn('upstream closed the connection', { session: this.id });
    this.fatal('08006', 'phigate: the database closed the connection unexpectedly', CloseCode.UpstreamFailed);
  };

  private send(buf: Buffer): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.bytesOut += buf.length;
    this.ws.send(buf, { binary: true });
  }

  private fatal(code: string, message: string, closeCode: number = CloseCode.Normal): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.send(errorResponse({ severity: 'FATAL', code, message }));
    this.state = 'closing';
    this.ws.close(closeCode, truncateReason(message));
    this.cleanup('fatal');
  }

  private cleanup(why: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.clientKey) this.opts.cancels.unregister(this.clientKey.processId, this.clientKey.secretKey);
    const up = this.upstream;
    if (up && !up.destroyed) {
      up.off('close', this.onUpstreamClose);
      // A polite Terminate keeps "unexpected EOF" out of the database's log.
      if (!this.terminated) up.end(TERMINATE);
      else up.end();
      up.setTimeout(5_000, () => up.destroy());
    }
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(CloseCode.Normal);
    if (this.clientKey || why === 'fatal') {
      this.opts.log.info('session end', {
        session: this.id, why, duration_ms: Date.now() - this.startedAt, statements: this.statements,
        bytes_in: this.bytesIn, bytes_out: this.bytesOut,
      });
    }
    this.opts.onClose?.(this);
  }
}

const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

/** Close reasons are limited to 123 bytes by the WebSocket protocol. */
function truncateReason(s: string): string {
  const b = Buffer.from(s);
  return b.length <= 120 ? s : `${b.subarray(0, 117).toString('utf8').replace(/\uFFFD$/, '')}...`;
}
