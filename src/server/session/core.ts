// The session as a state machine, without I/O: frontend bytes, backend bytes, timer ticks and the
// results of async work (upstream ready, analysis, catalog refresh, approval outcome, evidence
// written or not) go in; actions (actions.ts) come out, in the order the shell must execute them.
// The story of one session: startup (startup.ts) → connecting (the shell) → relay, where each
// client message is decided by the gate, recorded (evidence.ts) before it is forwarded, held for
// approval (holds.ts) or refused in place (poison.ts), behind the settings barrier (barrier.ts);
// and each backend message is checked (settings.ts), masked, recorded and paired with its statement.
import {
  FrontendParser, BackendFramer, ByteSink, ProtocolError, BackendType, TransactionStatusByte, type FrontendMessage,
  authenticationOk, parameterStatus, backendKeyData, readyForQuery, errorResponse, sslNo,
  decodeErrorFieldMap, decodeParameterStatus, decodeCommandComplete, type ErrorFields,
} from '../../pg/index.js';
import { serialize } from 'pg-protocol';
import type { ShapeClassifierCache } from '../../policy/shape-cache.js';
import { formatDuration } from '../../policy/duration.js';
import { limitKey } from '../../policy/limits.js';
import { requesterOf } from '../../approvals/requester.js';
import { scopeNotice } from '../../approvals/format.js';
import type { Outcome } from '../../approvals/types.js';
import { StatementGate, type Verdict } from '../gate.js';
import { MaskingLayer, UnmaskableResult, decodeFields, type MaskingContext } from '../masking-layer.js';
import { ResultTracker, type BackendVerdict } from '../result-tracker.js';
import type { SessionRecorder } from '../session-recorder.js';
import { StatementResults } from '../statement-results.js';
import { maskDataRowInto, type MaskPlan } from '../../masking/index.js';
import type { BackendFrame } from '../../pg/index.js';
import type { AuditEvent, StatementEvent } from '../../audit/events.js';
import type { Identity } from '../../auth/index.js';
import type { ConnectionPolicy, PolicyFile } from '../../policy/file.js';
import type { TransactionStatus } from '../pool/core.js';
import type { Logger } from '../../common/log.js';
import { ERROR_TABLE } from '../../common/errors.js';

/** The SQLSTATEs of the session's own fatal errors, from the one error table. */
const PROTOCOL_VIOLATION = ERROR_TABLE.protocol_violation.sqlstate;
const CANNOT_RECORD = ERROR_TABLE.audit_write_failed.sqlstate;
import type { CatalogSnapshot } from '../catalog.js';
import { NO_METRICS, type ConnectionMetrics } from '../metrics.js';
import { CloseCode, type ControlMessage } from '../../tunnel/protocol.js';
import { originalPosition } from '../../masking/source/masker.js';
import type { RewriteOutcome, TextEdit } from '../../masking/source/rewrite.js';
import type { RecordingMeta } from '../../recording/format.js';
import type { Classification } from '../../policy/classify/index.js';
import { classificationOf, isHeavy, OFF_THREAD_STATEMENTS, type AnalysisRequest, type TextAnalysis } from '../analysis.js';
import { messageSizeError, oversizeEvidence, statementSizeError } from '../size-limits.js';
import type { Action } from './actions.js';
import { SettingsBarrier } from './barrier.js';
import { DDL_KINDS, resultRecord, sessionEnd, sessionRefused, sessionStart, statementRecord, type ClientInfo, type StatementExtra } from './evidence.js';
import { approvalDecided, approvalRequest, approvalRequested, holdOutcome, refusalFor, waitingNotice, type HoldVerdict, type Who } from './holds.js';
import { Poisons } from './poison.js';
import { isFatal, isUtf8Name, unsafeSettingIn, unsafeStartup } from './settings.js';
import { planStartup } from './startup.js';
import { BACKLOG_HIGH_WATER, SLICE_MS } from './backpressure.js';
import { EMPTY, FLUSH, truncateReason } from './wire.js';

/**
 * How many texts analysed off the event loop a session keeps the classification of, and their total
 * length: results and Executes classify them again, which must not mean parsing them here.
 */
const ANALYSED_KEPT = 32;
const ANALYSED_CHARS = 32 * 1024 * 1024;

/**
 * Statement text sent after an Execute that may change how statements are read, before its Sync: the
 * server would read it under the new setting, which it reports only at that Sync (barrier.ts).
 */
const AFTER_SETTINGS: ErrorFields = {
  severity: 'ERROR', code: '0A000',
  message: 'phigate: a statement sent after one that may change how statements are read (SET client_encoding or standard_conforming_strings, set_config) must follow its Sync; it was not run',
};

/** How many rewritten statement texts a session remembers (error positions, Execute evidence). */
const REWRITES_KEPT = 256;

/** What the session writes its recording with (a SessionRecorder; the shell opens the file). */
export type RecorderPort = Pick<SessionRecorder, 'statement' | 'frame' | 'countRow' | 'keepsNextRow' | 'wait' | 'close'>;

export interface Clock {
  /** Milliseconds since the epoch (Date.now in the shell). */
  now(): number;
}

/** Who the session is and the policy it runs under: what the gateway gives the shell and the shell the core. */
export interface SessionFacts {
  id: string;
  identity: Identity;
  connection: ConnectionPolicy;
  label?: string;
  reason?: string;
  remoteAddress?: string;
  log: Logger;
  /** The policy in force now (it may be reloaded while the session runs). */
  policy: () => PolicyFile;
  policyVersion: () => string;
  classifier: ShapeClassifierCache;
  /** Set when this identity may not see raw PHI on this connection (not in masking.unmasked_groups). */
  masking?: Omit<MaskingContext, 'classify'>;
  /** Columns the policy masks (table.column), for predicates_on_masked and copy checks. */
  maskedColumns?: ReadonlySet<string>;
  /** The connection's catalog snapshot, for what statements reach (the gate's GateOptions.catalog). */
  catalog?: () => CatalogSnapshot | undefined;
  /** For readers in unmasked_groups: the masking their recording gets (they see raw values). */
  recordingMasking?: Omit<MaskingContext, 'classify'>;
  /** The gateway's metrics for this session's connection. */
  metrics?: ConnectionMetrics;
}

