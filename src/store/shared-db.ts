// The PostgreSQL database several gateway replicas share (`phigate server --store URL`, docs/operator.md "Several replicas"):
// one pool for queries, its schema brought up to date at open (the ordered steps of migrations.ts,
// serialized between replicas), a dedicated connection for LISTEN that reconnects by itself, and
// errors that never carry the password. What lives in it is up to its users: approval requests
// (approvals/pg-store.ts), shipped evidence (audit/shipper.ts), published policies and cancels.
// node-postgres is loaded on open: most CLI commands share this module graph and never need it.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';
import { META_SQL, STORE_MIGRATIONS, migrationKey, pendingMigrations, type StoreMigration } from './migrations.js';

/** The shared store could not be reached or refused a query; the message never carries a password. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
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

export interface SharedDatabaseOptions {
  log?: Logger;
  /** First wait before reconnecting a listener (doubles up to 10 s). */
  reconnectMs?: number;
  /** The schema's steps (default STORE_MIGRATIONS; tests pass their own list). */
  migrations?: readonly StoreMigration[];
}

export interface Listener {
  /** Called after a reconnect: notifications may have been missed meanwhile. */
  resync(): void;
  /** A notification another replica sent (a JSON object; this replica's own are not delivered). */
  notify(payload: Record<string, unknown>): void;
}

export class SharedDatabase {
  readonly log: Logger;
  /**
   * Names this replica in the notifications it sends (`payload(...)`), so that its listeners hear
   * only the other replicas: whatever it changed itself, it has already acted on.
   */
  readonly origin = randomBytes(8).toString('hex');
  private closed = false;
  /** Every channel listened to, over one connection. */
  private readonly channels = new Map<string, Listener>();
  private listenClient?: pg.Client;
  private listenTimer?: NodeJS.Timeout;
  private listenQueue: Promise<void> = Promise.resolve();

  private constructor(
    private readonly driver: typeof pg,
    private readonly pool: pg.Pool,
    readonly url: string,
    private readonly reconnectMs: number,
    log: Logger,
  ) {
    this.log = log;
  }

