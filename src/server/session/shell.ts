// The session's shell: owns the tunnel stream (WebSocket), the upstream socket, timers and async
// work, feeds what happens to the core (core.ts) and executes the actions it returns, in order.
// Nothing here decides about statements; see docs/architecture.md ("The session").
import type { WebSocket, RawData } from 'ws';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { gatewayFrame, writeFrame } from '../../tunnel/frame.js';
import { formatDuration } from '../../policy/duration.js';
import { limitKey } from '../../policy/limits.js';
import type { ApprovalHandle } from '../../approvals/types.js';
import { SessionRecorder } from '../session-recorder.js';
import type { UpstreamLease } from '../pool/pool.js';
import type { AdmissionTicket } from '../admission.js';
import type { SessionEnd } from '../pool/core.js';
import { NO_METRICS } from '../metrics.js';
import { CloseCode } from '../../tunnel/protocol.js';
import { roughly } from '../../tunnel/liveness.js';
import { failedAnalysis, type AnalysisRequest } from '../analysis.js';
import type { Action } from './actions.js';
import { SessionCore } from './core.js';
import { openUpstream, type Connecting } from './connect.js';
import { CLIENT_HIGH_WATER } from './backpressure.js';
import type { SessionOptions } from './options.js';
import { TERMINATE } from './wire.js';

/** Options of every data frame to the client (one object, not one per frame). */

const CLOCK = { now: Date.now };

export class ClientSession implements Connecting {
  readonly core: SessionCore;
  upstream?: Socket;
  /** The pooled connection this session holds (pooling on): given back, not closed, at the end. */
  lease?: UpstreamLease;
  /** Admission's hold on this session's place; released once the session and its upstream are gone. */
  slot?: AdmissionTicket;
  /** An upstream connect is under way: its outcome releases the slot if the session ended meanwhile. */
  connectPending = false;
  upstreamCancel?: () => Promise<void>;
  clientKey?: { processId: number; secretKey: Buffer };
  private upstreamPaused = false;
  private handle?: ApprovalHandle;
  private idleTimer?: NodeJS.Timeout;
  /** Draining the core's actions now (an input that arrives meanwhile only adds to them). */
  private draining = false;

  /**
   * `socket` is the tunnel stream's own socket (the upgraded request's): data frames are written to it
   * directly (tunnel/frame.ts), ws's own writes (ping, close) being synchronous on the same socket.
   */
  constructor(
    private readonly ws: WebSocket,
    readonly opts: SessionOptions<ClientSession>,
    private readonly socket: Duplex,
  ) {
    const { recordingsDir, log } = opts;
    this.core = new SessionCore({
      id: opts.id, identity: opts.identity, connection: opts.connection, label: opts.label, reason: opts.reason,
      remoteAddress: opts.remoteAddress, log, clock: CLOCK, policy: opts.policy, policyVersion: opts.policyVersion,
      classifier: opts.classifier, approvals: opts.approvals !== undefined, masking: opts.masking, maskedColumns: opts.maskedColumns,
      rewrite: opts.source && ((sql, allowUnknown, plainOutputs) => opts.source!.rewrite(sql, allowUnknown, plainOutputs)),
      catalog: opts.catalog, recordingMasking: opts.recordingMasking,
      openRecorder: recordingsDir ? (meta) => new SessionRecorder(recordingsDir, opts.id, meta, log, opts.recordingRowCap) : undefined,
      analyzes: opts.analyze !== undefined, metrics: opts.metrics ?? NO_METRICS,
    });
    ws.binaryType = 'nodebuffer';
    ws.on('message', this.onMessage);
    ws.on('close', () => {
      this.core.clientClosed('client closed');
      this.drain();
    });
    ws.on('error', (err) => {
      opts.log.warn('tunnel stream error', { session: opts.id, error: err.message });
      this.core.clientClosed('tunnel error');
      this.drain();
    });
  }

  get id(): string {
    return this.opts.id;
  }

  /** A statement of this session waits for an approver. */
  get holding(): boolean {
    return this.core.holding;
  }

  /** Why the session ended (set once it has). */
  get endReason(): string | undefined {
    return this.core.endReason;
  }

  /** Ends the session from the server side (shutdown, access expired), telling the client why. */
  terminate(code: string, message: string): void {
    this.core.endNow(code, message);
    this.drain();
  }

  /**
   * The tunnel stayed silent past limits.tunnel_timeout: its peer is gone without a FIN. The session
   * ends now (its upstream backend closes, rolling back its transaction and releasing its locks)
   * without waiting on the peer for a closing handshake.
   */
  lostTunnel(silentMs: number, timeoutMs: number): void {
    this.opts.log.warn('tunnel timeout: no answer from the client', { session: this.id, silent_ms: silentMs });
    this.core.fatal('08006', `phigate: tunnel silent for ${roughly(silentMs)} (${limitKey('tunnelTimeoutMs')}: ${formatDuration(timeoutMs)}); the session was ended, any transaction rolled back`,
      CloseCode.Timeout, 'tunnel timeout');
    this.drain();
    this.ws.terminate();
  }

