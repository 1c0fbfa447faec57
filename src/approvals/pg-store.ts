// Approval requests in PostgreSQL, shared by every gateway replica that points at the same store
// (`phigate server --store URL`, SPEC §6). A request is one row; settling is a conditional UPDATE, so
// when two approvers on two replicas race, exactly one wins. Every insert and settlement sends a
// NOTIFY in the same statement (delivered at commit), so the replica holding the statement learns of
// a decision taken elsewhere at once, and approver terminals on every replica see every request.
import { randomBytes } from 'node:crypto';
// Loaded in open(): most CLI commands share this module graph and never need a database client.
import type pg from 'pg';
import type { Logger } from '../server/log.js';
import { silentLogger } from '../server/log.js';
import type { ApprovalChange, ApprovalRecord, ApprovalStore, ApprovalWatcher } from './store.js';

/** The NOTIFY channel; payloads are small (`{origin, id, status}`), receivers read the row. */
export const APPROVALS_CHANNEL = 'phigate_approvals';

const SCHEMA_SQL = `
CREATE SCHEMA IF NOT EXISTS phigate;
CREATE TABLE IF NOT EXISTS phigate.approvals (
  id text PRIMARY KEY,
  status text NOT NULL,
  record jsonb NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  settled_at timestamptz
);
CREATE INDEX IF NOT EXISTS approvals_pending ON phigate.approvals (created_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS approvals_settled ON phigate.approvals (settled_at DESC) WHERE status <> 'pending';
CREATE INDEX IF NOT EXISTS approvals_access ON phigate.approvals ((record #>> '{input,requester,subject}'), settled_at DESC)
  WHERE status = 'approved' AND record #>> '{input,kind}' = 'access';`;

/** The shared store could not be reached or refused a query; the message never carries a password. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
}

export interface PostgresStoreOptions {
  log?: Logger;
  /** How many settled requests `phigate approvals --all` shows (default 100). */
  keepSettled?: number;
  /** Settled requests older than this are deleted by `prune` (default 30 days). */
  retainSettledMs?: number;
  /** First wait before reconnecting the notification listener (doubles up to 10 s). */
  reconnectMs?: number;
}

/** `postgres://user:secret@host/db` → `postgres://user@host/db`: for messages and logs. */
export function redactStoreUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return '<unparsable store URL>';
  }
}

export class PostgresApprovalStore implements ApprovalStore {
  readonly shared = true;
  /** Tells this replica's own notifications apart from everyone else's. */
  readonly origin = randomBytes(8).toString('hex');
  private listener?: pg.Client;
  private watchers = new Set<ApprovalWatcher>();
  private reconnectTimer?: NodeJS.Timeout;
  private closed = false;

  private constructor(
    private readonly driver: typeof pg,
    private readonly pool: pg.Pool,
    private readonly url: string,
    private readonly opts: Required<Pick<PostgresStoreOptions, 'keepSettled' | 'retainSettledMs' | 'reconnectMs'>> & { log: Logger },
  ) {}

  /** Connects, creates the schema when missing and starts listening; throws StoreError naming the reason. */
  static async open(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresApprovalStore> {
    const { default: driver } = await import('pg');
    const pool = new driver.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 10_000, application_name: 'phigate-store' });
    // An idle pooled connection that drops (database restart) must not crash the server.
    pool.on('error', (err) => (opts.log ?? silentLogger).warn('shared store connection lost', { error: err.message }));
    const store = new PostgresApprovalStore(driver, pool, url, {
      log: opts.log ?? silentLogger,
      keepSettled: opts.keepSettled ?? 100,
      retainSettledMs: opts.retainSettledMs ?? 30 * 24 * 3_600_000,
      reconnectMs: opts.reconnectMs ?? 500,
    });
    try {
      const client = await pool.connect();
      try {
        // Replicas starting together would race on CREATE ... IF NOT EXISTS (a unique violation in
        // the catalog): one at a time.
        await client.query('BEGIN');
        await client.query("SELECT pg_advisory_xact_lock(hashtext('phigate.schema'))");
        await client.query(SCHEMA_SQL);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
      await store.listen();
    } catch (err) {
      await store.close();
      throw new StoreError(`cannot open the shared store at ${redactStoreUrl(url)}: ${(err as Error).message}`);
    }
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

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.watchers.clear();
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => {});
    await this.pool.end().catch(() => {});
  }

  private payload(record: ApprovalRecord): string {
    return JSON.stringify({ origin: this.origin, id: record.id, status: record.status });
  }

  private async query(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
    try {
      return await this.pool.query(sql, params);
    } catch (err) {
      throw new StoreError(`shared store ${redactStoreUrl(this.url)}: ${(err as Error).message}`);
    }
  }

  /** One dedicated connection for LISTEN; when it drops, reconnect and tell watchers to resync. */
  private async listen(): Promise<void> {
    const client = new this.driver.Client({ connectionString: this.url, application_name: 'phigate-store-listen', connectionTimeoutMillis: 10_000 });
    let ready = false;
    let lost = false;
    const onLost = (err?: Error): void => {
      // Before LISTEN succeeded, the caller's rejection handles the failure.
      if (!ready || lost || this.closed) return;
      lost = true;
      this.listener = undefined;
      this.opts.log.warn('shared store notifications lost; reconnecting', { error: err?.message ?? 'connection ended' });
      client.end().catch(() => {});
      this.scheduleReconnect(this.opts.reconnectMs);
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (n) => {
      if (n.channel !== APPROVALS_CHANNEL || !n.payload) return;
      const change = parseChange(n.payload);
      if (!change || change.origin === this.origin) return;
      for (const w of [...this.watchers]) w.change({ id: change.id, status: change.status });
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${APPROVALS_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    ready = true;
    this.listener = client;
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.closed) return;
    this.reconnectTimer = setTimeout(() => {
      this.listen().then(
        () => {
          this.opts.log.info('shared store notifications restored');
          // Whatever happened while nobody listened: watchers re-read what they wait for.
          for (const w of [...this.watchers]) w.resync();
        },
        (err: Error) => {
          this.opts.log.warn('shared store still unreachable', { error: err.message });
          this.scheduleReconnect(Math.min(delayMs * 2, 10_000));
        },
      );
    }, delayMs);
    this.reconnectTimer.unref();
  }
}

function parseChange(payload: string): (ApprovalChange & { origin: string }) | undefined {
  try {
    const p = JSON.parse(payload) as Record<string, unknown>;
    const { origin, id, status } = p;
    if (typeof origin !== 'string' || typeof id !== 'string' || typeof status !== 'string') return undefined;
    if (!['pending', 'approved', 'denied', 'expired', 'withdrawn'].includes(status)) return undefined;
    return { origin, id, status: status as ApprovalChange['status'] };
  } catch {
    return undefined;
  }
}
