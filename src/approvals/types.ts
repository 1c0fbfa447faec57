// The contract between the gateway's sessions (which hold statements) and the approval service
// (which asks people and answers). Sessions only ever see `ApprovalRequestInput` and `Outcome`.

export interface RequesterIdentity {
  subject: string;
  issuer: string;
  name: string;
  groups: readonly string[];
  kind: 'human' | 'service' | 'agent';
  /** exec --name label when the session is an agent's: shown as a label, never compared with identities. */
  label?: string;
  /**
   * The person the requester is (auth/person.ts): their subject, or the owner of the service they
   * used. Separation of duties compares it. Absent on requests stored before it existed (the subject
   * is compared then) and for services nobody owns.
   */
  person?: string;
}

export interface ApprovalRequestInput {
  kind: 'statement' | 'access';
  requester: RequesterIdentity;
  sessionId: string;
  connection: string;
  /** The statement with every literal redacted: no PHI ever enters an approval request. */
  statement: string;
  /** Fingerprint of the statement text, so "approve for this session" can release repeats. */
  fingerprint: string;
  rule: string;
  reason: string;
  tables: readonly string[];
  approvers: readonly string[];
  timeoutMs: number;
  /** For kind 'access': how long the grant lasts once approved. */
  accessDurationMs?: number;
}

/**
 * What an approval releases. `once`: this execution only. For the rest of the requester's session:
 * `statement`, this exact statement text again; `shape`, any statement of this shape (the same text
 * with any literals); `session`, every statement the same rule holds.
 */
export type ApprovalScope = 'once' | 'statement' | 'shape' | 'session';

export const APPROVAL_SCOPES: readonly ApprovalScope[] = ['once', 'statement', 'shape', 'session'];

export type Outcome =
  | { approved: true; approver: string; reason?: string; scope: ApprovalScope }
  | { approved: false; approver?: string; reason?: string; cause: 'denied' | 'timeout' | 'cancelled' | 'withdrawn' };

export interface PendingApproval {
  id: string;
  /** Either a held statement or a just-in-time access request. */
  input: ApprovalRequestInput;
  createdAt: string;
  expiresAt: string;
}

export interface ApprovalHandle {
  id: string;
  outcome: Promise<Outcome>;
  /** The requester gave up (client cancelled or disconnected): resolves outcome as withdrawn. */
  withdraw(why: string): void;
}

/** What a session needs from the approval service. */
export interface ApprovalRequester {
  request(input: ApprovalRequestInput): ApprovalHandle;
}
