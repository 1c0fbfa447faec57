// What the gateway gives a client session: who it is, where it goes, and the process-wide services
// it uses (policy, evidence, approvals, pool, admission, masking, metrics).
import type { ApprovalRequester } from '../../approvals/types.js';
import type { AuditLog } from '../../audit/log.js';
import type { ConnectionPolicy } from '../../policy/file.js';
import type { UpstreamTarget } from '../upstream.js';
import type { UpstreamLease } from '../pool/pool.js';
import type { AdmissionTicket, LimitRefusal } from '../admission.js';
import type { CancelRegistry } from '../cancel-registry.js';
import type { RemoteCancel } from '../shared-cancel.js';
import type { RewriteOutcome } from '../../masking/source/rewrite.js';
import type { AnalysisRequest, TextAnalysis } from '../analysis.js';
import type { SessionFacts } from './core.js';

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

/** `S`: the session `onClose` is given (the shell's ClientSession). */
export interface SessionOptions<S = unknown> extends SessionFacts {
  cancels: CancelRegistry;
  /** With a shared store: a key this replica did not issue is passed on to the others. */
  forwardCancel?: (c: RemoteCancel) => Promise<void>;
  resolveTarget: (conn: ConnectionPolicy) => UpstreamTarget;
  /** Evidence: every statement is recorded before it is forwarded, or not forwarded at all. */
  audit?: Pick<AuditLog, 'append' | 'appendMany'>;
  approvals?: ApprovalRequester;
  /** Resolves once the masking catalog has a first snapshot (the session waits for it at startup). */
  maskingReady?: () => Promise<void>;
  /** Set with `masking` when the policy masks columns: statements are rewritten at the source. */
  source?: SourceMaskingHandle;
  /** Where session recordings go; none are made without it. */
  recordingsDir?: string;
  recordingRowCap?: number;
  onClose?: (session: S) => void;
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
  /**
   * Analyses a large text off the event loop (analysis.ts, in a worker), with this connection's
   * masking and catalog; absent, every text is analysed inline.
   */
  analyze?: (req: AnalysisRequest) => Promise<TextAnalysis>;
}