/** What the core is given: pure ports only (the gate's inputs, masking, counters, a logger). */
export interface CoreOptions extends SessionFacts {
  clock: Clock;
  /** An approval service is there to ask (else an `approve` decision is denied at once). */
  approvals: boolean;
  /** Masking at the source for a masked reader: the statement as it must reach the database (see SourceMaskingHandle). */
  rewrite?: (sql: string, allowUnknown: boolean, plainOutputs: boolean) => RewriteOutcome;
  /** Opens the session's recording (throws when it cannot); none is made without it. */
  openRecorder?: (meta: RecordingMeta) => RecorderPort;
  /** Large texts may be analysed off the event loop (`analyse` actions). */
  analyzes: boolean;
}

/** What the shell learned from the upstream's startup (no socket: the shell keeps it). */
export interface UpstreamReady {
  /** Every ParameterStatus received during startup, in arrival order. */
  parameters: Map<string, string>;
  transactionStatus: TransactionStatus;
  /** Raw NoticeResponse messages received during startup, to relay to the client. */
  notices: Buffer[];
  /** Bytes read after the first ReadyForQuery (normally empty); they belong to the relay. */
  leftover: Buffer;
  /** A pooled connection: it outlives the session (a client's Terminate is not forwarded). */
  pooled: boolean;
  /** The key the client gets in BackendKeyData (registered by the shell for CancelRequests). */
  clientKey: { processId: number; secretKey: Buffer };
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
type TextMessage = Extract<WireMessage, { type: 'Query' | 'Parse' }>;

export type SessionState = 'startup' | 'connecting' | 'relay' | 'closing' | 'closed';

export class SessionCore {
  state: SessionState = 'startup';
  /**
   * Actions for the shell, in order. The shell drains it after every input (and may reuse the array):
   * one array for the session's life, not one per message.
   */
  readonly actions: Action[] = [];
  private readonly parser = new FrontendParser();
  private readonly framer = new BackendFramer();
  /** Where processFrames collects each upstream chunk's bytes for the client. */
  private readonly sink = new ByteSink();
  /**
   * Set while DataRows of one result stream: their verdict cannot change until another message
   * arrives, so the plan is looked up once per run instead of once per row.
   */
  private rowRun?: { plan: MaskPlan | undefined };
  /** The upstream is ready (relay may write to it). */
  private upstream = false;
  private pooled = false;
  /** Client messages that arrived before the upstream was ready (pipelining clients). */
  private queued: FrontendMessage[] = [];
  /** Reading the client stopped because the database does not take its bytes (shell: `upstreamFull`). */
  private clientPaused = false;
  /** The client sent Terminate. */
  terminated = false;
  private gate?: StatementGate;
  /** The statement waiting for an approver (its request id once asked), and the client messages that came after it. */
  private held?: { message: WireMessage; verdict: HoldVerdict; id?: string };
  private backlog: FrontendMessage[] = [];
  private backlogBytes = 0;
  private readonly poisons = new Poisons();
  private cancelRequested = false;
  private readonly barrier = new SettingsBarrier();
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
  private startRecorded = false;
  /** The status of the upstream's last ReadyForQuery. */
  txStatus: TransactionStatus = 'I';
  /** The database sent a FATAL (admin shutdown, terminated backend): the client has its reason already. */
  private upstreamFatal = false;
  /** Present when this reader's results are masked. */
  private masking?: MaskingLayer;
  /**
   * Pairs backend messages with statements (masking, recording) and swallows the answers to the
   * Describe and Close messages the session injects: always on.
   */
  private readonly tracker = new ResultTracker();
  private recorder?: RecorderPort;
  /** For unmasked readers: masks what goes into the recording only. */
  private recordMask?: MaskingLayer;
  readonly startedAt: number;
  /** Masking at the source: the rewrite decided for each Query/Parse message, and when each arrived. */
  private readonly rewrites = new WeakMap<WireMessage, RewriteOutcome>();
  private readonly arrivals = new WeakMap<WireMessage, number>();
  /** Messages that waited for a fresh catalog once: relations still unknown then do not exist. */
  private readonly waited = new WeakSet<WireMessage>();
  /** Waiting for a catalog snapshot newer than this statement, which names an unknown relation. */
  private catalogWait?: WireMessage;
  /** Waiting for the analysis worker: this client's later messages queue behind the statement. */
  private analysing?: { m: TextMessage; allowUnknown: boolean; plainOutputs: boolean; snapshot: CatalogSnapshot | undefined };
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
  private readonly who: Who;
  /** What the client's StartupMessage asked for, kept for the reply once the upstream is ready. */
  private startup?: { negotiate: Buffer | undefined; notices: Buffer[] };
  /** Why the session ended (set once it has). */
  endReason?: string;
  /** Since when the session has been idle inside a transaction (0: it is not); see noteIdle. */
  private idleFrom = 0;
  private idleTimerArmed = false;
  clientParams: Record<string, string> = {};
  bytesIn = 0;
  bytesOut = 0;
  statements = 0;

  constructor(readonly opts: CoreOptions) {
    this.metrics = opts.metrics ?? NO_METRICS;
    this.startedAt = opts.clock.now();
    this.who = { session: opts.id, user: opts.identity.name, connection: opts.connection.name };
  }

  get id(): string {
    return this.opts.id;
  }

  /** A statement of this session waits for an approver. */
  get holding(): boolean {
    return this.held !== undefined;
  }

  /** Reading the client may go on (after the database drained what the session wrote). */
  get readable(): boolean {
    return this.state === 'relay' && !this.held && !this.depthPaused;
  }