  /** Connects once to prove the store is usable; throws StoreError naming the reason. */
  static async open(url: string, opts: SharedDatabaseOptions = {}): Promise<SharedDatabase> {
    const { default: driver } = await import('pg');
    const log = opts.log ?? silentLogger;
    const pool = new driver.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 10_000, application_name: 'phigate-store' });
    // An idle pooled connection that drops (database restart) must not crash the server.
    pool.on('error', (err) => log.warn('shared store connection lost', { error: err.message }));
    const db = new SharedDatabase(driver, pool, url, opts.reconnectMs ?? 500, log);
    try {
      await pool.query('SELECT 1');
    } catch (err) {
      await pool.end().catch(() => {});
      throw new StoreError(`cannot open the shared store at ${redactStoreUrl(url)}: ${(err as Error).message}`);
    }
    try {
      await db.migrate(opts.migrations ?? STORE_MIGRATIONS);
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
    return db;
  }

  get redactedUrl(): string {
    return redactStoreUrl(this.url);
  }

  /**
   * Brings the schema up to the last of `steps`, each step in one transaction with its record in
   * phigate.meta, all under a lock that replicas starting together share (the second one finds the
   * steps recorded and runs none). Refuses a store whose schema_version is newer than `steps` know.
   */
  private async migrate(steps: readonly StoreMigration[]): Promise<void> {
    const known = steps.at(-1)?.version ?? 0;
    const what = `cannot create phigate's tables in the shared store at ${this.redactedUrl}`;
    for (;;) {
      const done = await this.transaction(async (q) => {
        // CREATE ... IF NOT EXISTS from two sessions at once can still fail on a catalog unique index.
        await q("SELECT pg_advisory_xact_lock(hashtext('phigate.schema'))");
        // A store already set up needs no CREATE right on the database (CREATE SCHEMA checks it first).
        const exists = await q("SELECT pg_catalog.to_regclass('phigate.meta') IS NOT NULL AS exists");
        if (!(exists.rows[0] as { exists: boolean }).exists) await q(META_SQL);
        const rows = (await q('SELECT key, value FROM phigate.meta')).rows as { key: string; value: string }[];
        const meta = new Map(rows.map((r) => [r.key, r.value]));
        const found = Number(meta.get('schema_version'));
        if (found > known) {
          throw new StoreError(`the shared store at ${this.redactedUrl} was set up by a newer phigate (schema ${found}; this one knows up to ${known}): upgrade this replica`);
        }
        const step = pendingMigrations(meta, steps)[0];
        if (!step) return true;
        await q(step.sql);
        await q('INSERT INTO phigate.meta (key, value) VALUES ($1, $2)', [migrationKey(step.version), step.name]);
        await q(`INSERT INTO phigate.meta (key, value) VALUES ('schema_version', $1)
                 ON CONFLICT (key) DO UPDATE SET value = GREATEST(phigate.meta.value::int, EXCLUDED.value::int)::text`, [String(step.version)]);
        this.log.info('shared store schema upgraded', { step: step.version, name: step.name });
        return false;
      }, what);
      if (done) return;
    }
  }

  async query(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
    try {
      return await this.pool.query(sql, params);
    } catch (err) {
      throw new StoreError(`shared store ${this.redactedUrl}: ${(err as Error).message}`);
    }
  }

  /** Several statements in one transaction, on one connection; a failure is a StoreError saying `what` failed. */
  async transaction<T>(
    fn: (q: (sql: string, params?: unknown[]) => Promise<pg.QueryResult>) => Promise<T>, what = `shared store ${this.redactedUrl}`,
  ): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new StoreError(`${what}: ${(err as Error).message}`);
    }
    try {
      await client.query('BEGIN');
      const out = await fn((sql, params = []) => client.query(sql, params));
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err instanceof StoreError ? err : new StoreError(`${what}: ${(err as Error).message}`);
    } finally {
      client.release();
    }
  }

  /**
   * LISTENs on `channel`. One connection carries every channel of this store; when it drops, it is
   * reconnected (backing off up to 10 s), every channel is listened to again and every listener's
   * `resync` is called. Resolves once listening; throws StoreError when it cannot.
   */
  async listen(channel: string, listener: Listener): Promise<void> {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new TypeError(`bad channel name ${channel}`);
    if (this.channels.has(channel)) throw new TypeError(`channel ${channel} already has a listener`);
    // One at a time, so two first callers do not open two connections.
    const done = this.listenQueue.then(async () => {
      this.channels.set(channel, listener);
      try {
        if (this.listenClient) await this.listenClient.query(`LISTEN ${channel}`);
        else await this.connectListener();
      } catch (err) {
        this.channels.delete(channel);
        throw new StoreError(`cannot listen for changes in the shared store at ${this.redactedUrl}: ${(err as Error).message}`);
      }
    });
    this.listenQueue = done.catch(() => {});
    return done;
  }

  private async connectListener(): Promise<void> {
    const client = new this.driver.Client({ connectionString: this.url, application_name: 'phigate-store-listen', connectionTimeoutMillis: 10_000 });
    let ready = false;
    let lost = false;
    const onLost = (err?: Error): void => {
      // Before LISTEN succeeded, the caller's rejection handles the failure.
      if (!ready || lost || this.closed) return;
      lost = true;
      this.listenClient = undefined;
      this.log.warn('shared store notifications lost; reconnecting', { error: err?.message ?? 'connection ended' });
      client.end().catch(() => {});
      this.retryListener(this.reconnectMs);
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (n) => {
      const l = this.channels.get(n.channel);
      const payload = l && n.payload ? parseObject(n.payload) : undefined;
      if (payload && payload['origin'] !== this.origin) l!.notify(payload);
    });
    try {
      await client.connect();
      for (const channel of this.channels.keys()) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    ready = true;
    this.listenClient = client;
  }

  private retryListener(delayMs: number): void {
    if (this.closed) return;
    this.listenTimer = setTimeout(() => {
      this.connectListener().then(
        () => {
          this.log.info('shared store notifications restored', { channels: [...this.channels.keys()].join(',') });
          for (const l of [...this.channels.values()]) l.resync();
        },
        (err: Error) => {
          this.log.warn('shared store still unreachable', { error: err.message });
          this.retryListener(Math.min(delayMs * 2, 10_000));
        },
      );
    }, delayMs);
    this.listenTimer.unref();
  }

  /** A notification's text: `fields` and this replica's origin, as JSON. */
  payload(fields: Record<string, unknown>): string {
    return JSON.stringify({ origin: this.origin, ...fields });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.listenTimer);
    const c = this.listenClient;
    this.listenClient = undefined;
    await c?.end().catch(() => {});
    await this.pool.end().catch(() => {});
  }
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
