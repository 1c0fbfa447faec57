// The audit log's vocabulary: one typed event per thing that happened, and the record each becomes
// once the log gives it a place in the chain (seq, at, prev). Callers pass redacted statement text
// only; nothing here ever holds a literal, a bind parameter or a result value.

/** What an identity is, as the session saw it ('agent' for `phigate exec` sessions). */
export type IdentityKind = 'human' | 'service' | 'agent';

/**
 * How a statement was decided. allow/block/approve are the policy's verdict; a held statement's
 * record carries how the hold ended (approved, denied, timeout, withdrawn, cancelled); `error` is a
 * statement refused for another reason (e.g. it could not be classified: fail closed).
 */
export type StatementDecision = 'allow' | 'block' | 'approve' | 'approved' | 'denied' | 'timeout' | 'withdrawn' | 'cancelled' | 'error';

export const STATEMENT_DECISIONS: readonly StatementDecision[] = [
  'allow', 'block', 'approve', 'approved', 'denied', 'timeout', 'withdrawn', 'cancelled', 'error',
];

export interface ServerStartEvent {
  type: 'server.start';
  version: string;
  pid: number;
  listen?: string;
  /** Policy version in force at start. */
  policy?: string;
}

export interface ServerStopEvent {
  type: 'server.stop';
  /** SIGTERM, SIGINT, ... */
  reason: string;
  sessions?: number;
}

export interface PolicyActivatedEvent {
  type: 'policy.activated';
  /** `sha256:<hex>`; the text is under `<data-dir>/policies/<hex>.yaml`. */
  policy: string;
  /** startup | sighup | api */
  source: string;
  by?: string;
  file?: string;
}

export interface SessionStartEvent {
  type: 'session.start';
  session: string;
  /** Identity name (preferred_username, email or sub). */
  user: string;
  subject: string;
  issuer: string;
  kind: IdentityKind;
  /** `phigate exec --name` label of an agent session. */
  agent?: string;
  connection: string;
  client_addr?: string;
  application_name?: string;
  /** What the client put in its StartupMessage (selects nothing upstream; recorded as sent). */
  client_user?: string;
  client_database?: string;
  /** `--reason` given when connecting. */
  reason?: string;
}

export interface RecordingSeal {
  /** SHA-256 hex of the recording file's bytes. */
  sha256: string;
  /** File name relative to `<data-dir>/recordings`. */
  file: string;
}

export interface SessionEndEvent {
  type: 'session.end';
  session: string;
  user: string;
  connection: string;
  duration_ms: number;
  statements: number;
  /** Absent for an interrupted session (the counts died with the process). */
  bytes_in?: number;
  bytes_out?: number;
  recording?: RecordingSeal;
  /**
   * Why it ended: client closed, upstream failed, server shutdown, access expired, ... or
   * `interrupted`: the server stopped without ending it (a crash), and the next start closed it.
   */
  reason?: string;
  /** An interrupted session's recording ended in a torn line, cut before sealing: its length and SHA-256. */
  recording_cut?: { bytes: number; sha256: string };
}

/**
 * A session that never started: over one of the gateway's session limits, or its upstream connect
 * failed. `reason` is what the client was told (no credentials, no role names).
 */
export interface SessionRefusedEvent {
  type: 'session.refused';
  session: string;
  user: string;
  subject: string;
  issuer: string;
  connection: string;
  client_addr?: string;
  application_name?: string;
  /** The SQLSTATE the client got: 53300 for a limit, 08001/08004/57P03/... for the upstream. */
  code: string;
  /** The policy key of the limit that refused it (limits.sessions_per_identity, connections.ehr.max_sessions, ...). */
  limit?: string;
  reason: string;
}

export interface StatementEvent {
  type: 'statement';
  session: string;
  /** Identity name, repeated from session.start so each record says who on its own. */
  user: string;
  connection: string;
  /** Redacted text (literals and parameters replaced); never raw. */
  sql: string;
  kinds: string[];
  tables: string[];
  decision: StatementDecision;
  /** Deciding rule; absent when the policy's default decided. */
  rule?: string;
  /** Why, in the words the client was given. */
  reason?: string;
  /** Policy version in force. */
  policy: string;
  /** Approval request id of a held statement. */
  approval?: string;
  /** An Execute of a portal that already ran: it fetches more rows of the same result (a cursor). */
  continues?: boolean;
  /** Known when the record is written after the statement ran (blocked statements: 0). */
  duration_ms?: number;
  rows?: number;
  masked?: string[];
  /**
   * Masking at the source: the statement was rewritten before it reached the database, these
   * relations replaced by subqueries and these columns (schema.table.column:strategy) computed as
   * their masked values. Names only, never values.
   */
  rewritten?: { relations: string[]; columns: string[] };
}

/**
 * What became of a statement after it was forwarded: its record had to be written before the
 * statement reached the database, so duration, rows and masked columns come in this second record.
 */
export interface StatementResultEvent {
  type: 'statement.result';
  session: string;
  user: string;
  connection: string;
  /** seq of the statement record this completes. */
  statement: number;
  duration_ms: number;
  rows?: number;
  /** Command tag (SELECT 3, UPDATE 1). */
  tag?: string;
  /** SQLSTATE when it failed. */
  error?: string;
  /** Never ran: an earlier statement of the same pipeline failed, so the server skipped it. */
  skipped?: boolean;
  /** A portal executed with a row limit stopped before its end; more Executes may follow. */
  suspended?: boolean;
  masked?: string[];
}

