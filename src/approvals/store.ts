// Where approval requests live. In memory for now; the interface is asynchronous and settles with a
// compare-and-set so that a shared store (several gateway replicas) can replace it without changing
// the service: two approvers racing on one request must not both win.
import type { ApprovalScope, Outcome, PendingApproval } from './types.js';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'withdrawn';

export interface ApprovalRecord extends PendingApproval {
  status: ApprovalStatus;
  /** Present once the request is no longer pending. */
  settlement?: Settlement;
}

export interface Settlement {
  outcome: Outcome;
  at: string;
  /** Who decided, for "already decided by" messages and for letting them see it afterwards. */
  approver?: { name: string; subject: string; issuer: string };
  scope?: ApprovalScope;
}

export interface ApprovalStore {
  insert(record: ApprovalRecord): Promise<void>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  /** Replaces a pending request by its settled form; false when it was not pending any more. */
  settle(id: string, settled: ApprovalRecord): Promise<boolean>;
  /** Pending requests, oldest first, then (with includeSettled) the most recently settled ones. */
  list(opts: { includeSettled: boolean }): Promise<ApprovalRecord[]>;
}

/** Keeps every pending request and the last `keepSettled` settled ones (for `phigate approvals --all`). */
export class MemoryApprovalStore implements ApprovalStore {
  private readonly pending = new Map<string, ApprovalRecord>();
  /** Insertion-ordered: the oldest settlement is evicted first. */
  private readonly settled = new Map<string, ApprovalRecord>();

  constructor(private readonly keepSettled = 100) {}

  async insert(record: ApprovalRecord): Promise<void> {
    if (this.pending.has(record.id) || this.settled.has(record.id)) throw new Error(`approval id ${record.id} already exists`);
    this.pending.set(record.id, structuredClone(record));
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const r = this.pending.get(id) ?? this.settled.get(id);
    return r && structuredClone(r);
  }

  async settle(id: string, settled: ApprovalRecord): Promise<boolean> {
    if (!this.pending.delete(id)) return false;
    this.settled.set(id, structuredClone(settled));
    while (this.settled.size > this.keepSettled) {
      const oldest = this.settled.keys().next().value;
      if (oldest === undefined) break;
      this.settled.delete(oldest);
    }
    return true;
  }

  async list(opts: { includeSettled: boolean }): Promise<ApprovalRecord[]> {
    const out = [...this.pending.values()];
    if (opts.includeSettled) out.push(...[...this.settled.values()].reverse());
    return out.map((r) => structuredClone(r));
  }
}