  /**
   * The upstream connection's protocol state as the session leaves it: quiet when every message
   * sent has been answered to its ReadyForQuery, nothing is half-read, no COPY FROM STDIN runs and
   * the server sent no FATAL (the shell adds: nothing half-written). Only then may the pool reset it.
   */
  get upstreamQuiet(): boolean {
    const b = this.barrier;
    return !this.upstreamFatal && !this.copyIn && !b.unsynced && b.readySent === this.framer.readyForQueryCount &&
      this.framer.pendingBytes === 0 && this.framer.error === null;
  }

  // ---- inputs from the client ----

  /** A binary frame from the tunnel stream. */
  clientData(buf: Buffer): void {
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
  }

  /** The tunnel stream closed (or failed): `why` is the session.end record's reason. */
  clientClosed(why: string): void {
    this.cleanup(why);
  }

  /** Ends the session, telling the client why; `why` is the session.end record's reason, `extra` the error's detail and hint. */
  fatal(code: string, message: string, closeCode: number = CloseCode.Normal, why = 'fatal', extra?: Pick<ErrorFields, 'detail' | 'hint'>): void {
    this.fatalFields({ severity: 'FATAL', code, message, ...(extra?.detail ? { detail: extra.detail } : {}), ...(extra?.hint ? { hint: extra.hint } : {}) }, closeCode, why);
  }

  /**
   * The server ends the session now (shutdown, an expired grant). A session already closing after its
   * client's Terminate waits only for the client's close frame, which may come after the evidence log
   * has closed: it ends here as that frame would have ended it, so its session.end is written now.
   */
  endNow(code: string, message: string): void {
    if (this.state === 'closing') {
      this.cleanup('client closed');
      return;
    }
    this.fatal(code, message, CloseCode.ServerShutdown);
  }

  /** A CancelRequest for this session: a held statement is withdrawn (true), else the shell asks the database (false). */
  cancelHeld(): boolean {
    if (this.held?.id === undefined) return false;
    this.cancelRequested = true;
    this.actions.push({ kind: 'withdrawApproval', why: 'the client cancelled the statement' });
    return true;
  }

  private onStartupMessage(msg: FrontendMessage): void {
    switch (msg.type) {
      case 'SSLRequest':
      case 'GSSENCRequest':
        // The tunnel is already encrypted end to end; PostgreSQL-level TLS would add nothing.
        this.send(sslNo());
        return;
      case 'CancelRequest':
        this.actions.push({ kind: 'cancelRequest', processId: msg.processId, secretKey: msg.secretKey });
        // PostgreSQL answers a CancelRequest with nothing but a closed connection.
        this.state = 'closing';
        this.actions.push({ kind: 'closeClient', code: CloseCode.Normal });
        return;
      case 'Startup': {
        this.clientParams = msg.parameters;
        const plan = planStartup(msg.protocolVersion, msg.parameters);
        if ('refused' in plan) {
          this.fatal('0A000', plan.refused);
          return;
        }
        this.startup = { negotiate: plan.negotiate, notices: plan.notices };
        this.state = 'connecting';
        this.actions.push({ kind: 'connect', forwarded: plan.forwarded });
        return;
      }
      case 'ProtocolError':
        if (msg.error.size) this.fatalFields(messageSizeError(msg.error.size.length, msg.error.size.limit), CloseCode.ProtocolError);
        else this.fatal(PROTOCOL_VIOLATION, `invalid startup packet: ${msg.error.message}`, CloseCode.ProtocolError);
        return;
      default:
        this.fatal(PROTOCOL_VIOLATION, `unexpected ${msg.type} message before startup`, CloseCode.ProtocolError);
    }
  }

  // ---- the connect phase (the shell opens the upstream) ----

  /** A session that never started: the client gets `fields`, the evidence a session.refused record. */
  refuse(fields: ErrorFields, closeCode: number, limit?: string): void {
    const { identity, connection, log } = this.opts;
    log.warn('session refused', { session: this.id, connection: connection.name, subject: identity.subject, code: fields.code, limit, reason: fields.message });
    this.actions.push({ kind: 'record', events: [sessionRefused(this.who, this.clientInfo(), fields, limit)], failClosed: false });
    this.fatal(fields.code, fields.message, closeCode, 'fatal', fields);
  }

  private clientInfo(): ClientInfo {
    const { identity, label, reason, remoteAddress } = this.opts;
    return { identity, label, reason, remoteAddress, params: this.clientParams };
  }

  /** The upstream connection is open: the client's session starts (or ends, when the upstream cannot serve it). */
  upstreamReady(up: UpstreamReady): void {
    if (this.state !== 'connecting') return;
    const unsafe = unsafeStartup(up.parameters);
    if (unsafe) {
      this.actions.push({ kind: 'destroyUpstream' });
      this.fatal('0A000', `phigate: ${unsafe}; phigate reads statements as UTF-8 with standard_conforming_strings on`, CloseCode.UpstreamFailed);
      return;
    }
    this.upstream = true;
    this.pooled = up.pooled;
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
    this.txStatus = up.transactionStatus;
    if (this.opts.masking) {
      this.masking = new MaskingLayer({ ...this.opts.masking, classify: (sql) => classifier.classify(sql) }, this.tracker);
    } else if (this.opts.recordingMasking && this.opts.openRecorder) {
      this.recordMask = new MaskingLayer({ ...this.opts.recordingMasking, classify: (sql) => classifier.classify(sql) }, this.tracker);
    }
    if (this.opts.openRecorder) {
      try {
        this.recorder = this.opts.openRecorder({
          user: identity.name, subject: identity.subject, kind: label ? 'agent' : identity.kind, agent: label,
          connection: this.opts.connection.name, client_addr: this.opts.remoteAddress,
          application_name: this.clientParams['application_name'], client_user: this.clientParams['user'], client_database: this.clientParams['database'],
        });
      } catch (err) {
        // No recording, no session: the evidence would be incomplete.
        this.actions.push({ kind: 'destroyUpstream' });
        this.fatal(CANNOT_RECORD, `phigate cannot record this session: ${(err as Error).message}`, CloseCode.ServerShutdown);
        return;
      }
    }
    // No session without its session.start record: the rest waits on it (recordFailed says otherwise).
    this.startRecorded = true;
    this.record([sessionStart(this.who, this.clientInfo())]);
    const parts: Buffer[] = [];
    const { negotiate, notices } = this.startup!;
    if (negotiate) parts.push(negotiate);
    parts.push(authenticationOk());
    for (const [k, v] of up.parameters) parts.push(parameterStatus(k, v));
    parts.push(backendKeyData(up.clientKey.processId, up.clientKey.secretKey));
    parts.push(...up.notices, ...notices, readyForQuery(up.transactionStatus));
    this.send(Buffer.concat(parts));
    this.actions.push({ kind: 'attachUpstream' });
    this.state = 'relay';
    if (up.leftover.length > 0) this.upstreamData(up.leftover);
    const queued = this.queued;
    this.queued = [];
    if (queued.length > 0) this.relayMessages(queued, undefined);
    this.checkDepth();
  }

