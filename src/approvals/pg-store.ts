// Approval requests in PostgreSQL, shared by every gateway replica that points at the same store
// (`phigate server --store URL`, docs/operator.md "Several replicas"). A request is one row; settling is a conditional UPDATE, so
// when two approvers on two replicas race, exactly one wins. Every insert and settlement sends a
// NOTIFY in the same statement (delivered at commit), so the replica holding the statement learns of
// a decision taken elsewhere at once, and approver terminals on every replica see every request.
import type { SharedDatabase } from '../store/shared-db.js';
import type { ApprovalChange, ApprovalRecord, ApprovalStore, ApprovalWatcher } from './store.js';

/** The NOTIFY channel; payloads are small (`{origin, id, status}`), receivers read the row. */
export const APPROVALS_CHANNEL = 'phigate_approvals';

export interface PostgresStoreOptions {
  /** How many settled requests `phigate approvals --all` shows (default 100). */
  keepSettled?: number;
  /** Settled requests older than this are deleted by `prune` (default 30 days). */
  retainSettledMs?: number;
}

export class PostgresApprovalStore implements ApprovalStore {
  readonly shared = true;
  private watchers = new Set<ApprovalWatcher>();

  private constructor(
    private readonly db: SharedDatabase,
    private readonly opts: Required<PostgresStoreOptions>,
  ) {}

  /** Starts listening (the table is the store's, store/migrations.ts); throws StoreError naming the reason. */
  static async open(db: SharedDatabase, opts: PostgresStoreOptions = {}): Promise<PostgresApprovalStore> {
    const store = new PostgresApprovalStore(db, { keepSettled: opts.keepSettled ?? 100, retainSettledMs: opts.retainSettledMs ?? 30 * 24 * 3_600_000 });
    await db.listen(APPROVALS_CHANNEL, {
      notify: (payload) => {
        const change = parseChange(payload);
        if (!change) return;
        for (const w of [...store.watchers]) w.change(change);
      },
      // Whatever happened while nobody listened: watchers re-read what they wait for.
      resync: () => {
        for (const w of [...store.watchers]) w.resync();
      },
    });
    return store;
  }

  async insert(record: ApprovalRecord): Promise<void> {
    await this.query(
      `WITH i AS (
         INSERT INTO phigate.approvals (id, status, record, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id)
       SELECT pg_notify('${APPROVALS_CHANNEL}', $6) FROM i`,
      [record.id, record.status, JSON.stringify(record), record.createdAt, record.expiresAt, this.payload(record)],
    );
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const r = await this.query('SELECT record FROM phigate.approvals WHERE id = $1', [id]);
    return r.rows[0]?.record as ApprovalRecord | undefined;
  }

  async settle(id: string, settled: ApprovalRecord): Promise<boolean> {
    const r = await this.query(
      `WITH u AS (
         UPDATE phigate.approvals SET status = $2, record = $3, settled_at = $4
         WHERE id = $1 AND status = 'pending' RETURNING id)
       SELECT pg_notify('${APPROVALS_CHANNEL}', $5) FROM u`,
      [id, settled.status, JSON.stringify(settled), settled.settlement?.at ?? new Date().toISOString(), this.payload(settled)],
    );
    return r.rowCount === 1;
  }

  async list(opts: { includeSettled: boolean }): Promise<ApprovalRecord[]> {
    const pending = await this.query("SELECT record FROM phigate.approvals WHERE status = 'pending' ORDER BY created_at, id");
    const out = pending.rows.map((r) => r.record as ApprovalRecord);
    if (opts.includeSettled) {
      const settled = await this.query(
        "SELECT record FROM phigate.approvals WHERE status <> 'pending' ORDER BY settled_at DESC, id LIMIT $1", [this.opts.keepSettled]);
      out.push(...settled.rows.map((r) => r.record as ApprovalRecord));
    }
    return out;
  }

  async latestAccess(subject: string, issuer: string, connection: string): Promise<ApprovalRecord | undefined> {
    const r = await this.query(
      `SELECT record FROM phigate.approvals
       WHERE status = 'approved' AND record #>> '{input,kind}' = 'access' AND record #>> '{input,requester,subject}' = $1
         AND record #>> '{input,requester,issuer}' = $2 AND record #>> '{input,connection}' = $3
       ORDER BY settled_at DESC LIMIT 1`, [subject, issuer, connection]);
    return r.rows[0]?.record as ApprovalRecord | undefined;
  }

  /** Deletes settled requests past the retention (the audit log keeps their evidence); returns how many. */
  async prune(): Promise<number> {
    const r = await this.query(
      "DELETE FROM phigate.approvals WHERE status <> 'pending' AND settled_at < now() - make_interval(secs => $1)",
      [this.opts.retainSettledMs / 1000]);
    return r.rowCount ?? 0;
  }

  watch(watcher: ApprovalWatcher): () => void {
    this.watchers.add(watcher);
    return () => void this.watchers.delete(watcher);
  }

  /** The database is the caller's: it closes it (other stores share it). */
  async close(): Promise<void> {
    this.watchers.clear();
  }

  private payload(record: ApprovalRecord): string {
    return this.db.payload({ id: record.id, status: record.status });
  }

  private query(sql: string, params: unknown[] = []): ReturnType<SharedDatabase['query']> {
    return this.db.query(sql, params);
  }
}

function parseChange(p: Record<string, unknown>): ApprovalChange | undefined {
  const { id, status } = p;
  if (typeof id !== 'string' || typeof status !== 'string') return undefined;
  if (!['pending', 'approved', 'denied', 'expired', 'withdrawn'].includes(status)) return undefined;
  return { id, status: status as ApprovalChange['status'] };
}
