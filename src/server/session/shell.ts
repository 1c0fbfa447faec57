// One client session on the server: a tunnel stream (WebSocket) on one side, an upstream PostgreSQL
// connection opened with the connection's own credentials on the other. Terminates the client's
// startup phase itself (no password: identity came with the tunnel), then relays message by message.
import type { WebSocket, RawData } from 'ws';
import type { Socket } from 'node:net';
import {
  FrontendParser, BackendFramer, ByteSink, ProtocolError, type FrontendMessage,
  authenticationOk, parameterStatus, backendKeyData, readyForQuery, errorResponse, sslNo,
  decodeErrorFieldMap, decodeParameterStatus, decodeCommandComplete, type ErrorFields,
} from '../../pg/index.js';
import { randomBytes } from 'node:crypto';
import { serialize } from 'pg-protocol';
import type { ShapeClassifierCache } from '../../policy/shape-cache.js';
import { formatDuration } from '../../policy/duration.js';
import { limitKey } from '../../policy/limits.js';
import { DEFAULT_APPROVAL_TIMEOUT_MS } from '../../policy/rules.js';
import { requesterOf } from '../../approvals/requester.js';
import { scopeNotice } from '../../approvals/format.js';
import type { ApprovalHandle, ApprovalRequester, Outcome } from '../../approvals/types.js';
import { StatementGate, type Verdict } from '../gate.js';
import { MaskingLayer, UnmaskableResult, decodeFields, type MaskingContext } from '../masking-layer.js';
import { ResultTracker, type BackendVerdict } from '../result-tracker.js';
import { SessionRecorder } from '../session-recorder.js';
import { StatementResults } from '../statement-results.js';
import { maskDataRowInto, type MaskPlan } from '../../masking/index.js';
import type { BackendFrame } from '../../pg/index.js';
import type { AuditLog } from '../../audit/log.js';
import type { AuditEvent, StatementDecision, StatementEvent } from '../../audit/events.js';
import type { Identity } from '../../auth/index.js';
import type { ConnectionPolicy, PolicyFile } from '../../policy/file.js';
import { connectUpstream, cancelUpstream, UpstreamError, type UpstreamSession, type UpstreamTarget } from '../upstream.js';
import { upstreamFailure } from '../upstream-fault.js';
import { PoolWaitTimeout, type UpstreamLease } from '../pool/pool.js';
import type { SessionEnd, TransactionStatus } from '../pool/core.js';
import { AdmissionTicket, type LimitRefusal } from '../admission.js';
import type { CancelRegistry } from '../cancel-registry.js';
import type { RemoteCancel } from '../shared-cancel.js';
import type { Logger } from '../log.js';
import type { CatalogSnapshot } from '../catalog.js';
import { NO_METRICS, type ConnectionMetrics } from '../metrics.js';
import { CloseCode, type ControlMessage } from '../../tunnel/protocol.js';
import { roughly } from '../../tunnel/liveness.js';
import { originalPosition } from '../../masking/source/masker.js';
import type { RewriteOutcome, TextEdit } from '../../masking/source/rewrite.js';
import type { Classification } from '../../policy/classify/index.js';
import { classificationOf, failedAnalysis, isHeavy, OFF_THREAD_STATEMENTS, type AnalysisRequest, type TextAnalysis } from '../analysis.js';
import { PROGRAM_LIMIT_EXCEEDED, messageSizeError, oversizeEvidence, statementSizeError } from '../size-limits.js';

import { isFatal, isUtf8Name, unsafeSettingIn, unsafeStartup } from './settings.js';
import { EMPTY, FLUSH, TERMINATE, truncateReason } from './wire.js';
import { planStartup } from './startup.js';
import { refusalFor } from './holds.js';
import { DDL_KINDS } from './evidence.js';

/** Pause reading a client whose statement waits for approval once it has queued this much behind it. */
const BACKLOG_HIGH_WATER = 16 * 1024 * 1024;

/** Pause reading the upstream when this much is queued towards a slow client. */
const CLIENT_HIGH_WATER = 4 * 1024 * 1024;

/** Options of every data frame to the client (one object, not one per frame). */
const BINARY = { binary: true } as const;

/** Masking at the source for a masked reader (masking/source): the gateway's per-connection rewrite. */
export interface SourceMaskingHandle {
  /**
   * The statement as it must reach the database; `allowUnknown` once the catalog is newer than the
   * statement; `plainOutputs` false to compute every masked column it names (see RewriteOptions).
   */
  rewrite(sql: string, allowUnknown: boolean, plainOutputs: boolean): RewriteOutcome;
  /** Resolves true once the catalog snapshot was read at or after `since` (ms), false when it could not be. */
  refresh(since: number): Promise<boolean>;
}

/**
 * How many texts analysed off the event loop a session keeps the classification of, and their total
 * length: results and Executes classify them again, which must not mean parsing them here.
 */
const ANALYSED_KEPT = 32;
const ANALYSED_CHARS = 32 * 1024 * 1024;

/** How long one run of a client's messages may hold the event loop before the rest waits a turn. */
const SLICE_MS = 10;

/** How many rewritten statement texts a session remembers (error positions, Execute evidence). */
const REWRITES_KEPT = 256;

export interface SessionOptions {
  id: string;
  identity: Identity;
  connection: ConnectionPolicy;
  label?: string;
  reason?: string;
  remoteAddress?: string;
  cancels: CancelRegistry;
  /** With a shared store: a key this replica did not issue is passed on to the others. */
  forwardCancel?: (c: RemoteCancel) => Promise<void>;
  log: Logger;
  resolveTarget: (conn: ConnectionPolicy) => UpstreamTarget;
  /** The policy in force now (it may be reloaded while the session runs). */
  policy: () => PolicyFile;
  policyVersion: () => string;
  /** Evidence: every statement is recorded before it is forwarded, or not forwarded at all. */
  audit?: Pick<AuditLog, 'append' | 'appendMany'>;
  classifier: ShapeClassifierCache;
  approvals?: ApprovalRequester;
  /** Set when this identity may not see raw PHI on this connection (not in masking.unmasked_groups). */
  masking?: Omit<MaskingContext, 'classify'>;
  /** Columns the policy masks (table.column), for predicates_on_masked and copy checks. */
  maskedColumns?: ReadonlySet<string>;
  /** Resolves once the masking catalog has a first snapshot (the session waits for it at startup). */
  maskingReady?: () => Promise<void>;
  /** Set with `masking` when the policy masks columns: statements are rewritten at the source. */
  source?: SourceMaskingHandle;
  /** The connection's catalog snapshot, for what statements reach (the gate's GateOptions.catalog). */
  catalog?: () => CatalogSnapshot | undefined;
  /** For readers in unmasked_groups: the masking their recording gets (they see raw values). */
  recordingMasking?: Omit<MaskingContext, 'classify'>;
  /** Where session recordings go; none are made without it. */
  recordingsDir?: string;
  recordingRowCap?: number;
  onClose?: (session: ClientSession) => void;
  /** This replica's session limits: a ticket for this session, or the limit that refuses it (at StartupMessage). */
  admit?: () => AdmissionTicket | LimitRefusal;
  /** How long a session waits for one of its identity's connect slots (limits.upstream_connect_timeout). */
  connectWaitMs?: number;
  /**
   * A pooled upstream connection for this session (the connection's pool, prepared with the
   * client's startup parameters); absent when the connection's pooling is off.
   */
  lease?: (target: UpstreamTarget, params: Record<string, string>) => Promise<UpstreamLease>;
  /** A statement that may change the catalog (DDL) was forwarded. */
  onDdl?: () => void;
  /** The gateway's metrics for this session's connection. */
  metrics?: ConnectionMetrics;
  /**
   * Analyses a large text off the event loop (analysis.ts, in a worker), with this connection's
   * masking and catalog; absent, every text is analysed inline.
   */
  analyze?: (req: AnalysisRequest) => Promise<TextAnalysis>;
}

/** An analysis made off the event loop for one message, with the rewrite options it was made with. */
interface Analysed {
  a: TextAnalysis;
  allowUnknown: boolean;
  plainOutputs: boolean;
  /** The catalog snapshot the rewrite and the lineage were made under. */
  snapshot: CatalogSnapshot | undefined;
}

/** A frontend message that exists on the wire (everything but a parse failure). */
type WireMessage = Exclude<FrontendMessage, { type: 'ProtocolError' }>;

type State = 'startup' | 'connecting' | 'relay' | 'closing' | 'closed';