  // ---- evidence ----

  /**
   * Evidence before anything it describes is forwarded: the records (with the deferred ones) go
   * first in the action order; the shell stops there when they cannot be written (recordFailed).
   */
  private record(events: AuditEvent[]): void {
    if (this.deferred.length > 0) {
      const deferred = this.deferred;
      this.deferred = [];
      for (const e of events) deferred.push(e);
      events = deferred;
    }
    if (events.length > 0) this.actions.push({ kind: 'record', events, failClosed: true });
  }

  /** A record action was written: `seqs` are its records' sequence numbers, in order. */
  recorded(events: AuditEvent[], seqs: readonly { seq: number }[]): void {
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      // A statement that runs gets a statement.result record, naming this seq, once answered.
      if (e.type === 'statement' && (e.decision === 'allow' || e.decision === 'approved')) this.recordSeq.set(e, seqs[i]!.seq);
    }
  }

  /**
   * A record action could not be written. One that guarded what followed (the shell dropped the
   * rest) ends the session: nothing unrecorded reaches the database.
   */
  recordFailed(events: AuditEvent[], failClosed: boolean, err: Error): void {
    const type = events[events.length - 1]?.type;
    if (!failClosed && type === 'session.refused') {
      this.opts.log.error('could not write audit record', { type, error: err.message });
      return;
    }
    this.opts.log.error('audit write failed; ending the session', { session: this.id, error: err.message });
    if (!failClosed) return;
    const startFailed = events[0]?.type === 'session.start';
    if (startFailed) {
      // No session.start, so no session.end is owed.
      this.startRecorded = false;
      if (this.ending) this.ending.record = undefined;
    }
    const message = 'phigate cannot write its audit log, so no statement can run; the session is ended';
    if (this.state === 'closed') {
      // What ended the session came after the record, in actions the shell dropped: the world saw
      // none of them, and this failure is what the client hears.
      this.send(errorResponse({ severity: 'FATAL', code: CANNOT_RECORD, message }));
      this.actions.push({ kind: 'closeClient', code: CloseCode.ServerShutdown, reason: truncateReason(message) });
      this.pushEnd();
    } else {
      // A close after a pooled Terminate was among the dropped actions.
      if (this.state === 'closing') this.state = 'relay';
      this.fatal(CANNOT_RECORD, message, CloseCode.ServerShutdown);
    }
    if (startFailed) this.actions.push({ kind: 'destroyUpstream' });
  }

  // ---- client → database ----

