// The session's evidence records, built without I/O: statement decisions, their results, and the
// session's start, end and refusal. Redacted text only; the caller writes them (before forwarding).
import type { Identity } from '../../auth/index.js';
import type {
  RecordingSeal, SessionEndEvent, SessionRefusedEvent, SessionStartEvent, StatementDecision, StatementEvent, StatementResultEvent,
} from '../../audit/events.js';
import type { ErrorFields } from '../../pg/index.js';
import type { Verdict } from '../gate.js';
import { PROGRAM_LIMIT_EXCEEDED } from '../size-limits.js';
import type { StatementOutcome } from '../statement-results.js';
import type { Who } from './holds.js';

/** Statement kinds after which the masking catalog is refreshed. */
export const DDL_KINDS = new Set(['create', 'alter', 'drop', 'comment', 'refresh', 'do', 'call']);

/** What the session knows of its client beyond the identity (recorded at start and on refusal). */
export interface ClientInfo {
  identity: Identity;
  /** exec --name: the session is an agent's. */
  label?: string;
  reason?: string;
  remoteAddress?: string;
  params: Record<string, string>;
}

export interface StatementExtra {
  /** The outcome of a statement held earlier: its second record. */
  decision?: StatementDecision;
  approval?: string;
  continues?: boolean;
  rewritten?: { relations: string[]; columns: string[] };
}

/** The record of one decided statement; `sql` is already redacted. */
export function statementRecord(who: Who, sql: string, verdict: Verdict, policy: string, extra: StatementExtra): StatementEvent {
  const { decision, approval } = extra;
  const d = verdict.decision;
  const ev: StatementEvent = {
    type: 'statement', session: who.session, user: who.user, connection: who.connection,
    sql, kinds: d?.kinds ?? [], tables: d?.tables ?? [],
    // Refused by no rule: an error (cannot classify), or a block when a limit refused it.
    decision: decision ?? (verdict.action === 'block' && !d && verdict.error.code !== PROGRAM_LIMIT_EXCEEDED ? 'error' : verdict.action),
    rule: d?.rule, reason: verdict.action === 'block' ? verdict.error.message : d?.reason,
    policy, approval,
  };
  if (extra.continues) ev.continues = true;
  if (extra.rewritten && ev.decision !== 'block' && ev.decision !== 'error') ev.rewritten = extra.rewritten;
  return ev;
}

/** What became of a forwarded statement (`seq`: its statement record). Absent fields stay undefined: the canonical form omits them. */
export function resultRecord(who: Who, seq: number, r: StatementOutcome<unknown>, masked: string[]): StatementResultEvent {
  return {
    type: 'statement.result', session: who.session, user: who.user, connection: who.connection,
    statement: seq, duration_ms: r.durationMs, rows: r.rows, tag: r.tag || undefined, error: r.error || undefined,
    skipped: r.skipped || undefined, suspended: r.suspended || undefined, masked: masked.length ? masked : undefined,
  };
}

export function sessionStart(who: Who, c: ClientInfo): SessionStartEvent {
  const { identity, label } = c;
  return {
    type: 'session.start', session: who.session, user: identity.name, subject: identity.subject, issuer: identity.issuer,
    kind: label ? 'agent' : identity.kind, agent: label, connection: who.connection, client_addr: c.remoteAddress,
    application_name: c.params['application_name'], client_user: c.params['user'],
    client_database: c.params['database'], reason: c.reason,
  };
}

export function sessionEnd(
  who: Who, counts: { durationMs: number; statements: number; bytesIn: number; bytesOut: number }, why: string, seal: RecordingSeal | undefined,
): SessionEndEvent {
  return {
    type: 'session.end', session: who.session, user: who.user, connection: who.connection,
    duration_ms: counts.durationMs, statements: counts.statements, bytes_in: counts.bytesIn, bytes_out: counts.bytesOut, reason: why,
    ...(seal ? { recording: { sha256: seal.sha256, file: seal.file } } : {}),
  };
}

export function sessionRefused(who: Who, c: ClientInfo, fields: ErrorFields, limit: string | undefined): SessionRefusedEvent {
  return {
    type: 'session.refused', session: who.session, user: c.identity.name, subject: c.identity.subject, issuer: c.identity.issuer,
    connection: who.connection, client_addr: c.remoteAddress, application_name: c.params['application_name'],
    code: fields.code, ...(limit ? { limit } : {}), reason: fields.message,
  };
}