export interface ApprovalRequestedEvent {
  type: 'approval.requested';
  approval: string;
  request: 'statement' | 'access';
  session?: string;
  /** Requester. */
  user: string;
  connection: string;
  sql?: string;
  rule: string;
  tables: string[];
  approvers: string[];
  expires_at: string;
}

export interface ApprovalDecidedEvent {
  type: 'approval.decided';
  approval: string;
  session?: string;
  /** Requester. */
  user: string;
  connection: string;
  outcome: 'approved' | 'denied' | 'timeout' | 'cancelled' | 'withdrawn';
  approver?: string;
  reason?: string;
  scope?: 'once' | 'statement' | 'shape' | 'session';
}

export interface AccessGrantedEvent {
  type: 'access.granted';
  grant: string;
  user: string;
  connection: string;
  until: string;
  approval?: string;
  by?: string;
  reason?: string;
}

export interface AccessExpiredEvent {
  type: 'access.expired';
  grant: string;
  user: string;
  connection: string;
}

export interface AuditSearchEvent {
  type: 'audit.search';
  /** The auditor. */
  user: string;
  filters: Record<string, string>;
  results: number;
}

export interface AuditExportEvent {
  type: 'audit.export';
  user: string;
  since?: string;
  until?: string;
  records: number;
  first_seq?: number;
  last_seq?: number;
  /** The chain exported, when it was another replica's (from the shared store). */
  replica?: string;
}

export interface ReplayEvent {
  type: 'replay';
  /** The auditor. */
  user: string;
  /** The session replayed. */
  session: string;
}

/** Privileged actions whose every attempt (granted or refused) is on the record. */
export type PrivilegedAction =
  | 'policy.apply' | 'policy.history'
  | 'audit.search' | 'audit.export' | 'audit.verify'
  | 'sessions.list' | 'replay'
  | 'approval.decide' | 'access.grant';

export const PRIVILEGED_ACTIONS: readonly PrivilegedAction[] = [
  'policy.apply', 'policy.history', 'audit.search', 'audit.export', 'audit.verify', 'sessions.list', 'replay', 'approval.decide', 'access.grant',
];

/**
 * An authenticated identity attempted a privileged action: who, what, on what, and whether it was
 * granted or refused (with the refusal's code). Written for refusals too, so that probing shows on
 * the tamper-evident record and not only in the text log. Requests without a valid token are not
 * identities and are logged only.
 */
export interface PrivilegedEvent {
  type: 'privileged';
  /** Identity name, subject and issuer of the token. */
  user: string;
  subject: string;
  issuer: string;
  action: PrivilegedAction;
  /** What it was aimed at: an approval or session id, a policy version, `audit log`, a user's sessions. */
  target: string;
  outcome: 'granted' | 'refused';
  /** Why it was refused: forbidden, self_approval, not_an_approver, invalid_policy, ... */
  code?: string;
}

export interface LogRepairedEvent {
  type: 'log.repaired';
  /** audit.jsonl */
  file: string;
  /** Byte offset where the cut began (the end of the last complete record). */
  offset: number;
  bytes: number;
  /** SHA-256 hex of the bytes cut. */
  cut_sha256: string;
  reason: string;
}

export type AuditEvent =
  | ServerStartEvent | ServerStopEvent | PolicyActivatedEvent
  | SessionStartEvent | SessionEndEvent | SessionRefusedEvent | StatementEvent | StatementResultEvent
  | ApprovalRequestedEvent | ApprovalDecidedEvent | AccessGrantedEvent | AccessExpiredEvent
  | AuditSearchEvent | AuditExportEvent | ReplayEvent | LogRepairedEvent | PrivilegedEvent;

export type AuditEventType = AuditEvent['type'];

export const AUDIT_EVENT_TYPES: readonly AuditEventType[] = [
  'server.start', 'server.stop', 'policy.activated', 'session.start', 'session.end', 'statement', 'statement.result',
  'approval.requested', 'approval.decided', 'access.granted', 'access.expired', 'audit.search', 'audit.export', 'replay', 'log.repaired',
  // New types go last: a type's index code is its position here.
  'session.refused',
  'privileged',
];

/** What a privileged attempt's record says about the identity (a pure helper for the routes). */
export function privilegedEvent(
  who: { name: string; subject: string; issuer: string }, action: PrivilegedAction, target: string, outcome: 'granted' | 'refused', code?: string,
): PrivilegedEvent {
  return {
    type: 'privileged', user: who.name, subject: who.subject, issuer: who.issuer, action, target: target.slice(0, 200), outcome,
    ...(code !== undefined ? { code } : {}),
  };
}

/** Fields the log adds; events never carry them. */
export interface RecordHeader {
  /** 0 for the first record of the log, then +1 per record. */
  seq: number;
  /** ISO 8601 UTC, millisecond precision. */
  at: string;
  /** SHA-256 hex of the canonical form of record seq-1 (64 zeros for record 0). */
  prev: string;
}

export type AuditRecord = RecordHeader & AuditEvent;

/** Names an event may not use: the log's own fields, and the export bundle's discriminator. */
export const RESERVED_FIELDS: readonly string[] = ['seq', 'at', 'prev', 'bundle'];

/** A record as read back from a file: the header is checked, the rest is whatever was written. */
export type StoredRecord = RecordHeader & { type: string; [field: string]: unknown };