  private relayToUpstream(data: Buffer): void {
    const msgs = this.parser.push(data);
    if (this.opts.rewrite) {
      const now = this.opts.clock.now();
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
    if (this.state !== 'relay') return;
    const limit = this.opts.policy().limits.pipelineDepth;
    if (this.tracker.statementsPending <= limit) return;
    // Answers PostgreSQL keeps in its buffer until a Sync or Flush must reach us, or the pause never
    // ends: after every run forwarded past the depth, not only the first. A run cut across turns
    // (SLICE_MS on a loaded host) goes on after the pause began, and its Executes need a Flush too.
    this.writeUpstream([FLUSH], undefined);
    if (this.depthPaused) return;
    this.depthPaused = true;
    this.actions.push({ kind: 'pauseClient' });
    this.opts.log.info('pipeline depth reached; reading the client paused', { session: this.id, pending: this.tracker.statementsPending, limit });
  }

  private resumeAfterDepth(): void {
    if (!this.depthPaused || this.state !== 'relay') return;
    if (this.tracker.statementsPending > this.opts.policy().limits.pipelineDepth / 2) return;
    this.depthPaused = false;
    if (!this.clientPaused && this.backlogBytes <= BACKLOG_HIGH_WATER) this.actions.push({ kind: 'resumeClient' });
  }

  /** The database stopped taking bytes: reading the client pauses until it drained them. */
  upstreamFull(): void {
    // A session already ending (a protocol error or Terminate later in the same chunk) must keep
    // reading: the client's close frame is what ends it, and a paused stream would never read it.
    if (this.clientPaused || this.state === 'closing' || this.state === 'closed') return;
    this.clientPaused = true;
    this.actions.push({ kind: 'pauseClient' });
  }

  upstreamDrained(): void {
    this.clientPaused = false;
    if (this.readable) this.actions.push({ kind: 'resumeClient' });
  }

  /** Whether the shell should report a full upstream (it was not paused for that already). */
  get pausedForUpstream(): boolean {
    return this.clientPaused;
  }

  private queue(msgs: FrontendMessage[], front: boolean): void {
    if (front) this.backlog = this.backlog.length === 0 ? msgs : [...msgs, ...this.backlog];
    else for (const m of msgs) this.backlog.push(m);
    for (const b of msgs) this.backlogBytes += b.type === 'ProtocolError' ? 0 : b.raw.length;
  }

  /** `data`, when given, is the chunk the messages were parsed from (enables whole-chunk writes). */
  private relayMessages(msgs: FrontendMessage[], data: Buffer | undefined): void {
    if (!this.upstream || msgs.length === 0) return;
    if (this.held || this.barrier.up || this.catalogWait || this.analysing || this.sliced) {
      this.queue(msgs, false);
      // Keep reading while a statement waits, so a client that leaves is noticed; only a client that
      // keeps sending that much meanwhile is paused.
      if (this.backlogBytes > BACKLOG_HIGH_WATER) this.actions.push({ kind: 'pauseClient' });
      this.passCopyIn();
      return;
    }
    const gate = this.gate!;
    const limits = this.opts.policy().limits;
    const clock = this.opts.clock;
    const out: Buffer[] = [];
    const events: AuditEvent[] = [];
    let unchanged = true;
    const started = clock.now();
    for (let i = 0; i < msgs.length; i++) {
      // Nothing after a Terminate is read, as in PostgreSQL.
      if (this.terminated) {
        unchanged = false;
        break;
      }
      const m = msgs[i]!;
      // Many messages in one chunk, each cheap alone (statements just under the worker's threshold,
      // each of a new shape), can still add up: past SLICE_MS the rest waits for the next turn.
      if (i > 0 && clock.now() - started > SLICE_MS) {
        this.record(events);
        this.writeUpstream(out, undefined);
        this.sliced = true;
        this.queue(msgs.slice(i), true);
        this.actions.push({ kind: 'nextTurn' });
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
        this.record(events);
        this.writeUpstream(out, undefined);
        this.analyse(text, msgs.slice(i), allowUnknown, plainOutputs);
        return;
      }
      const rewrite = this.opts.rewrite;
      if (rewrite && text && !oversize && !this.rewrites.has(text)) {
        const analysed = this.analyses.get(text);
        const fits = analysed !== undefined && analysed.allowUnknown === allowUnknown && analysed.plainOutputs === plainOutputs;
        const rw = (fits ? analysed.a.rewrite : undefined) ?? rewrite(text.sql, allowUnknown, plainOutputs);
        if (rw.kind === 'unknown') {
          // A relation the catalog does not know (yet): it may be a view over masked data made a
          // moment ago. Nothing from here on goes upstream until a newer snapshot has been read.
          this.record(events);
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
          verdict = oversize ? { action: 'block', error: oversize } : this.barrier.awaitingSync ? { action: 'block', error: AFTER_SETTINGS } : this.atSource(m, gate.onQuery(m.sql));
          sql = m.sql;
          break;
        case 'Parse':
          verdict = oversize ? gate.refuseParse(m.name, oversize) : this.barrier.awaitingSync ? gate.refuseParse(m.name, AFTER_SETTINGS) : this.atSource(m, gate.onParse(m.name, m.sql));
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
          if (this.pooled) {
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
            this.record(events);
            this.writeUpstream(out, undefined);
            this.opts.log.warn('client message over limits.message_bytes', { session: this.id, length: size.length, limit: size.limit });
            this.fatalFields(error, CloseCode.ProtocolError);
            return;
          }
          this.record(events);
          this.writeUpstream(out, undefined);
          this.opts.log.warn('client protocol error', { session: this.id, error: m.error.message });
          this.fatal(PROTOCOL_VIOLATION, `invalid frontend message: ${m.error.message}`, CloseCode.ProtocolError);
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
          this.record(events);
          this.writeUpstream(out, undefined);
          return;
        }
        continue;
      }
      unchanged = false;
      if (verdict.action === 'block') {
        this.opts.log.info('statement blocked', { session: this.id, rule: verdict.decision?.rule, code: verdict.error.code });
        out.push(this.poisons.make(m, verdict.error, this.tracker));
        this.expectAnswer(m, undefined);
        this.afterForward(m, false);
        continue;
      }
      this.record(events);
      this.writeUpstream(out, undefined);
      this.hold(m, verdict, msgs.slice(i + 1));
      return;
    }
    this.record(events);
    this.writeUpstream(out, unchanged ? data : undefined);
    if (this.terminated && this.pooled) this.endAfterTerminate();
  }

  private writeUpstream(out: Buffer[], whole: Buffer | undefined): void {
    if (out.length > 0) this.actions.push({ kind: 'upstream', out, whole });
  }

  /**
   * A Terminate on a pooled connection is not forwarded (the backend outlives the session), so no
   * closing backend ends the session: it ends here, once every Query and Sync sent before the
   * Terminate is answered, as PostgreSQL answers what came before a Terminate and then closes.
   */
  private endAfterTerminate(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.barrier.readySent !== this.framer.readyForQueryCount) return;
    this.closeAfterTerminate();
  }

  /** The client said goodbye and has every answer: a normal close, whose frame must still be read. */
  private closeAfterTerminate(): void {
    this.state = 'closing';
    this.actions.push({ kind: 'closeClient', code: CloseCode.Normal });
    // As in cleanup: a stream paused for backpressure must read the client's close frame.
    this.actions.push({ kind: 'resumeClient' });
  }

  /** Counts what will produce a ReadyForQuery and arms the settings barrier (barrier.ts); true when later messages must wait. */
  private afterForward(m: WireMessage, barrier: boolean, copyIn = false): boolean {
    return this.barrier.afterForward(m.type, barrier, copyIn, this.trackerIdle);
  }

  private readonly trackerIdle = (): boolean => this.tracker.idle;

  /** The server answered the barrier statement (and its settings were checked): let the rest go. */
  private releaseBarrier(): void {
    if (this.state !== 'relay' || !this.barrier.release(this.tracker.idle)) return;
    this.drainBacklog();
  }