export class ClientSession {
  private state: State = 'startup';
  private readonly parser = new FrontendParser();
  private readonly framer = new BackendFramer();
  /** Where processFrames collects each upstream chunk's bytes for the client. */
  private readonly sink = new ByteSink();
  /**
   * Set while DataRows of one result stream: their verdict cannot change until another message
   * arrives, so the plan is looked up once per run instead of once per row.
   */
  private rowRun?: { plan: MaskPlan | undefined };
  private upstream?: Socket;
  private clientKey?: { processId: number; secretKey: Buffer };
  /** Client messages that arrived before the upstream was ready (pipelining clients). */
  private queued: FrontendMessage[] = [];
  private upstreamPaused = false;
  private clientPaused = false;
  private terminated = false;
  private gate?: StatementGate;
  /** The statement waiting for an approver, and the client messages that came after it. */
  private held?: { message: WireMessage; verdict: Extract<Verdict, { action: 'approve' }>; handle?: ApprovalHandle };
  private backlog: FrontendMessage[] = [];
  private backlogBytes = 0;
  /** Secret tokens of refused messages whose upstream error must be replaced by ours. */
  private readonly poisons = new Map<string, ErrorFields>();
  private cancelRequested = false;
  /** Messages forwarded that will each be answered by a ReadyForQuery. */
  private readySent = 0;
  /** While non-zero: the ReadyForQuery count that ends the settings barrier. */
  private barrierAt = 0;
  private barrierAfterSync = false;
  /** Records nothing waits for (statement.result), written with the next record of the session. */
  private deferred: AuditEvent[] = [];
  /** Executions on their way, each to complete its statement record with a statement.result. */
  private readonly results = new StatementResults<StatementEvent>();
  /** DDL ran since the session was last idle: the catalog is refreshed at the next idle ReadyForQuery. */
  private ddlRan = false;
  /** Portals executed since their Bind: a further Execute continues the same result. */
  private readonly executedPortals = new Set<string>();
  /** seq of each statement record once written: outcomes name the record they complete. */
  private readonly recordSeq = new WeakMap<AuditEvent, number>();
  /** session.start was recorded, so session.end is owed. */
  private recorded = false;
  private upstreamCancel?: () => Promise<void>;
  /** The pooled connection this session holds (pooling on): given back, not closed, at the end. */
  private lease?: UpstreamLease;
  /** The status of the upstream's last ReadyForQuery. */
  private txStatus: TransactionStatus = 'I';
  /** Admission's hold on this session's place; released once the session and its upstream are gone. */
  private slot?: AdmissionTicket;
  /** An upstream connect is under way: its outcome releases the slot if the session ended meanwhile. */
  private connectPending = false;
  /** The database sent a FATAL (admin shutdown, terminated backend): the client has its reason already. */
  private upstreamFatal = false;
  /** Present when this reader's results are masked. */
  private masking?: MaskingLayer;
  /** Pairs backend messages with statements (masking and recording need it). */
  /**
   * Pairs backend messages with statements (masking, recording) and swallows the answers to the
   * Describe and Close messages the session injects: always on.
   */
  private readonly tracker = new ResultTracker();
  private recorder?: SessionRecorder;
  /** For unmasked readers: masks what goes into the recording only. */
  private recordMask?: MaskingLayer;
  private readonly startedAt = Date.now();
  /** Masking at the source: the rewrite decided for each Query/Parse message, and when each arrived. */
  private readonly rewrites = new WeakMap<WireMessage, RewriteOutcome>();
  private readonly arrivals = new WeakMap<WireMessage, number>();
  /** Messages that waited for a fresh catalog once: relations still unknown then do not exist. */
  private readonly waited = new WeakSet<WireMessage>();
  /** Waiting for a catalog snapshot newer than a statement that names an unknown relation. */
  private catalogWait = false;
  /** Waiting for the analysis worker: this client's later messages queue behind the statement. */
  private analysing = false;
  /** A long run of messages was cut to let other sessions run; the rest goes on at the next turn of the event loop. */
  private sliced = false;
  private readonly analyses = new WeakMap<WireMessage, Analysed>();
  /** Classifications made off the event loop, by text: the gate and the masking layer read them instead of parsing. */
  private readonly preclassified = new Map<string, { c: Classification; analysed: Analysed | undefined }>();
  private preclassifiedChars = 0;
  /** Reading stopped: more than limits.pipeline_depth statements are on their way unanswered. */
  private depthPaused = false;
  /** The server is in COPY FROM STDIN (CopyInResponse seen, not yet ended). */
  private copyIn = false;
  /** The session's client_encoding is UTF-8 (from ParameterStatus). */
  private clientUtf8 = true;
  /** Rewritten texts by original text (newest last): error positions and Execute evidence. */
  private readonly rewritten = new Map<string, { edits: TextEdit[]; relations: string[]; columns: string[] }>();
  private readonly metrics: ConnectionMetrics;
  /** Why the session ended (set once it has). */
  endReason?: string;
  /** Since when the session has been idle inside a transaction (0: it is not); see noteIdle. */
  private idleFrom = 0;
  private idleTimer?: NodeJS.Timeout;
  /** An extended-protocol message went upstream after the last Sync: the client awaits answers, not idle. */
  private unsynced = false;
  clientParams: Record<string, string> = {};
  bytesIn = 0;
  bytesOut = 0;
  statements = 0;

  constructor(
    private readonly ws: WebSocket,
    readonly opts: SessionOptions,
  ) {
    this.metrics = opts.metrics ?? NO_METRICS;
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

  /** A statement of this session waits for an approver. */
  get holding(): boolean {
    return this.held !== undefined;
  }

  /** Ends the session from the server side (shutdown, access expired), telling the client why. */
  terminate(code: string, message: string): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.fatal(code, message, CloseCode.ServerShutdown);
  }

  /**
   * The tunnel stayed silent past limits.tunnel_timeout: its peer is gone without a FIN. The session
   * ends now (its upstream backend closes, rolling back its transaction and releasing its locks)
   * without waiting on the peer for a closing handshake.
   */
  lostTunnel(silentMs: number, timeoutMs: number): void {
    this.opts.log.warn('tunnel timeout: no answer from the client', { session: this.id, silent_ms: silentMs });
    this.fatal('08006', `phigate: tunnel silent for ${roughly(silentMs)} (${limitKey('tunnelTimeoutMs')}: ${formatDuration(timeoutMs)}); the session was ended, any transaction rolled back`,
      CloseCode.Timeout, 'tunnel timeout');
    this.ws.terminate();
  }