  /** CancelRequest from this session's client: a held statement is withdrawn, else the database is asked. */
  cancel(): Promise<void> {
    if (this.core.cancelHeld()) {
      this.drain();
      return Promise.resolve();
    }
    return this.upstreamCancel ? this.upstreamCancel() : Promise.resolve();
  }

  private readonly onMessage = (data: RawData, isBinary: boolean): void => {
    if (!isBinary) return; // the CLI sends no control messages yet
    this.core.clientData(data as Buffer);
    this.drain();
  };

  private readonly onUpstreamData = (chunk: Buffer): void => {
    this.core.upstreamData(chunk);
    this.drain();
  };

  private readonly onUpstreamError = (err: Error): void => {
    this.opts.log.warn('upstream socket error', { session: this.id, error: err.message });
  };

  private readonly onUpstreamClose = (): void => {
    this.core.upstreamClosed();
    this.drain();
  };

  private readonly onIdleTimer = (): void => {
    this.idleTimer = undefined;
    this.core.idleTimerFired(this.ws.bufferedAmount);
    this.drain();
  };

  private readonly onNextTurn = (): void => {
    this.core.nextTurn();
    this.drain();
  };

  /**
   * Executes the core's actions in order. A guarding record that cannot be written stops the line:
   * what came after it is dropped, and the core is told (it ends the session, whose actions follow).
   */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    const q = this.core.actions;
    try {
      for (let i = 0; i < q.length; i++) {
        const a = q[i]!;
        if (a.kind === 'record') {
          const err = this.record(a.events);
          if (err) {
            if (a.failClosed) q.length = i + 1;
            this.core.recordFailed(a.events, a.failClosed, err);
          }
          continue;
        }
        this.execute(a);
      }
    } finally {
      q.length = 0;
      this.draining = false;
    }
  }

  private record(events: Extract<Action, { kind: 'record' }>['events']): Error | undefined {
    const audit = this.opts.audit;
    if (!audit) return undefined;
    try {
      this.core.recorded(events, audit.appendMany(events));
      return undefined;
    } catch (err) {
      return err as Error;
    }
  }

  private execute(a: Action): void {
    switch (a.kind) {
      case 'client':
        return this.toClient(a.data);
      case 'upstream':
        return this.toUpstream(a.out, a.whole);
      case 'control':
        if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(a.msg));
        return;
      case 'pauseClient':
        this.ws.pause();
        return;
      case 'resumeClient':
        this.ws.resume();
        return;
      case 'connect':
        openUpstream(this, a.forwarded);
        return;
      case 'attachUpstream': {
        const sock = this.upstream!;
        sock.on('data', this.onUpstreamData);
        sock.on('error', this.onUpstreamError);
        sock.on('close', this.onUpstreamClose);
        sock.resume();
        return;
      }
      case 'destroyUpstream':
        this.upstream?.destroy();
        return;
      case 'requestApproval': {
        const handle = this.opts.approvals!.request(a.input);
        this.handle = handle;
        this.core.holdRequested(handle.id);
        handle.outcome.then(
          (o) => this.decided(handle, () => this.core.holdDecided(o)),
          (err: Error) => this.decided(handle, () => this.core.holdDecided({ approved: false, cause: 'denied', reason: `approval failed: ${err.message}` })),
        );
        return;
      }
      case 'withdrawApproval':
        this.handle?.withdraw(a.why);
        return;
      case 'analyse':
        return this.analyse(a.req);
      case 'refreshCatalog': {
        const resume = (fresh: boolean): void => {
          this.core.catalogRefreshed(fresh);
          this.drain();
        };
        this.opts.source!.refresh(a.since).then(resume, () => resume(false));
        return;
      }
      case 'idleTimer':
        clearTimeout(this.idleTimer);
        this.idleTimer = setTimeout(this.onIdleTimer, a.ms).unref();
        return;
      case 'nextTurn':
        setImmediate(this.onNextTurn);
        return;
      case 'cancelRequest':
        return this.passCancel(a.processId, a.secretKey);
      case 'ddl':
        this.opts.onDdl?.();
        return;
      case 'closeClient':
        this.ws.close(a.code, a.reason);
        return;
      case 'end':
        return this.end();
      case 'ended':
        return this.ended();
    }
  }

  private decided(handle: ApprovalHandle, report: () => void): void {
    if (this.handle === handle) this.handle = undefined;
    report();
    this.drain();
  }

  private analyse(req: AnalysisRequest): void {
    let failed = false;
    this.opts.analyze!(req).catch((err: Error) => {
      this.opts.log.error('statement analysis failed; the statement is refused', { session: this.id, error: err.message });
      failed = true;
      return failedAnalysis(req.sql, 'the analysis worker failed');
    }).then((a) => {
      this.core.analysed(a, failed);
      this.drain();
    }, (err: Error) => {
      this.core.analysisCrashed(err);
      this.drain();
    });
  }

  /** A CancelRequest instead of a session: sent or refused (and logged) when this replica issued the key; else maybe another replica did. */
  private passCancel(processId: number, secretKey: Buffer): void {
    const { log, identity } = this.opts;
    const outcome = this.opts.cancels.cancel(processId, secretKey, identity, log);
    if (outcome === 'unknown' && this.opts.forwardCancel) {
      log.info('cancel request for a key of another replica; passed on', { subject: identity.subject });
      this.opts.forwardCancel({ processId, secretKey, subject: identity.subject, issuer: identity.issuer })
        .catch((err: Error) => log.warn('cancel request could not be passed on', { error: err.message }));
    } else if (outcome === 'unknown') {
      log.warn('cancel request for unknown backend key', { subject: identity.subject });
    }
  }

  private toClient(data: Buffer): void {
    const ws = this.ws;
    if (ws.readyState !== ws.OPEN) return;
    const up = this.upstream;
    let done: (() => void) | undefined;
    if (up !== undefined && ws.bufferedAmount + data.length > CLIENT_HIGH_WATER && !this.upstreamPaused) {
      // Backpressure towards the database: a client that stops reading must not grow our memory.
      this.upstreamPaused = true;
      up.pause();
      done = () => {
        this.upstreamPaused = false;
        if (this.core.state === 'relay') this.upstream?.resume();
      };
    }
    // One buffer and one write for a turn's answer, instead of ws.send's header + payload writev.
    writeFrame(this.socket, gatewayFrame(data), done);
  }

  /** Writes `out` upstream; `whole`, when given, is a chunk whose bytes are exactly `out`. */
  private toUpstream(out: Buffer[], whole: Buffer | undefined): void {
    const up = this.upstream!;
    let ok: boolean;
    const first = out[0]!;
    const last = out[out.length - 1]!;
    if (
      whole !== undefined && first.buffer === whole.buffer && first.byteOffset === whole.byteOffset &&
      last.buffer === whole.buffer && last.byteOffset + last.length === whole.byteOffset + whole.length
    ) {
      ok = up.write(whole);
    } else if (out.length === 1) {
      ok = up.write(first);
    } else {
      up.cork();
      for (const b of out) up.write(b);
      up.uncork();
      ok = !up.writableNeedDrain;
    }
    if (!ok && !this.core.pausedForUpstream) {
      // Backpressure towards the client: stop reading the tunnel until the database catches up.
      this.core.upstreamFull();
      up.once('drain', () => {
        this.core.upstreamDrained();
        this.drain();
      });
    }
  }

  /**
   * The upstream connection's state as the session leaves it: the core's protocol state, and
   * nothing half-written. Only then may the pool reset it for another session.
   */
  private upstreamEnd(): SessionEnd {
    const up = this.upstream;
    const quiet = up !== undefined && !up.destroyed && up.writableLength === 0 && this.core.upstreamQuiet;
    return { quiet, status: this.core.txStatus };
  }

  /** The session is over: its upstream, its place, its timer and its cancel key are let go. */
  private end(): void {
    clearTimeout(this.idleTimer);
    const core = this.core;
    if (this.clientKey) this.opts.cancels.unregister(this.clientKey.processId, this.clientKey.secretKey);
    const up = this.upstream;
    if (this.lease) {
      // Given back to the pool, which resets it for the next session or closes it; the session's
      // place is free at once (the pool's size bounds the upstream connections).
      if (up) {
        up.off('data', this.onUpstreamData);
        up.off('error', this.onUpstreamError);
        up.off('close', this.onUpstreamClose);
      }
      if (up || !this.connectPending) this.lease.release(this.upstreamEnd());
      if (!this.connectPending) this.slot?.release();
    } else {
      if (up && !up.destroyed) {
        up.off('close', this.onUpstreamClose);
        // A polite Terminate keeps "unexpected EOF" out of the database's log.
        if (!core.terminated) up.end(TERMINATE);
        else up.end();
        up.setTimeout(5_000, () => up.destroy());
      }
      // The connection's count holds until its backend is gone (PostgreSQL frees the slot before the
      // socket closes), so a session ending never lets a new one past max_connections.
      if (!this.connectPending) {
        if (up && !up.destroyed) up.once('close', () => this.slot?.release());
        else this.slot?.release();
      }
    }
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(CloseCode.Normal);
    // A stream paused for backpressure would never read the client's close frame, and the closing
    // handshake would wait for the WebSocket close timeout; what it reads now is ignored.
    this.ws.resume();
  }

  private ended(): void {
    const core = this.core;
    const why = core.endReason;
    if (this.clientKey || why === 'fatal') {
      this.opts.log.info('session end', {
        session: this.id, why, duration_ms: Date.now() - core.startedAt, statements: core.statements,
        bytes_in: core.bytesIn, bytes_out: core.bytesOut,
      });
    }
    this.opts.onClose?.(this);
  }
}