  /**
   * COPY FROM STDIN in the barrier statement's Query: the server waits for the data the barrier
   * holds back. Copy data is not statement text, so it goes on until CopyDone or CopyFail; anything
   * else the client sends during the COPY ends the session (the server would refuse it as well, and
   * holding it would wait forever).
   */
  private passCopyIn(): void {
    if (!this.copyIn || !this.barrier.up || this.held || this.catalogWait || this.state !== 'relay') return;
    const out: Buffer[] = [];
    let n = 0;
    while (n < this.backlog.length && this.copyIn) {
      const m = this.backlog[n++]!;
      if (m.type === 'ProtocolError') return this.fatal(PROTOCOL_VIOLATION, `invalid frontend message: ${m.error.message}`, CloseCode.ProtocolError);
      this.backlogBytes -= m.raw.length;
      // The server ignores Flush and Sync during COPY; dropping them here does the same.
      if (m.type === 'Flush' || m.type === 'Sync') continue;
      if (m.type !== 'CopyData' && m.type !== 'CopyDone' && m.type !== 'CopyFail') {
        return this.fatal(PROTOCOL_VIOLATION, `phigate: unexpected ${m.type} message during COPY FROM STDIN`, CloseCode.ProtocolError);
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
    this.writeUpstream(out, undefined);
    if (this.backlogBytes <= BACKLOG_HIGH_WATER && !this.clientPaused) this.actions.push({ kind: 'resumeClient' });
  }

  /** What queued while a statement was held, a barrier was up or the catalog was read goes on once none is. */
  private drainBacklog(): void {
    if (this.held || this.barrier.up || this.catalogWait || this.analysing || this.sliced || this.state !== 'relay') return;
    const backlog = this.backlog;
    this.backlog = [];
    this.backlogBytes = 0;
    if (!this.clientPaused && !this.depthPaused) this.actions.push({ kind: 'resumeClient' });
    if (backlog.length > 0) this.relayMessages(backlog, undefined);
    this.checkDepth();
  }

  /** The next turn of the event loop after a long run of messages was cut: the rest goes on. */
  nextTurn(): void {
    this.sliced = false;
    this.drainBacklog();
  }

  // ---- analysis off the event loop, catalog waits ----

  /** Does this Query/Parse need an analysis off the event loop first (a large text not analysed yet, or with other options)? */
  private needsAnalysis(m: TextMessage, allowUnknown: boolean, plainOutputs: boolean): boolean {
    if (!this.opts.analyzes || !isHeavy(m.sql)) return false;
    const source = this.opts.rewrite !== undefined;
    let done = this.analyses.get(m);
    if (done === undefined) {
      // The same text again (a client repeating a large statement): its analysis still holds while
      // the catalog has not changed (the rewrite depends on it; the classification does not).
      const again = this.preclassified.get(m.sql)?.analysed;
      if (again !== undefined && (!source || again.snapshot === this.opts.catalog?.())) {
        this.analyses.set(m, again);
        done = again;
      }
    }
    if (done !== undefined) return source && !this.rewrites.has(m) && (done.allowUnknown !== allowUnknown || done.plainOutputs !== plainOutputs);
    // A text seen before is in the classifier's cache: inline costs a lookup (the masked reader's rewrite has its own cache).
    return this.opts.classifier.cached(m.sql) === undefined || source;
  }

  /** Sends `m`'s text to the analysis worker; `rest` (from `m` on) waits until its analysis is back. */
  private analyse(m: TextMessage, rest: FrontendMessage[], allowUnknown: boolean, plainOutputs: boolean): void {
    this.queue(rest, true);
    const layer = this.masking ?? this.recordMask;
    const snapshot = this.opts.catalog?.();
    this.analysing = { m, allowUnknown, plainOutputs, snapshot };
    const req: AnalysisRequest = { sql: m.sql, lineage: layer !== undefined, ...(this.opts.rewrite ? { rewrite: { allowUnknown, plainOutputs } } : {}) };
    this.actions.push({ kind: 'analyse', req });
  }

  /** The analysis worker answered (`failed`: it could not analyse the text; the statement is refused). */
  analysed(a: TextAnalysis, failed: boolean): void {
    const pending = this.analysing;
    if (this.state !== 'relay' || pending === undefined) return;
    const { m, allowUnknown, plainOutputs, snapshot } = pending;
    const layer = this.masking ?? this.recordMask;
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
    this.analysing = undefined;
    this.drainBacklog();
  }

  /** Adopting an analysis threw: an internal error, and the session ends. */
  analysisCrashed(err: Error): void {
    this.opts.log.error('statement analysis failed; ending the session', { session: this.id, error: err.message });
    this.fatal('XX000', 'phigate: internal error while analysing a statement', CloseCode.ProtocolError);
  }

  /** Holds `rest` (starting with `m`) until the catalog has been read after `m` arrived, then goes on. */
  private waitForCatalog(m: WireMessage, rest: FrontendMessage[]): void {
    this.catalogWait = m;
    this.queue(rest, true);
    this.actions.push({ kind: 'refreshCatalog', since: this.arrivals.get(m) ?? this.opts.clock.now() });
  }

  /** The catalog was read again after the waiting statement arrived (`fresh`), or could not be. */
  catalogRefreshed(fresh: boolean): void {
    const m = this.catalogWait;
    if (m === undefined) return;
    if (fresh) this.waited.add(m);
    else {
      this.rewrites.set(m, {
        kind: 'refused', code: '58000',
        message: 'phigate: this statement names a relation phigate could not look up in the database catalog (the catalog could not be read), so it was not run; try again',
      });
    }
    this.catalogWait = undefined;
    this.drainBacklog();
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

  /**
   * The evidence record of one decided statement (redacted text only), counted as one of the
   * session's statements and begun in its recording. `decision`: the outcome of a statement held
   * earlier: its second record, neither a new statement nor a second one in the recording (whose
   * wait events tell the outcome), so that the session's count, its session.end record and the
   * recording's end line agree.
   * `continues`: an Execute of a portal that already ran (a cursor-style fetch of the next rows): the
   * recording counts its rows against the same per-statement cap as the first part.
   */
  private statementEvent(sql: string, verdict: Verdict, extra: StatementExtra & { redacted?: string } = {}): StatementEvent {
    const ev = statementRecord(this.who, extra.redacted ?? this.gate!.redact(sql), verdict, this.opts.policyVersion(), extra);
    this.metrics.decided(ev.decision);
    if (extra.decision === undefined) {
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

  // ---- holds ----

  private hold(m: WireMessage, verdict: HoldVerdict, rest: FrontendMessage[]): void {
    this.backlog = rest;
    this.held = { message: m, verdict };
    if (!this.opts.approvals) {
      this.holdDecided({ approved: false, cause: 'denied', reason: 'approvals are not available on this gateway' });
      return;
    }
    const { identity, label } = this.opts;
    this.actions.push({ kind: 'requestApproval', input: approvalRequest(this.who, requesterOf(identity, label), verdict) });
  }

  /** The approval service took the request: its id names the wait in the evidence and to the client. */
  holdRequested(id: string): void {
    const held = this.held;
    if (!held || this.state !== 'relay') return;
    held.id = id;
    const d = held.verdict.decision;
    this.record([approvalRequested(this.who, id, held.verdict, this.opts.clock.now())]);
    this.recorder?.wait({ approval: id, state: 'waiting', approvers: [...(d.approvers ?? [])], rule: d.rule });
    this.opts.log.info('statement held for approval', { session: this.id, approval: id, rule: d.rule });
    this.control({ type: 'notice', message: waitingNotice(id, d) });
  }

  /** The held statement's outcome: it is forwarded, or refused in place, and the backlog goes on. */
  holdDecided(o: Outcome): void {
    const held = this.held;
    if (!held || this.state !== 'relay') return;
    this.held = undefined;
    const d = held.verdict.decision;
    const id = held.id;
    const heldSql = 'sql' in held.message ? held.message.sql : held.verdict.statement;
    const outcome = holdOutcome(o, this.cancelRequested);
    const events: AuditEvent[] = [];
    if (id) events.push(approvalDecided(this.who, id, o, outcome));
    if (id) this.recorder?.wait({ approval: id, state: outcome, approver: o.approver, reason: o.reason, rule: d.rule });
    const ev = this.statementEvent(heldSql, held.verdict, { decision: outcome, approval: id, rewritten: this.rewriteInfo(held.message, heldSql) });
    events.push(ev);
    this.record(events);
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
      out = this.poisons.make(held.message, error, this.tracker);
      this.expectAnswer(held.message, undefined);
    }
    this.cancelRequested = false;
    this.afterForward(held.message, o.approved && held.verdict.barrier === true, o.approved && held.verdict.copyIn === true);
    this.opts.log.info('approval outcome', { session: this.id, approval: id, approved: o.approved, cause: o.approved ? undefined : o.cause });
    this.writeUpstream([out], undefined);
    // With a barrier up, the backlog waits for the barrier's ReadyForQuery.
    this.drainBacklog();
  }

  private control(msg: ControlMessage): void {
    this.actions.push({ kind: 'control', msg });
  }

  // ---- database → client ----

  /** The body of the backend message relayFrame is at, for frameFields (one function for every message, not a closure each). */
  private frameBody: Buffer = EMPTY;
  private readonly frameFields = (): ReturnType<typeof decodeFields> => decodeFields(this.frameBody);

  /** Bytes from the upstream. */
  upstreamData(chunk: Buffer): void {
    // After a fatal error mid-chunk the rest is dropped; nothing more goes to the client.
    if (this.state === 'closed') return;
    // Message by message when anything needs the answers: masking, recording, refusals in flight, or
    // statement.result records to complete.
    const whole = this.processFrames(chunk);
    if (whole instanceof ProtocolError) {
      this.opts.log.error('upstream protocol error', { session: this.id, error: whole.message });
      this.fatal(PROTOCOL_VIOLATION, 'phigate received an invalid message from the database', CloseCode.UpstreamFailed);
      return;
    }
    if (this.depthPaused) this.resumeAfterDepth();
    if (whole.length === 0) return;
    this.bytesOut += whole.length;
    this.actions.push({ kind: 'client', data: whole });
    if (this.barrier.up) {
      this.releaseBarrier();
      this.passCopyIn();
    }
    if (this.terminated && this.pooled) this.endAfterTerminate();
  }

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
        if (t === BackendType.DataRow && run !== undefined && (recorder === undefined || !recorder.keepsNextRow())) {
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
    const type = f.type;
    if (type === BackendType.CopyInResponse) this.copyIn = true;
    else if (type === BackendType.CommandComplete || type === BackendType.ErrorResponse || type === BackendType.ReadyForQuery) this.copyIn = false;
    if (type === BackendType.ParameterStatus) {
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
    const answered = type === BackendType.ErrorResponse && this.rewritten.size > 0 ? tracker.pendingSql() : undefined;
    this.frameBody = f.body;
    const v: BackendVerdict = tracker.backend(type, this.frameFields);
    let sent: Buffer | undefined;
    if (type === BackendType.ErrorResponse) {
      if (isFatal(f.body)) this.upstreamFatal = true;
      const e = this.poisons.replace(f);
      const edits = answered === undefined ? undefined : this.rewritten.get(answered)?.edits;
      sent = layer && e === f.raw ? layer.maskServerMessage(e, edits && ((p) => originalPosition(edits, p))) : e;
    } else if (layer) sent = layer.process(f, v);
    else if (v.kind !== 'swallow') sent = f.raw;
    if (sent !== undefined) sink.append(sent);
    if (
      type === BackendType.CommandComplete || type === BackendType.ErrorResponse || type === BackendType.ReadyForQuery ||
      type === BackendType.EmptyQueryResponse || type === BackendType.PortalSuspended
    ) this.noteResult(f);
    if (recorder) {
      if (this.recordMask) sent = type === BackendType.ErrorResponse ? this.recordMask.maskServerMessage(sent ?? f.raw) : this.maskedForRecording(f, v);
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

  /** Completes statement records from the server's answers (CommandComplete, errors, ReadyForQuery...). */
  private noteResult(f: BackendFrame): void {
    let info: { tag?: string; code?: string } | undefined;
    if (f.type === BackendType.CommandComplete) {
      const tag = decodeCommandComplete(f.body);
      info = { tag: tag instanceof ProtocolError ? undefined : tag };
    } else if (f.type === BackendType.ErrorResponse) {
      const e = decodeErrorFieldMap(f.body);
      info = { code: e instanceof ProtocolError ? undefined : e['C'] };
    }
    const ready = f.type === BackendType.ReadyForQuery;
    if (ready) {
      const s = f.body[0];
      this.txStatus = s === TransactionStatusByte.Idle ? 'I' : s === TransactionStatusByte.InTransaction ? 'T' : 'E';
      this.noteIdle(this.txStatus !== 'I');
    }
    const done = this.results.backend(f.type, info);
    for (const r of done) if (!r.skipped && r.ref.kinds.some((k) => DDL_KINDS.has(k))) this.ddlRan = true;
    if (ready && f.body[0] === TransactionStatusByte.Idle) {
      // Idle: no transaction, so no portal outlives this point.
      this.executedPortals.clear();
      // The catalog masking reads changes when DDL has run and committed, not when it is decided:
      // it is refreshed once the session is idle again (autocommit: right after the DDL; else at COMMIT).
      if (this.ddlRan) {
        this.ddlRan = false;
        this.actions.push({ kind: 'ddl' });
      }
    }
    if (done.length === 0) return;
    const masked = (this.masking ?? this.recordMask)?.takeMasked() ?? [];
    for (const r of done) {
      const seq = this.recordSeq.get(r.ref);
      if (seq === undefined) continue;
      // Nothing waits on this record: it rides along with the session's next write (one syscall
      // instead of two per statement), or is written at session end.
      this.deferred.push(resultRecord(this.who, seq, r, masked));
    }
    if (this.deferred.length >= 64) this.record([]);
  }

  // ---- idle in transaction ----

  /**
   * A ReadyForQuery on its way to the client: inside a transaction (or a failed one) with nothing sent
   * and unanswered, nothing held and nothing queued, the session is now idle in it. As with
   * PostgreSQL's idle_in_transaction_session_timeout, only that state is limited (a statement held
   * for approval is the gateway's wait, not the client's), and any client message ends it.
   */
  private noteIdle(inTransaction: boolean): void {
    const ms = this.opts.policy().limits.idleInTransactionTimeoutMs;
    const idle = inTransaction && ms > 0 && !this.barrier.unsynced && !this.held && !this.catalogWait &&
      this.backlog.length === 0 && this.barrier.readySent === this.framer.readyForQueryCount;
    this.idleFrom = idle ? this.opts.clock.now() : 0;
    if (idle && !this.idleTimerArmed) {
      this.idleTimerArmed = true;
      this.actions.push({ kind: 'idleTimer', ms });
    }
  }

  /** The idle timer fired; `clientBuffered`: bytes still on their way to the client. */
  idleTimerFired(clientBuffered: number): void {
    this.idleTimerArmed = false;
    const ms = this.opts.policy().limits.idleInTransactionTimeoutMs;
    if (this.idleFrom === 0 || this.state !== 'relay' || ms === 0) return;
    const now = this.opts.clock.now();
    // A client still taking its last answer is slow, not idle: it gets the whole limit once it has read it.
    if (clientBuffered > 0) this.idleFrom = now;
    const left = this.idleFrom + ms - now;
    if (left > 0) {
      this.idleTimerArmed = true;
      this.actions.push({ kind: 'idleTimer', ms: left });
      return;
    }
    this.opts.log.info('idle in transaction timeout', { session: this.id, timeout_ms: ms });
    this.fatal('25P03', `phigate: idle in transaction past ${limitKey('idleInTransactionTimeoutMs')} (${formatDuration(ms)}); the transaction was rolled back`,
      CloseCode.Timeout, 'idle in transaction timeout');
  }

  // ---- the end ----

  /** The upstream socket closed. */
  upstreamClosed(): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    if (this.terminated) {
      this.closeAfterTerminate();
      return;
    }
    // PostgreSQL normally sends a FATAL first, which was relayed: the client knows why, the evidence says so.
    if (this.upstreamFatal) {
      this.opts.log.warn('the database ended the session', { session: this.id });
      this.state = 'closing';
      this.actions.push({ kind: 'closeClient', code: CloseCode.UpstreamFailed, reason: 'the database ended the session' });
      this.cleanup('the database ended the session');
      return;
    }
    // If it did not, say what happened.
    this.opts.log.warn('upstream closed the connection', { session: this.id });
    this.fatal('08006', 'phigate: the database closed the connection unexpectedly', CloseCode.UpstreamFailed);
  }

  private send(buf: Buffer): void {
    this.bytesOut += buf.length;
    this.actions.push({ kind: 'client', data: buf });
  }

  fatalFields(error: ErrorFields, closeCode: number = CloseCode.Normal, why = 'fatal'): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.send(errorResponse(error));
    this.state = 'closing';
    this.actions.push({ kind: 'closeClient', code: closeCode, reason: truncateReason(error.message) });
    this.cleanup(why);
  }

  /** What the end of the session pushes, kept to push again when a record before it failed (recordFailed). */
  private ending?: { why: string; withdraw: boolean; record: AuditEvent | undefined };

  private cleanup(why: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.endReason = why;
    const withdraw = this.held?.id !== undefined;
    this.held = undefined;
    const seal = this.recorder?.close(why);
    this.recorder = undefined;
    let record: AuditEvent | undefined;
    if (this.startRecorded) {
      this.startRecorded = false;
      const counts = { durationMs: this.opts.clock.now() - this.startedAt, statements: this.statements, bytesIn: this.bytesIn, bytesOut: this.bytesOut };
      record = sessionEnd(this.who, counts, why, seal);
    }
    this.ending = { why, withdraw, record };
    this.pushEnd();
  }

  private pushEnd(): void {
    const { why, withdraw, record } = this.ending!;
    if (withdraw) this.actions.push({ kind: 'withdrawApproval', why: 'the client disconnected' });
    this.actions.push({ kind: 'end', why });
    if (record) {
      const events = this.deferred;
      this.deferred = [];
      events.push(record);
      // Nothing follows that the record guards: the session is over whether or not it is written.
      this.actions.push({ kind: 'record', events, failClosed: false });
    }
    this.actions.push({ kind: 'ended' });
  }
}
