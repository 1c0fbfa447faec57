// Holding a statement for approval, without I/O: the request the approval service gets, the two
// evidence records (requested, decided) and the error a client gets when the answer is no.
import type { Decision } from '../../policy/decide.js';
import { formatDuration } from '../../policy/duration.js';
import { DEFAULT_APPROVAL_TIMEOUT_MS } from '../../policy/rules.js';
import type { ApprovalRequestInput, Outcome, RequesterIdentity } from '../../approvals/types.js';
import type { ApprovalDecidedEvent, ApprovalRequestedEvent, StatementDecision } from '../../audit/events.js';
import type { ErrorFields } from '../../pg/index.js';
import type { Verdict } from '../gate.js';

export type HoldVerdict = Extract<Verdict, { action: 'approve' }>;

/** Who the session's records name. */
export interface Who {
  session: string;
  user: string;
  connection: string;
}

export function approvalRequest(who: Who, requester: RequesterIdentity, verdict: HoldVerdict): ApprovalRequestInput {
  const d = verdict.decision;
  return {
    kind: 'statement',
    requester,
    sessionId: who.session,
    connection: who.connection,
    statement: verdict.statement,
    fingerprint: verdict.fingerprint,
    rule: d.rule ?? '(default)',
    reason: d.reason,
    tables: d.tables,
    approvers: d.approvers ?? [],
    timeoutMs: d.timeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS,
  };
}

export function approvalRequested(who: Who, id: string, verdict: HoldVerdict, now: number): ApprovalRequestedEvent {
  const d = verdict.decision;
  return {
    type: 'approval.requested', approval: id, request: 'statement', session: who.session, user: who.user,
    connection: who.connection, sql: verdict.statement, rule: d.rule ?? '(default)', tables: [...d.tables],
    approvers: [...(d.approvers ?? [])], expires_at: new Date(now + (d.timeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS)).toISOString(),
  };
}

/** The held statement's outcome as evidence names it: a client's cancel wins over the withdrawal it caused. */
export function holdOutcome(o: Outcome, cancelRequested: boolean): Exclude<StatementDecision, 'allow' | 'block' | 'approve' | 'error'> {
  return o.approved ? 'approved' : cancelRequested ? 'cancelled' : o.cause;
}

export function approvalDecided(who: Who, id: string, o: Outcome, outcome: ApprovalDecidedEvent['outcome']): ApprovalDecidedEvent {
  return {
    type: 'approval.decided', approval: id, session: who.session, user: who.user, connection: who.connection,
    outcome, approver: o.approver, reason: o.reason, scope: o.approved ? o.scope : undefined,
  };
}

export function waitingNotice(id: string, d: Decision): string {
  return `waiting for approval ${id} (rule "${d.rule}"; approvers: ${(d.approvers ?? []).join(', ')})`;
}

/** The error a held statement that will not run gets (in place of the database's answer). */
export function refusalFor(o: Extract<Outcome, { approved: false }>, d: Decision, id: string | undefined, cancelRequested: boolean): ErrorFields {
  const ref = `rule "${d.rule}"${id ? `, request ${id}` : ''}`;
  if (cancelRequested) return { severity: 'ERROR', code: '57014', message: 'canceling statement due to user request' };
  switch (o.cause) {
    case 'timeout':
      return { severity: 'ERROR', code: '42501', message: `phigate: no approver decided within ${formatDuration(d.timeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS)} (${ref}); the statement was not run` };
    case 'denied':
      return { severity: 'ERROR', code: '42501', message: `phigate: ${o.approver ? `denied by ${o.approver}` : 'denied'}${o.reason ? `: ${o.reason}` : ''} (${ref})` };
    default:
      // Cancelled or withdrawn by the gateway (shutting down, the shared store unavailable): say why.
      return { severity: 'ERROR', code: '42501', message: `phigate: approval ${o.cause}${o.reason ? `: ${o.reason}` : ''} (${ref})` };
  }
}