  private readonly onMessage = (data: RawData, isBinary: boolean): void => {
    if (!isBinary) return; // the CLI sends no control messages yet
    const buf = data as Buffer;
    this.bytesIn += buf.length;
    this.idleFrom = 0;
    // The policy may have been reloaded: its limit applies from the next message header on.
    this.parser.maxMessageSize = this.opts.policy().limits.messageBytes;
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
        if (msg.error.size) this.fatalFields(messageSizeError(msg.error.size.length, msg.error.size.limit), CloseCode.ProtocolError);
        else this.fatal('08P01', `invalid startup packet: ${msg.error.message}`, CloseCode.ProtocolError);
        return;
      default:
        this.fatal('08P01', `unexpected ${msg.type} message before startup`, CloseCode.ProtocolError);
    }
  }

  private onCancelRequest(processId: number, secretKey: Buffer): void {
    const { log, identity } = this.opts;
    // Sent or refused (and logged) when this replica issued the key; else maybe another replica did.
    const outcome = this.opts.cancels.cancel(processId, secretKey, identity, log);
    if (outcome === 'unknown' && this.opts.forwardCancel) {
      log.info('cancel request for a key of another replica; passed on', { subject: identity.subject });
      this.opts.forwardCancel({ processId, secretKey, subject: identity.subject, issuer: identity.issuer })
        .catch((err: Error) => log.warn('cancel request could not be passed on', { error: err.message }));
    } else if (outcome === 'unknown') {
      log.warn('cancel request for unknown backend key', { subject: identity.subject });
    }
    // PostgreSQL answers a CancelRequest with nothing but a closed connection.
    this.state = 'closing';
    this.ws.close(CloseCode.Normal);
  }

  private onStartup(protocolVersion: number, params: Record<string, string>): void {
    const { log, connection } = this.opts;
    this.clientParams = params;
    const plan = planStartup(protocolVersion, params);
    if ('refused' in plan) {
      this.fatal('0A000', plan.refused);
      return;
    }
    const { forwarded, notices, negotiate } = plan;
    let target: UpstreamTarget;
    try {
      target = this.opts.resolveTarget(connection);
    } catch (err) {
      const e = err as UpstreamError;
      this.metrics.upstreamFailed('config');
      log.error('upstream target unavailable', { session: this.id, connection: connection.name, error: e.message });
      this.fatal('08001', `phigate: ${e.message}`, CloseCode.UpstreamFailed);
      return;
    }
    this.state = 'connecting';
    const ticket = this.opts.admit?.();
    if (ticket !== undefined && !(ticket instanceof AdmissionTicket)) {
      this.refuseLimit(ticket);
      return;
    }
    this.slot = ticket;
    const open = (): void => this.openUpstream(target, forwarded, negotiate, notices);
    if (ticket) ticket.whenConnectSlot(open, (r) => this.refuseLimit(r), this.opts.connectWaitMs ?? 10_000);
    else open();
  }

  private openUpstream(target: UpstreamTarget, forwarded: Record<string, string>, negotiate: Buffer | undefined, notices: Buffer[]): void {
    if (this.state !== 'connecting') return;
    const { log, connection, identity } = this.opts;
    const params = this.clientParams;
    log.info('session start', {
      session: this.id, connection: connection.name, subject: identity.subject, name: identity.name, kind: identity.kind,
      label: this.opts.label, client_user: params['user'], client_database: params['database'],
      application_name: params['application_name'], remote: this.opts.remoteAddress,
    });
    this.connectPending = true;
    // maskingReady never rejects (a catalog that cannot be read is retried); caught so a connected socket is never dropped unclosed.
    const lease = this.opts.lease;
    const connect = lease
      ? lease(target, forwarded).then((l) => {
        this.lease = l;
        return l.upstream;
      })
      : this.metrics.upstreamConnect(connectUpstream(target, forwarded));
    Promise.all([connect, this.opts.maskingReady?.().catch(() => {})]).then(
      ([up]) => {
        this.connectPending = false;
        this.slot?.connected();
        this.onUpstreamReady(up, target, negotiate, notices);
      },
      (err: unknown) => {
        this.connectPending = false;
        this.slot?.connected();
        if (err instanceof PoolWaitTimeout) {
          log.warn('no pooled upstream connection came free', { session: this.id, connection: connection.name, size: err.size });
          if (this.state === 'closed') this.slot?.release();
          else this.refuse({ severity: 'FATAL', code: '53300', message: `phigate: ${err.message}`, hint: `try again shortly, or ask the operator to raise connections.${connection.name}.pool.size` }, CloseCode.Refused, `connections.${connection.name}.pool.size`);
          return;
        }
        const e = err instanceof UpstreamError ? err : new UpstreamError('protocol', '08P01', String(err));
        log.error('upstream connect failed', { session: this.id, connection: connection.name, kind: e.kind, sqlstate: e.sqlstate, error: e.message });
        if (this.state === 'closed') this.slot?.release();
        else this.refuse(upstreamFailure(connection.name, e, target.user), CloseCode.UpstreamFailed);
      },
    );
  }

  /** Over one of this replica's session limits: 53300, naming the limit, its value and its key. */
  private refuseLimit(r: LimitRefusal): void {
    this.refuse({
      severity: 'FATAL', code: '53300', message: `phigate: ${r.message}`,
      hint: `end sessions you no longer need, or ask the operator to raise ${r.key}`,
    }, CloseCode.Refused, r.key);
  }

  /** A session that never started: the client gets `fields`, the evidence a session.refused record. */
  private refuse(fields: ErrorFields, closeCode: number, limit?: string): void {
    const { identity, connection, log } = this.opts;
    log.warn('session refused', { session: this.id, connection: connection.name, subject: identity.subject, code: fields.code, limit, reason: fields.message });
    try {
      this.opts.audit?.append({
        type: 'session.refused', session: this.id, user: identity.name, subject: identity.subject, issuer: identity.issuer,
        connection: connection.name, client_addr: this.opts.remoteAddress, application_name: this.clientParams['application_name'],
        code: fields.code, ...(limit ? { limit } : {}), reason: fields.message,
      });
    } catch (err) {
      log.error('could not write audit record', { type: 'session.refused', error: (err as Error).message });
    }
    this.fatal(fields.code, fields.message, closeCode, 'fatal', fields);
  }

  private onUpstreamReady(up: UpstreamSession, target: UpstreamTarget, negotiate: Buffer | undefined, notices: Buffer[]): void {
    if (this.state !== 'connecting' && this.lease) {
      // The client left while connecting: nothing was sent on the pooled connection.
      this.lease.release({ quiet: true, status: 'I' });
      this.slot?.release();
      return;
    }
    if (this.state !== 'connecting') {
      // The client left while connecting: say goodbye, and give the slot back once the backend is gone.
      const sock = up.socket;
      sock.once('close', () => this.slot?.release());
      sock.on('error', () => {});
      sock.end(TERMINATE);
      sock.setTimeout(5_000, () => sock.destroy());
      return;
    }
    const unsafe = unsafeStartup(up.parameters);
    if (unsafe) {
      up.socket.destroy();
      this.fatal('0A000', `phigate: ${unsafe}; phigate reads statements as UTF-8 with standard_conforming_strings on`, CloseCode.UpstreamFailed);
      return;
    }
    this.upstream = up.socket;
    this.clientUtf8 = isUtf8Name(up.parameters.get('client_encoding') ?? 'UTF8');
    const { identity, label } = this.opts;
    const shared = this.opts.classifier;
    // Texts analysed off the event loop are answered from their analysis; short ones never look.
    const classifier = {
      classify: (sql: string): Classification =>
        (this.preclassified.size > 0 && sql.length >= OFF_THREAD_STATEMENTS * 2 ? this.preclassified.get(sql)?.c : undefined) ?? shared.classify(sql),
    };
    this.gate = new StatementGate({
      policy: this.opts.policy,
      classifier,
      connection: this.opts.connection.name,
      identity: { name: identity.name, subject: identity.subject, groups: identity.groups, kind: label ? 'agent' : identity.kind },
      maskedColumns: this.opts.maskedColumns,
      maskedReader: this.opts.masking !== undefined,
      catalog: this.opts.catalog,
    });
    const lease = this.lease;
    this.upstreamCancel = lease ? () => lease.cancel() : () => cancelUpstream(target, up.backendKey);
    this.txStatus = up.transactionStatus;
    if (this.opts.masking) {
      this.masking = new MaskingLayer({ ...this.opts.masking, classify: (sql) => classifier.classify(sql) }, this.tracker);
    } else if (this.opts.recordingMasking && this.opts.recordingsDir) {
      this.recordMask = new MaskingLayer({ ...this.opts.recordingMasking, classify: (sql) => classifier.classify(sql) }, this.tracker);
    }
    if (this.opts.recordingsDir) {
      try {
        this.recorder = new SessionRecorder(this.opts.recordingsDir, this.id, {
          user: identity.name, subject: identity.subject, kind: label ? 'agent' : identity.kind, agent: label,
          connection: this.opts.connection.name, client_addr: this.opts.remoteAddress,
          application_name: this.clientParams['application_name'], client_user: this.clientParams['user'], client_database: this.clientParams['database'],
        }, this.opts.log, this.opts.recordingRowCap);
      } catch (err) {
        // No recording, no session: the evidence would be incomplete.
        up.socket.destroy();
        this.fatal('58030', `phigate cannot record this session: ${(err as Error).message}`, CloseCode.ServerShutdown);
        return;
      }
    }
    if (!this.recordEvents([{
      type: 'session.start', session: this.id, user: identity.name, subject: identity.subject, issuer: identity.issuer,
      kind: label ? 'agent' : identity.kind, agent: label, connection: this.opts.connection.name, client_addr: this.opts.remoteAddress,
      application_name: this.clientParams['application_name'], client_user: this.clientParams['user'],
      client_database: this.clientParams['database'], reason: this.opts.reason,
    }])) {
      up.socket.destroy();
      return;
    }
    this.recorded = true;
    this.clientKey = this.opts.cancels.register({
      sessionId: this.id,
      subject: this.opts.identity.subject,
      issuer: this.opts.identity.issuer,
      cancel: () => this.cancel(),
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
    sock.on('error', this.onUpstreamError);
    sock.on('close', this.onUpstreamClose);
    this.state = 'relay';
    if (up.leftover.length > 0) this.onUpstreamData(up.leftover);
    sock.resume();
    const queued = this.queued;
    this.queued = [];
    if (queued.length > 0) this.relayMessages(queued, undefined);
    this.checkDepth();
  }

  private relayToUpstream(data: Buffer): void {
    const msgs = this.parser.push(data);
    if (this.opts.source) {
      const now = Date.now();
      for (const m of msgs) if (m.type === 'Query' || m.type === 'Parse') this.arrivals.set(m, now);
    }
    this.relayMessages(msgs, data);
    this.checkDepth();
  }

  /**
   * Backpressure at limits.pipeline_depth: a client with more statements on their way than that
   * stops being read (as PostgreSQL stops reading a client that does not read its answers) until
   * half of them are answered. Clients that pipeline (pgjdbc batches, pgbench and psql pipelines)
   * wait instead of failing; the gateway's memory for them stays bounded.
   */
  private checkDepth(): void {
    if (this.depthPaused || this.state !== 'relay') return;
    const limit = this.opts.policy().limits.pipelineDepth;
    if (this.tracker.statementsPending <= limit) return;
    this.depthPaused = true;
    this.ws.pause();
    // Answers PostgreSQL keeps in its buffer until a Sync or Flush must reach us, or the pause never ends.
    this.writeUpstream([FLUSH], undefined);
    this.opts.log.info('pipeline depth reached; reading the client paused', { session: this.id, pending: this.tracker.statementsPending, limit });
  }

  private resumeAfterDepth(): void {
    if (!this.depthPaused || this.state !== 'relay') return;
    if (this.tracker.statementsPending > this.opts.policy().limits.pipelineDepth / 2) return;
    this.depthPaused = false;
    if (!this.clientPaused && this.backlogBytes <= BACKLOG_HIGH_WATER) this.ws.resume();
  }

  /** `data`, when given, is the chunk the messages were parsed from (enables whole-chunk writes). */
  private relayMessages(msgs: FrontendMessage[], data: Buffer | undefined): void {
    if (!this.upstream || msgs.length === 0) return;
    if (this.held || this.barrierAt > 0 || this.catalogWait || this.analysing || this.sliced) {
      for (const m of msgs) {
        this.backlog.push(m);
        this.backlogBytes += m.type === 'ProtocolError' ? 0 : m.raw.length;
      }
      // Keep reading while a statement waits, so a client that leaves is noticed; only a client that
      // keeps sending that much meanwhile is paused.
      if (this.backlogBytes > BACKLOG_HIGH_WATER) this.ws.pause();
      this.passCopyIn();
      return;
    }
    const gate = this.gate!;
    const limits = this.opts.policy().limits;
    const out: Buffer[] = [];
    const events: AuditEvent[] = [];
    let unchanged = true;
    const started = performance.now();
    for (let i = 0; i < msgs.length; i++) {
      // Nothing after a Terminate is read, as in PostgreSQL.
      if (this.terminated) {
        unchanged = false;
        break;
      }
      const m = msgs[i]!;
      // Many messages in one chunk, each cheap alone (statements just under the worker's threshold,
      // each of a new shape), can still add up: past SLICE_MS the rest waits for the next turn.
      if (i > 0 && performance.now() - started > SLICE_MS) {
        if (!this.recordEvents(events)) return;
        this.writeUpstream(out, undefined);
        this.sliceRest(msgs.slice(i));
        return;
      }
      const text = m.type === 'Query' || m.type === 'Parse' ? m : undefined;
      // Over limits.statement_bytes: refused before anything reads the text.
      const oversize = text && statementSizeError(text.sql, limits);
      // A named statement can be run again from SQL (CREATE TABLE AS EXECUTE): nothing of it is
      // left to output masking. Nor when converting raw text to the client's encoding could fail
      // with an error that quotes it.
      const allowUnknown = text !== undefined && this.waited.has(text);
      const plainOutputs = this.clientUtf8 && !(text?.type === 'Parse' && text.name !== '');
      if (text && !oversize && this.needsAnalysis(text, allowUnknown, plainOutputs)) {
        // A large text: parsed in the worker while this client's later messages wait behind it.
        if (!this.recordEvents(events)) return;
        this.writeUpstream(out, undefined);
        this.analyse(text, msgs.slice(i), allowUnknown, plainOutputs);
        return;
      }
      if (this.opts.source && text && !oversize && !this.rewrites.has(text)) {
        const analysed = this.analyses.get(text);
        const fits = analysed !== undefined && analysed.allowUnknown === allowUnknown && analysed.plainOutputs === plainOutputs;
        const rw = (fits ? analysed.a.rewrite : undefined) ?? this.opts.source.rewrite(text.sql, allowUnknown, plainOutputs);
        if (rw.kind === 'unknown') {
          // A relation the catalog does not know (yet): it may be a view over masked data made a
          // moment ago. Nothing from here on goes upstream until a newer snapshot has been read.
          if (!this.recordEvents(events)) return;
          this.writeUpstream(out, undefined);
          this.waitForCatalog(text, msgs.slice(i));
          return;
        }
        this.rewrites.set(text, rw);
        if (rw.kind === 'rewritten') unchanged = false;
      }
      let verdict: Verdict | undefined;
      let sql: string | undefined;
      let continues = false;
      switch (m.type) {
        case 'Query':
          verdict = oversize ? { action: 'block', error: oversize } : this.atSource(m, gate.onQuery(m.sql));
          sql = m.sql;
          break;
        case 'Parse':
          verdict = oversize ? gate.refuseParse(m.name, oversize) : this.atSource(m, gate.onParse(m.name, m.sql));
          // Preparing runs nothing: a Parse is recorded only when refused; each Execute is recorded.
          if (verdict.action === 'block') sql = m.sql;
          break;
        case 'Bind':
          gate.onBind(m.portal, m.statement);
          this.executedPortals.delete(m.portal);
          break;
        case 'Execute':
          verdict = gate.onExecute(m.portal);
          sql = verdict.text;
          continues = this.executedPortals.has(m.portal);
          this.executedPortals.add(m.portal);
          break;
        case 'Close':
          gate.onClose(m.kind, m.name);
          if (m.kind === 'P') this.executedPortals.delete(m.name);
          break;
        case 'FunctionCall':
          verdict = {
            action: 'block',
            error: { severity: 'ERROR', code: '42501', message: 'phigate: the fast-path FunctionCall message is not allowed; call the function in a statement instead' },
          };
          break;
        case 'Terminate':
          this.terminated = true;
          // A pooled connection outlives the session: the client's goodbye is not the backend's.
          if (this.lease) {
            unchanged = false;
            continue;
          }
          break;
        case 'ProtocolError': {
          const size = m.error.size;
          if (size) {
            // Nothing of it was read, and the stream cannot be resynchronized after it (as in PostgreSQL).
            const error = messageSizeError(size.length, size.limit);
            events.push(this.statementEvent('', { action: 'block', error }, { redacted: `/* phigate: a message of ${size.length} bytes, not read */` }));
            if (!this.recordEvents(events)) return;
            this.writeUpstream(out, undefined);
            this.opts.log.warn('client message over limits.message_bytes', { session: this.id, length: size.length, limit: size.limit });
            this.fatalFields(error, CloseCode.ProtocolError);
            return;
          }
          if (!this.recordEvents(events)) return;
          this.writeUpstream(out, undefined);
          this.opts.log.warn('client protocol error', { session: this.id, error: m.error.message });
          this.fatal('08P01', `invalid frontend message: ${m.error.message}`, CloseCode.ProtocolError);
          return;
        }
      }
      let ev: StatementEvent | undefined;
      if (sql !== undefined && verdict !== undefined) {
        ev = this.statementEvent(sql, verdict, { continues, rewritten: this.rewriteInfo(m, sql), redacted: oversize ? oversizeEvidence(sql) : verdict.redacted });
        events.push(ev);
      }
      if (verdict === undefined || verdict.action === 'allow') {
        if (this.forward(out, m)) unchanged = false;
        this.expectAnswer(m, ev);
        if (this.afterForward(m, verdict?.barrier === true, verdict?.copyIn === true)) {
          // A settings barrier: nothing more goes upstream until the server has answered it.
          for (let j = i + 1; j < msgs.length; j++) this.backlog.push(msgs[j]!);
          if (!this.recordEvents(events)) return;
          this.writeUpstream(out, undefined);
          return;
        }
        continue;
      }
      unchanged = false;
      if (verdict.action === 'block') {
        this.opts.log.info('statement blocked', { session: this.id, rule: verdict.decision?.rule, code: verdict.error.code });
        out.push(this.poison(m, verdict.error));
        this.expectAnswer(m, undefined);
        this.afterForward(m, false);
        continue;
      }
      if (!this.recordEvents(events)) return;
      this.writeUpstream(out, undefined);
      this.hold(m, verdict, msgs.slice(i + 1));
      return;
    }
    if (!this.recordEvents(events)) return;
    this.writeUpstream(out, unchanged ? data : undefined);
    if (this.terminated && this.lease) this.endAfterTerminate();
  }

  /**
   * A Terminate on a pooled connection is not forwarded (the backend outlives the session), so no
   * closing backend ends the session: it ends here, once every Query and Sync sent before the
   * Terminate is answered, as PostgreSQL answers what came before a Terminate and then closes.
   */
  private endAfterTerminate(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.readySent !== this.framer.readyForQueryCount) return;
    this.closeAfterTerminate();
  }

  /** The client said goodbye and has every answer: a normal close, whose frame must still be read. */
  private closeAfterTerminate(): void {
    this.state = 'closing';
    this.ws.close(CloseCode.Normal);
    // As in cleanup: a stream paused for backpressure must read the client's close frame.
    this.ws.resume();
  }

  /**
   * Counts what will produce a ReadyForQuery and arms the settings barrier: after a Query that may
   * change how statements are read, or after the Sync following such an Execute. Returns true when
   * the barrier is now up and later messages must wait.
   */
  private afterForward(m: WireMessage, barrier: boolean, copyIn = false): boolean {
    // COPY FROM STDIN by Execute: the server ignores the Sync behind it while the copy runs, so that
    // Sync would wait forever for its ReadyForQuery and every later answer would be paired with the
    // message before its own. The barrier goes up at once: copy data passes (passCopyIn, which drops
    // Sync and Flush as the server would), the rest waits until the COPY is answered. An Execute the
    // server discards (after an extended-protocol error) leaves the tracker idle: no barrier then.
    if (copyIn && m.type === 'Execute') {
      this.unsynced = true;
      if (this.tracker.idle) return false;
      this.barrierAt = this.readySent || 1;
      return true;
    }
    if (copyIn && m.type === 'Query') barrier = true;
    if (barrier && m.type === 'Execute') this.barrierAfterSync = true;
    if (m.type !== 'Query' && m.type !== 'Sync' && m.type !== 'FunctionCall') {
      if (!m.type.startsWith('Copy')) this.unsynced = true;
      return false;
    }
    this.unsynced = false;
    this.readySent++;
    if ((barrier && m.type === 'Query') || (m.type === 'Sync' && this.barrierAfterSync)) {
      this.barrierAfterSync = false;
      // A Query after an extended-protocol error, before its Sync, is discarded by the server: it
      // changes nothing and gets no answer, so waiting for one would hold the client's Sync forever.
      if (this.tracker.idle) return false;
      this.barrierAt = this.readySent;
      return true;
    }
    return false;
  }

  /**
   * The server answered the barrier statement (and its settings were checked): let the rest go.
   * Nothing was forwarded after it, so that is when the tracker has nothing left pending (counting
   * ReadyForQuery would wait forever for a Query the server discarded after an extended-protocol error).
   */
  private releaseBarrier(): void {
    if (this.barrierAt === 0 || !this.tracker.idle || this.state !== 'relay') return;
    this.barrierAt = 0;
    this.drainBacklog();
  }

  /**
   * COPY FROM STDIN in the barrier statement's Query: the server waits for the data the barrier
   * holds back. Copy data is not statement text, so it goes on until CopyDone or CopyFail; anything
   * else the client sends during the COPY ends the session (the server would refuse it as well, and
   * holding it would wait forever).
   */
  private passCopyIn(): void {
    if (!this.copyIn || this.barrierAt === 0 || this.held || this.catalogWait || this.state !== 'relay') return;
    const out: Buffer[] = [];
    let n = 0;
    while (n < this.backlog.length && this.copyIn) {
      const m = this.backlog[n++]!;
      if (m.type === 'ProtocolError') return this.fatal('08P01', `invalid frontend message: ${m.error.message}`, CloseCode.ProtocolError);
      this.backlogBytes -= m.raw.length;
      // The server ignores Flush and Sync during COPY; dropping them here does the same.
      if (m.type === 'Flush' || m.type === 'Sync') continue;
      if (m.type !== 'CopyData' && m.type !== 'CopyDone' && m.type !== 'CopyFail') {
        return this.fatal('08P01', `phigate: unexpected ${m.type} message during COPY FROM STDIN`, CloseCode.ProtocolError);
      }
      out.push(m.raw);
      if (m.type !== 'CopyData') {
        this.copyIn = false;
        // After a COPY run by Execute the server keeps its CommandComplete buffered until a Sync or
        // Flush; the client's Sync waits behind the barrier for that very answer, so ask for it.
        out.push(FLUSH);
      }
    }
    this.backlog.splice(0, n);
    if (out.length > 0) this.writeUpstream(out, undefined);
    if (this.backlogBytes <= BACKLOG_HIGH_WATER && !this.clientPaused) this.ws.resume();
  }

  /** What queued while a statement was held, a barrier was up or the catalog was read goes on once none is. */
  private drainBacklog(): void {
    if (this.held || this.barrierAt > 0 || this.catalogWait || this.analysing || this.sliced || this.state !== 'relay') return;
    const backlog = this.backlog;
    this.backlog = [];
    this.backlogBytes = 0;
    if (!this.clientPaused && !this.depthPaused) this.ws.resume();
    if (backlog.length > 0) this.relayMessages(backlog, undefined);
    this.checkDepth();
  }

  /** Queues `rest` ahead of the backlog and relays it at the next turn of the event loop. */
  private sliceRest(rest: FrontendMessage[]): void {
    this.sliced = true;
    this.backlog = [...rest, ...this.backlog];
    for (const b of rest) this.backlogBytes += b.type === 'ProtocolError' ? 0 : b.raw.length;
    setImmediate(() => {
      this.sliced = false;
      this.drainBacklog();
    });
  }

  /** Does this Query/Parse need an analysis off the event loop first (a large text not analysed yet, or with other options)? */
  private needsAnalysis(m: Extract<WireMessage, { type: 'Query' | 'Parse' }>, allowUnknown: boolean, plainOutputs: boolean): boolean {
    if (!this.opts.analyze || !isHeavy(m.sql)) return false;
    let done = this.analyses.get(m);
    if (done === undefined) {
      // The same text again (a client repeating a large statement): its analysis still holds while
      // the catalog has not changed (the rewrite depends on it; the classification does not).
      const again = this.preclassified.get(m.sql)?.analysed;
      if (again !== undefined && (this.opts.source === undefined || again.snapshot === this.opts.catalog?.())) {
        this.analyses.set(m, again);
        done = again;
      }
    }
    if (done !== undefined) return this.opts.source !== undefined && !this.rewrites.has(m) && (done.allowUnknown !== allowUnknown || done.plainOutputs !== plainOutputs);
    // A text seen before is in the classifier's cache: inline costs a lookup (the masked reader's rewrite has its own cache).
    return this.opts.classifier.cached(m.sql) === undefined || this.opts.source !== undefined;
  }

  /** Sends `m`'s text to the analysis worker; `rest` (from `m` on) waits until its analysis is back. */
  private analyse(m: Extract<WireMessage, { type: 'Query' | 'Parse' }>, rest: FrontendMessage[], allowUnknown: boolean, plainOutputs: boolean): void {
    this.analysing = true;
    this.backlog = [...rest, ...this.backlog];
    for (const b of rest) this.backlogBytes += b.type === 'ProtocolError' ? 0 : b.raw.length;
    const layer = this.masking ?? this.recordMask;
    const snapshot = this.opts.catalog?.();
    const req: AnalysisRequest = { sql: m.sql, lineage: layer !== undefined, ...(this.opts.source ? { rewrite: { allowUnknown, plainOutputs } } : {}) };
    let failed = false;
    this.opts.analyze!(req).catch((err: Error) => {
      this.opts.log.error('statement analysis failed; the statement is refused', { session: this.id, error: err.message });
      failed = true;
      return failedAnalysis(m.sql, 'the analysis worker failed');
    }).then((a) => {
      if (this.state !== 'relay') return;
      const analysed: Analysed = { a, allowUnknown, plainOutputs, snapshot };
      this.analyses.set(m, analysed);
      const c = classificationOf(a.classification, m.sql);
      if (this.preclassified.delete(m.sql)) this.preclassifiedChars -= m.sql.length;
      // A failure is this message's only: the same text sent again is analysed again.
      this.preclassified.set(m.sql, { c, analysed: failed ? undefined : analysed });
      this.preclassifiedChars += m.sql.length;
      while (this.preclassified.size > 1 && (this.preclassified.size > ANALYSED_KEPT || this.preclassifiedChars > ANALYSED_CHARS)) {
        const oldest = this.preclassified.keys().next().value as string;
        this.preclassified.delete(oldest);
        this.preclassifiedChars -= oldest.length;
      }
      this.gate!.adoptRedaction(c, a.redacted);
      if (a.lineage && snapshot) layer?.adoptLineage(m.sql, snapshot, a.lineage);
      this.analysing = false;
      this.drainBacklog();
    }, (err: Error) => {
      this.opts.log.error('statement analysis failed; ending the session', { session: this.id, error: err.message });
      this.fatal('XX000', 'phigate: internal error while analysing a statement', CloseCode.ProtocolError);
    });
  }

  /**
   * Masking at the source refuses what it cannot rewrite safely: the statement is blocked with the
   * rewrite's reason (the policy's own block, if any, is kept).
   */
  private atSource(m: WireMessage, verdict: Verdict): Verdict {
    const rw = this.rewrites.get(m);
    if (rw?.kind !== 'refused' || verdict.action === 'block') return verdict;
    this.opts.log.info('statement refused by masking at the source', { session: this.id, code: rw.code });
    return { action: 'block', decision: verdict.decision, error: { severity: 'ERROR', code: rw.code, message: rw.message }, text: verdict.text };
  }

  /** What the evidence says of a rewrite: the relations replaced and the columns masked at the source. */
  private rewriteInfo(m: WireMessage, sql: string): { relations: string[]; columns: string[] } | undefined {
    const rw = this.rewrites.get(m);
    if (rw?.kind === 'rewritten') {
      this.rewritten.delete(sql);
      this.rewritten.set(sql, { edits: rw.edits, relations: rw.relations, columns: rw.columns });
      if (this.rewritten.size > REWRITES_KEPT) this.rewritten.delete(this.rewritten.keys().next().value as string);
      return { relations: rw.relations, columns: rw.columns };
    }
    if (m.type === 'Execute') {
      const r = this.rewritten.get(sql);
      return r === undefined ? undefined : { relations: r.relations, columns: r.columns };
    }
    return undefined;
  }

  /** The bytes that go upstream for a message: the rewritten statement for a masked reader. */
  private wireBytes(m: WireMessage): Buffer {
    const rw = this.rewrites.get(m);
    if (rw?.kind !== 'rewritten') return m.raw;
    if (m.type === 'Query') return serialize.query(rw.sql);
    if (m.type === 'Parse') return serialize.parse({ name: m.name, text: rw.sql, types: m.paramTypes });
    return m.raw;
  }

  /** Holds `rest` (starting with `m`) until the catalog has been read after `m` arrived, then goes on. */
  private waitForCatalog(m: WireMessage, rest: FrontendMessage[]): void {
    this.catalogWait = true;
    this.backlog = [...rest, ...this.backlog];
    for (const b of rest) this.backlogBytes += b.type === 'ProtocolError' ? 0 : b.raw.length;
    const since = this.arrivals.get(m) ?? Date.now();
    const resume = (fresh: boolean): void => {
      if (fresh) this.waited.add(m);
      else {
        this.rewrites.set(m, {
          kind: 'refused', code: '58000',
          message: 'phigate: this statement names a relation phigate could not look up in the database catalog (the catalog could not be read), so it was not run; try again',
        });
      }
      this.catalogWait = false;
      this.drainBacklog();
    };
    this.opts.source!.refresh(since).then(resume, () => resume(false));
  }

  /**
   * The evidence record of one decided statement (redacted text only), counted as one of the
   * session's statements and begun in its recording. `decision`: the outcome of a statement held
   * earlier: its second record, neither a new statement nor a second one in the recording (whose
   * wait events tell the outcome), so that the session's count, its session.end record and the
   * recording's end line agree.
   * `continues`: an Execute of a portal that already ran (a cursor-style fetch of the next rows): the
   * recording counts its rows against the same per-statement cap as the first part.
   */
  private statementEvent(
    sql: string, verdict: Verdict,
    extra: {
      decision?: StatementDecision; approval?: string; continues?: boolean; rewritten?: { relations: string[]; columns: string[] };
      /** The evidence text when it is not the gate's redaction of `sql` (a text refused unread). */
      redacted?: string;
    } = {},
  ): StatementEvent {
    const { decision, approval } = extra;
    const d = verdict.decision;
    const ev: StatementEvent = {
      type: 'statement', session: this.id, user: this.opts.identity.name, connection: this.opts.connection.name,
      sql: extra.redacted ?? this.gate!.redact(sql), kinds: d?.kinds ?? [], tables: d?.tables ?? [],
      // Refused by no rule: an error (cannot classify), or a block when a limit refused it.
      decision: decision ?? (verdict.action === 'block' && !d && verdict.error.code !== PROGRAM_LIMIT_EXCEEDED ? 'error' : verdict.action),
      rule: d?.rule, reason: verdict.action === 'block' ? verdict.error.message : d?.reason,
      policy: this.opts.policyVersion(), approval,
    };
    if (extra.continues) ev.continues = true;
    this.metrics.decided(ev.decision);
    if (extra.rewritten && ev.decision !== 'block' && ev.decision !== 'error') ev.rewritten = extra.rewritten;
    if (decision === undefined) {
      this.statements++;
      this.recorder?.statement({ sql: ev.sql, decision: ev.decision, rule: ev.rule, kinds: ev.kinds, tables: ev.tables }, extra.continues === true);
    }
    return ev;
  }

  /**
   * Notes what answer a message that just went upstream will get: a Query or an Execute finishes a
   * statement (`ev`, its record, when it was recorded as one that runs), a Sync ends a batch.
   */
  private expectAnswer(m: WireMessage, ev: StatementEvent | undefined): void {
    const runs = ev !== undefined && (ev.decision === 'allow' || ev.decision === 'approved') ? ev : undefined;
    if (m.type === 'Query' || m.type === 'FunctionCall') this.results.query(runs);
    else if (m.type === 'Execute') this.results.execute(runs);
    else if (m.type === 'Sync') this.results.sync();
  }

  /** Completes statement records from the server's answers (CommandComplete, errors, ReadyForQuery...). */
  private noteResult(f: BackendFrame): void {
    let info: { tag?: string; code?: string } | undefined;
    if (f.type === 0x43) {
      const tag = decodeCommandComplete(f.body);
      info = { tag: tag instanceof ProtocolError ? undefined : tag };
    } else if (f.type === 0x45) {
      const e = decodeErrorFieldMap(f.body);
      info = { code: e instanceof ProtocolError ? undefined : e['C'] };
    }
    if (f.type === 0x5a) {
      this.txStatus = f.body[0] === 0x49 ? 'I' : f.body[0] === 0x54 ? 'T' : 'E';
      this.noteIdle(this.txStatus !== 'I');
    }
    const done = this.results.backend(f.type, info);
    for (const r of done) if (!r.skipped && r.ref.kinds.some((k) => DDL_KINDS.has(k))) this.ddlRan = true;
    if (f.type === 0x5a && f.body[0] === 0x49) {
      // Idle: no transaction, so no portal outlives this point.
      this.executedPortals.clear();
      // The catalog masking reads changes when DDL has run and committed, not when it is decided:
      // it is refreshed once the session is idle again (autocommit: right after the DDL; else at COMMIT).
      if (this.ddlRan) {
        this.ddlRan = false;
        this.opts.onDdl?.();
      }
    }
    if (done.length === 0) return;
    const masked = (this.masking ?? this.recordMask)?.takeMasked() ?? [];
    for (const r of done) {
      const seq = this.recordSeq.get(r.ref);
      if (seq === undefined) continue;
      // Nothing waits on this record: it rides along with the session's next write (one syscall
      // instead of two per statement), or is written at session end.
      // Absent fields are left undefined (the canonical form omits them) rather than spread in.
      this.deferred.push({
        type: 'statement.result', session: this.id, user: this.opts.identity.name, connection: this.opts.connection.name,
        statement: seq, duration_ms: r.durationMs, rows: r.rows, tag: r.tag || undefined, error: r.error || undefined,
        skipped: r.skipped || undefined, suspended: r.suspended || undefined, masked: masked.length ? masked : undefined,
      });
    }
    if (this.deferred.length >= 64) this.recordEvents([]);
  }

  /**
   * A ReadyForQuery on its way to the client: inside a transaction (or a failed one) with nothing sent
   * and unanswered, nothing held and nothing queued, the session is now idle in it. As with
   * PostgreSQL's idle_in_transaction_session_timeout, only that state is limited (a statement held
   * for approval is the gateway's wait, not the client's), and any client message ends it.
   */
  private noteIdle(inTransaction: boolean): void {
    const ms = this.opts.policy().limits.idleInTransactionTimeoutMs;
    const idle = inTransaction && ms > 0 && !this.unsynced && !this.held && !this.catalogWait &&
      this.backlog.length === 0 && this.readySent === this.framer.readyForQueryCount;
    this.idleFrom = idle ? Date.now() : 0;
    if (idle && this.idleTimer === undefined) this.idleTimer = setTimeout(this.onIdleTimer, ms).unref();
  }

  private readonly onIdleTimer = (): void => {
    this.idleTimer = undefined;
    const ms = this.opts.policy().limits.idleInTransactionTimeoutMs;
    if (this.idleFrom === 0 || this.state !== 'relay' || ms === 0) return;
    // A client still taking its last answer is slow, not idle: it gets the whole limit once it has read it.
    if (this.ws.bufferedAmount > 0) this.idleFrom = Date.now();
    const left = this.idleFrom + ms - Date.now();
    if (left > 0) {
      this.idleTimer = setTimeout(this.onIdleTimer, left).unref();
      return;
    }
    this.opts.log.info('idle in transaction timeout', { session: this.id, timeout_ms: ms });
    this.fatal('25P03', `phigate: idle in transaction past ${limitKey('idleInTransactionTimeoutMs')} (${formatDuration(ms)}); the transaction was rolled back`,
      CloseCode.Timeout, 'idle in transaction timeout');
  };

  /**
   * Writes evidence before anything it describes is forwarded. When the log cannot be written the
   * session ends (fail closed): nothing unrecorded reaches the database.
   */
  private recordEvents(events: AuditEvent[]): boolean {
    const audit = this.opts.audit;
    if (this.deferred.length > 0) {
      const deferred = this.deferred;
      this.deferred = [];
      for (const e of events) deferred.push(e);
      events = deferred;
    }
    if (!audit || events.length === 0) return true;
    try {
      const results = audit.appendMany(events);
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        // A statement that runs gets a statement.result record, naming this seq, once answered.
        if (e.type === 'statement' && (e.decision === 'allow' || e.decision === 'approved')) this.recordSeq.set(e, results[i]!.seq);
      }
      return true;
    } catch (err) {
      this.opts.log.error('audit write failed; ending the session', { session: this.id, error: (err as Error).message });
      this.fatal('58030', 'phigate cannot write its audit log, so no statement can run; the session is ended', CloseCode.ServerShutdown);
      return false;
    }
  }

  /**
   * Replaces a refused message by one that fails upstream at the same point (a syntax error carrying
   * a secret token), so PostgreSQL itself aborts the transaction and skips to Sync exactly as for a
   * real error; the upstream's error is then swapped for ours on the way back.
   */
  private poison(m: WireMessage, error: ErrorFields): Buffer {
    const token = `PHIGATE_REFUSED_${randomBytes(12).toString('hex')}`;
    this.poisons.set(token, error);
    const t = this.tracker;
    if (m.type === 'Parse') {
      t.parse(m.name, token);
      return serialize.parse({ name: m.name, text: token, types: [] });
    }
    if (m.type === 'Execute') {
      t.parse(token.toLowerCase(), token);
      return serialize.parse({ name: token.toLowerCase(), text: token, types: [] });
    }
    t.query(token);
    return serialize.query(token);
  }

  /**
   * Queues a message for the upstream and, when results are masked, tells the result tracker what
   * the server will answer; an Execute of a portal nobody described gets a Describe first, so its
   * rows' shape is known before they arrive.
   */
  private forward(out: Buffer[], m: WireMessage): boolean {
    const t = this.tracker;
    let injected = false;
    switch (m.type) {
      case 'Query':
        (this.masking ?? this.recordMask)?.noteStatements(m.sql, this.rewrites.get(m)?.kind === 'rewritten');
        t.query(m.sql);
        break;
      case 'Parse':
        (this.masking ?? this.recordMask)?.noteStatements(m.sql, this.rewrites.get(m)?.kind === 'rewritten');
        t.parse(m.name, m.sql);
        break;
      case 'Bind':
        // A Bind that fails can leave the portal's previous statement bound (a named portal that
        // exists, or an error before the server replaces the unnamed one); a later Execute of that
        // name would then run what the gate and the tracker do not expect. Closing it first makes
        // the name mean this Bind's statement or nothing (closing a missing portal is no error).
        t.close('P', m.portal, true);
        out.push(serialize.close({ type: 'P', name: m.portal }));
        injected = true;
        t.bind(m.portal, m.statement, m.resultFormats);
        break;
      case 'Describe':
        t.describe(m.kind, m.name);
        break;
      case 'Execute':
        if (t.needsDescribe(m.portal)) {
          t.describe('P', m.portal, true);
          out.push(serialize.describe({ type: 'P', name: m.portal }));
          injected = true;
        }
        t.execute(m.portal);
        break;
      case 'Close':
        t.close(m.kind, m.name);
        break;
      case 'Sync':
        t.sync();
        break;
      case 'FunctionCall':
        t.functionCall();
        break;
    }
    out.push(this.wireBytes(m));
    return injected;
  }

  private hold(m: WireMessage, verdict: Extract<Verdict, { action: 'approve' }>, rest: FrontendMessage[]): void {
    this.backlog = rest;
    const approvals = this.opts.approvals;
    const d = verdict.decision;
    if (!approvals) {
      this.held = { message: m, verdict };
      this.finishHold({ approved: false, cause: 'denied', reason: 'approvals are not available on this gateway' });
      return;
    }
    const { identity, label } = this.opts;
    const handle = approvals.request({
      kind: 'statement',
      requester: requesterOf(identity, label),
      sessionId: this.id,
      connection: this.opts.connection.name,
      statement: verdict.statement,
      fingerprint: verdict.fingerprint,
      rule: d.rule ?? '(default)',
      reason: d.reason,
      tables: d.tables,
      approvers: d.approvers ?? [],
      timeoutMs: d.timeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS,
    });
    this.held = { message: m, verdict, handle };
    this.recordEvents([{
      type: 'approval.requested', approval: handle.id, request: 'statement', session: this.id, user: identity.name,
      connection: this.opts.connection.name, sql: verdict.statement, rule: d.rule ?? '(default)', tables: [...d.tables],
      approvers: [...(d.approvers ?? [])], expires_at: new Date(Date.now() + (d.timeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS)).toISOString(),
    }]);
    this.recorder?.wait({ approval: handle.id, state: 'waiting', approvers: [...(d.approvers ?? [])], rule: d.rule });
    this.opts.log.info('statement held for approval', { session: this.id, approval: handle.id, rule: d.rule });
    this.control({ type: 'notice', message: `waiting for approval ${handle.id} (rule "${d.rule}"; approvers: ${(d.approvers ?? []).join(', ')})` });
    handle.outcome.then(
      (o) => this.finishHold(o),
      (err: Error) => this.finishHold({ approved: false, cause: 'denied', reason: `approval failed: ${err.message}` }),
    );
  }

  private finishHold(o: Outcome): void {
    const held = this.held;
    if (!held || this.state !== 'relay') return;
    this.held = undefined;
    const d = held.verdict.decision;
    const id = held.handle?.id;
    const heldSql = 'sql' in held.message ? held.message.sql : held.verdict.statement;
    const outcome = o.approved ? 'approved' : this.cancelRequested ? 'cancelled' : o.cause;
    const events: AuditEvent[] = [];
    if (id) {
      events.push({
        type: 'approval.decided', approval: id, session: this.id, user: this.opts.identity.name, connection: this.opts.connection.name,
        outcome, approver: o.approver, reason: o.reason, scope: o.approved ? o.scope : undefined,
      });
    }
    if (id) this.recorder?.wait({ approval: id, state: outcome, approver: o.approver, reason: o.reason, rule: d.rule });
    const ev = this.statementEvent(heldSql, held.verdict, { decision: outcome, approval: id, rewritten: this.rewriteInfo(held.message, heldSql) });
    events.push(ev);
    if (!this.recordEvents(events)) return;
    let out: Buffer;
    if (o.approved) {
      this.gate!.release(o.scope, held.verdict);
      this.control({ type: 'notice', message: `approval ${id} granted by ${o.approver}${scopeNotice(o.scope)}` });
      const msgs: Buffer[] = [];
      this.forward(msgs, held.message);
      this.expectAnswer(held.message, ev);
      out = msgs.length === 1 ? msgs[0]! : Buffer.concat(msgs);
    } else {
      const error = refusalFor(o, d, id, this.cancelRequested);
      if (o.cause !== 'withdrawn' || this.cancelRequested) this.control({ type: 'notice', message: error.message.replace(/^phigate: /, '') });
      out = this.poison(held.message, error);
      this.expectAnswer(held.message, undefined);
    }
    this.cancelRequested = false;
    this.afterForward(held.message, o.approved && held.verdict.barrier === true, o.approved && held.verdict.copyIn === true);
    this.opts.log.info('approval outcome', { session: this.id, approval: id, approved: o.approved, cause: o.approved ? undefined : o.cause });
    this.writeUpstream([out], undefined);
    // With a barrier up, the backlog waits for the barrier's ReadyForQuery.
    this.drainBacklog();
  }

  /** CancelRequest from this session's client: a held statement is withdrawn, else the database is asked. */
  cancel(): Promise<void> {
    if (this.held?.handle) {
      this.cancelRequested = true;
      this.held.handle.withdraw('the client cancelled the statement');
      return Promise.resolve();
    }
    return this.upstreamCancel ? this.upstreamCancel() : Promise.resolve();
  }

  private control(msg: ControlMessage): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /** Writes `out` upstream; `whole`, when given, is a chunk whose bytes are exactly `out`. */
  private writeUpstream(out: Buffer[], whole: Buffer | undefined): void {
    const up = this.upstream!;
    if (out.length === 0) return;
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
    if (!ok && !this.clientPaused) {
      // Backpressure towards the client: stop reading the tunnel until the database catches up.
      this.clientPaused = true;
      this.ws.pause();
      up.once('drain', () => {
        this.clientPaused = false;
        if (this.state === 'relay' && !this.held && !this.depthPaused) this.ws.resume();
      });
    }
  }

  /** The body of the backend message relayFrame is at, for frameFields (one function for every message, not a closure each). */
  private frameBody: Buffer = EMPTY;
  private readonly frameFields = (): ReturnType<typeof decodeFields> => decodeFields(this.frameBody);

  private readonly onUpstreamData = (chunk: Buffer): void => {
    // After a fatal error mid-chunk the rest is dropped; nothing more goes to the client.
    if (this.state === 'closed') return;
    // Message by message when anything needs the answers: masking, recording, refusals in flight, or
    // statement.result records to complete.
    const whole = this.processFrames(chunk);
    if (whole instanceof ProtocolError) {
      this.opts.log.error('upstream protocol error', { session: this.id, error: whole.message });
      this.fatal('08P01', 'phigate received an invalid message from the database', CloseCode.UpstreamFailed);
      return;
    }
    if (this.depthPaused) this.resumeAfterDepth();
    if (whole.length === 0) return;
    this.bytesOut += whole.length;
    const ws = this.ws;
    if (ws.bufferedAmount + whole.length > CLIENT_HIGH_WATER && !this.upstreamPaused) {
      // Backpressure towards the database: a client that stops reading must not grow our memory.
      this.upstreamPaused = true;
      this.upstream!.pause();
      ws.send(whole, BINARY, () => {
        this.upstreamPaused = false;
        if (this.state === 'relay') this.upstream?.resume();
      });
    } else {
      ws.send(whole, BINARY);
    }
    if (this.barrierAt > 0) {
      this.releaseBarrier();
      this.passCopyIn();
    }
    if (this.terminated && this.lease) this.endAfterTerminate();
  };

  /**
   * Message by message (masking on, or a refusal in flight): swap poison errors for ours, check
   * setting changes, and let the masking layer rewrite result values. Returns the bytes for the
   * client, or an empty buffer once the session was ended.
   */
  private processFrames(chunk: Buffer): Buffer | ProtocolError {
    const fr = this.framer;
    const failed = fr.feed(chunk);
    if (failed) return failed;
    const sink = this.sink;
    sink.begin(chunk.length + (chunk.length >> 3));
    const recorder = this.recorder;
    try {
      for (let t = fr.next(); t >= 0; t = fr.next()) {
        const run = this.rowRun;
        // The bulk of a big result: DataRows of one result in a row, masked straight into the output.
        if (t === 0x44 && run !== undefined && (recorder === undefined || !recorder.keepsNextRow())) {
          if (run.plan) maskDataRowInto(fr.buf, fr.start, fr.end, run.plan, sink);
          else sink.append(fr.buf, fr.start, fr.end);
          recorder?.countRow();
          continue;
        }
        if (!this.relayFrame(fr.current(), sink)) return EMPTY;
      }
    } catch (err) {
      const message = err instanceof UnmaskableResult ? err.message : `phigate cannot process this result: ${(err as Error).message}`;
      this.opts.log.warn('unmaskable result; ending the session', { session: this.id, error: message });
      this.fatal('0A000', `phigate: ${message}`, CloseCode.ProtocolError);
      return EMPTY;
    }
    // next() ends with -1 when the chunk is used up, -2 (and `error` set) when the stream is invalid.
    return fr.error ?? sink.take();
  }

  /** One backend message the slow way; false when it ended the session. Throws UnmaskableResult. */
  private relayFrame(f: BackendFrame, sink: ByteSink): boolean {
    this.rowRun = undefined;
    if (f.type === 0x47 /* G: CopyInResponse */) this.copyIn = true;
    else if (f.type === 0x43 || f.type === 0x45 || f.type === 0x5a) this.copyIn = false;
    if (f.type === 0x53) {
      this.framer.parameterStatusSeen = false;
      const p = decodeParameterStatus(f.body);
      if (!(p instanceof ProtocolError) && p.name === 'client_encoding') this.clientUtf8 = isUtf8Name(p.value);
      const problem = unsafeSettingIn(f.raw);
      if (problem) {
        this.opts.log.warn('unsafe session setting', { session: this.id, setting: problem });
        this.fatal('0A000', `phigate: ${problem}; phigate reads statements as UTF-8 with standard_conforming_strings on, so this session is ended`, CloseCode.ProtocolError);
        return false;
      }
      sink.append(f.raw);
      return true;
    }
    const { tracker, masking: layer, recorder } = this;
    // Which statement an error answers, before the tracker moves past it: positions in a rewritten
    // statement are mapped back to the text the client sent.
    const answered = f.type === 0x45 && this.rewritten.size > 0 ? tracker.pendingSql() : undefined;
    this.frameBody = f.body;
    const v: BackendVerdict = tracker.backend(f.type, this.frameFields);
    let sent: Buffer | undefined;
    if (f.type === 0x45) {
      if (isFatal(f.body)) this.upstreamFatal = true;
      const e = this.replacePoison(f);
      const edits = answered === undefined ? undefined : this.rewritten.get(answered)?.edits;
      sent = layer && e === f.raw ? layer.maskServerMessage(e, edits && ((p) => originalPosition(edits, p))) : e;
    } else if (layer) sent = layer.process(f, v);
    else if (v.kind !== 'swallow') sent = f.raw;
    if (sent !== undefined) sink.append(sent);
    if (f.type === 0x43 || f.type === 0x45 || f.type === 0x5a || f.type === 0x49 || f.type === 0x73) this.noteResult(f);
    if (recorder) {
      if (this.recordMask) sent = f.type === 0x45 ? this.recordMask.maskServerMessage(sent ?? f.raw) : this.maskedForRecording(f, v);
      recorder.frame(f, v, sent);
    }
    // DataRow does not move the tracker: the rows after this one share its verdict and plan.
    if (v.kind === 'dataRow') this.rowRun = { plan: layer?.rowPlan(v.shape) };
    return true;
  }

  /**
   * A reader in masking.unmasked_groups sees raw values, but evidence never holds them: the
   * recording gets the message as a masked reader would have received it.
   */
  private maskedForRecording(f: BackendFrame, v: BackendVerdict): Buffer | undefined {
    try {
      return this.recordMask!.process(f, v);
    } catch {
      return undefined; // unmaskable for the record: the row is counted as absent, never kept raw
    }
  }

  /** An ErrorResponse: ours in place of a poison token's, else the server's own. */
  private replacePoison(f: BackendFrame): Buffer {
    if (this.poisons.size === 0) return f.raw;
    const fields = decodeErrorFieldMap(f.body);
    const message = fields instanceof ProtocolError ? '' : (fields['M'] ?? '');
    const token = /PHIGATE_REFUSED_[0-9a-f]{24}/i.exec(message)?.[0]?.replace(/^phigate_refused_/, 'PHIGATE_REFUSED_');
    const ours = token === undefined ? undefined : this.poisons.get(token);
    if (token === undefined || !ours) return f.raw;
    this.poisons.delete(token);
    return errorResponse(ours);
  }

  /**
   * The upstream connection's state as the session leaves it: quiet when every message sent has
   * been answered to its ReadyForQuery, nothing is half-written or half-read, no COPY FROM STDIN
   * runs and the server sent no FATAL. Only then may the pool reset it for another session.
   */
  private upstreamEnd(): SessionEnd {
    const up = this.upstream;
    const quiet = up !== undefined && !up.destroyed && up.writableLength === 0 && !this.upstreamFatal && !this.copyIn &&
      !this.unsynced && this.readySent === this.framer.readyForQueryCount && this.framer.pendingBytes === 0 && this.framer.error === null;
    return { quiet, status: this.txStatus };
  }

  private readonly onUpstreamError = (err: Error): void => {
    this.opts.log.warn('upstream socket error', { session: this.id, error: err.message });
  };

  private readonly onUpstreamClose = (): void => {
    if (this.state === 'closed' || this.state === 'closing') return;
    if (this.terminated) {
      this.closeAfterTerminate();
      return;
    }
    // PostgreSQL normally sends a FATAL first, which was relayed: the client knows why, the evidence says so.
    if (this.upstreamFatal) {
      this.opts.log.warn('the database ended the session', { session: this.id });
      this.state = 'closing';
      this.ws.close(CloseCode.UpstreamFailed, 'the database ended the session');
      this.cleanup('the database ended the session');
      return;
    }
    // If it did not, say what happened.
    this.opts.log.warn('upstream closed the connection', { session: this.id });
    this.fatal('08006', 'phigate: the database closed the connection unexpectedly', CloseCode.UpstreamFailed);
  };

  private send(buf: Buffer): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.bytesOut += buf.length;
    this.ws.send(buf, BINARY);
  }

  /** `why` is the session.end record's reason; `extra` the error's detail and hint. */
  private fatal(code: string, message: string, closeCode: number = CloseCode.Normal, why = 'fatal', extra?: Pick<ErrorFields, 'detail' | 'hint'>): void {
    this.fatalFields({ severity: 'FATAL', code, message, ...(extra?.detail ? { detail: extra.detail } : {}), ...(extra?.hint ? { hint: extra.hint } : {}) }, closeCode, why);
  }

  private fatalFields(error: ErrorFields, closeCode: number = CloseCode.Normal, why = 'fatal'): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.send(errorResponse(error));
    this.state = 'closing';
    this.ws.close(closeCode, truncateReason(error.message));
    this.cleanup(why);
  }

  private cleanup(why: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.endReason = why;
    clearTimeout(this.idleTimer);
    if (this.clientKey) this.opts.cancels.unregister(this.clientKey.processId, this.clientKey.secretKey);
    this.held?.handle?.withdraw('the client disconnected');
    this.held = undefined;
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
        if (!this.terminated) up.end(TERMINATE);
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
    const seal = this.recorder?.close(why);
    this.recorder = undefined;
    if (this.recorded) {
      this.recorded = false;
      this.recordEvents([{
        type: 'session.end', session: this.id, user: this.opts.identity.name, connection: this.opts.connection.name,
        duration_ms: Date.now() - this.startedAt, statements: this.statements, bytes_in: this.bytesIn, bytes_out: this.bytesOut, reason: why,
        ...(seal ? { recording: { sha256: seal.sha256, file: seal.file } } : {}),
      }]);
    }
    if (this.clientKey || why === 'fatal') {
      this.opts.log.info('session end', {
        session: this.id, why, duration_ms: Date.now() - this.startedAt, statements: this.statements,
        bytes_in: this.bytesIn, bytes_out: this.bytesOut,
      });
    }
    this.opts.onClose?.(this);
  }
}
