// Where approval requests live: in memory (one gateway) or in PostgreSQL (pg-store.ts, several
// replicas). The interface is asynchronous and settles with a compare-and-set, so two approvers
// racing on one request never both win, whichever store it is.
import type { ApprovalScope, Outcome, PendingApproval } from './types.js';

/** What subscribers of the approval service hear (approver terminals, the webhook). */
export type ApprovalEventType = 'requested' | 'decided' | 'expired' | 'withdrawn';
export interface ApprovalEvent {
  type: ApprovalEventType;
  approval: ApprovalRecord;
}
export type ApprovalListener = (event: ApprovalEvent) => void;

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

/** Another replica inserted or settled a request (shared stores only). */
export interface ApprovalChange {
  id: string;
  status: ApprovalStatus;
}

export interface ApprovalWatcher {
  change(change: ApprovalChange): void;
  /** Notifications may have been missed (the store reconnected): re-read what matters. */
  resync(): void;
}

export interface ApprovalStore {
  /** Several replicas share it: changes come from elsewhere too, and orphaned requests need sweeping. */
  readonly shared?: boolean;
  insert(record: ApprovalRecord): Promise<void>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  /** Replaces a pending request by its settled form; false when it was not pending any more. */
  settle(id: string, settled: ApprovalRecord): Promise<boolean>;
  /** Pending requests, oldest first, then (with includeSettled) the most recently settled ones. */
  list(opts: { includeSettled: boolean }): Promise<ApprovalRecord[]>;
  /** Shared stores: changes made by other replicas. Returns the unsubscribe function. */
  watch?(watcher: ApprovalWatcher): () => void;
  /**
   * Shared stores: the most recently approved access request of this identity for this connection
   * (a just-in-time grant is derived from it, so every replica knows every grant).
   */
  latestAccess?(subject: string, issuer: string, connection: string): Promise<ApprovalRecord | undefined>;
  /** Shared stores: deletes settled requests past their retention. */
  prune?(): Promise<number>;
  close?(): Promise<void>;
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
