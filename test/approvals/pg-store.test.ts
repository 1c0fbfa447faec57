// Approval requests shared through PostgreSQL by several replicas: each "replica" here is an
// ApprovalService with its own PostgresApprovalStore (own pool, own LISTEN connection) on one
// real database, as two `phigate server` processes would have.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { PostgresApprovalStore } from '../../src/approvals/pg-store.js';
import { SharedDatabase, StoreError, redactStoreUrl } from '../../src/store/shared-db.js';
import { ApprovalError, ApprovalService, type ApprovalEvent } from '../../src/approvals/service.js';
import type { ApprovalRecord } from '../../src/approvals/store.js';
import type { Outcome } from '../../src/approvals/types.js';
import { heldDelete, who } from './support.js';
import { scratchDatabase, type ScratchDatabase } from '../support/postgres.js';

const bob = who('bob', ['privacy-officers']);
const carol = who('carol', ['privacy-officers']);
const DB = `phigate_store_${process.pid}`;

let scratch: ScratchDatabase;
let url: string;
let admin: pg.Client;
const opened: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  scratch = await scratchDatabase(inject('pg'), DB);
  ({ url, admin } = scratch);
});

afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});

afterAll(async () => scratch?.drop());

/** A replica's connection to the shared store: its own pool and LISTEN connection. */
async function database(opts: { reconnectMs?: number } = {}): Promise<SharedDatabase> {
  const db = await SharedDatabase.open(url, opts);
  opened.push(db);
  return db;
}

async function store(): Promise<PostgresApprovalStore> {
  return PostgresApprovalStore.open(await database());
}

interface Replica {
  service: ApprovalService;
  events: ApprovalEvent[];
  /** What this replica's webhook was asked to deliver. */
  hooks: string[];
  store: PostgresApprovalStore;
  db: SharedDatabase;
}

async function replica(opts: { reconnectMs?: number; sweepIntervalMs?: number } = {}): Promise<Replica> {
  const db = await database(opts);
  const s = await PostgresApprovalStore.open(db);
  const hooks: string[] = [];
  const webhookNotifier = { notify: (e: ApprovalEvent) => void hooks.push(`${e.type}:${e.approval.id}`), close: () => {} };
  const service = new ApprovalService({ store: s, sweepIntervalMs: opts.sweepIntervalMs ?? 3_600_000, webhookNotifier });
  opened.push({ close: async () => { await service.close(); await s.close(); } });
  const events: ApprovalEvent[] = [];
  service.subscribe((e) => events.push(e));
  return { service, events, hooks, store: s, db };
}

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The outcome, or 'never heard of it' after 8 s: a missed decision fails the test, not the run. */
function within(p: Promise<Outcome>): Promise<Outcome | string> {
  return Promise.race([p, new Promise<string>((r) => setTimeout(() => r('never heard of it'), 8_000).unref())]);
}

function pendingRecord(id: string, over: Partial<ApprovalRecord> = {}): ApprovalRecord {
  const now = Date.now();
  return {
    id, input: heldDelete(), createdAt: new Date(now).toISOString(), expiresAt: new Date(now + 60_000).toISOString(), status: 'pending', ...over,
  };
}

function settledFrom(r: ApprovalRecord, approver: string): ApprovalRecord {
  const outcome: Outcome = { approved: true, approver, scope: 'once' };
  return { ...r, status: 'approved', settlement: { outcome, at: new Date().toISOString(), approver: { name: approver, subject: approver, issuer: 'x' } } };
}

describe('PostgresApprovalStore', () => {
  it('keeps requests in PostgreSQL: insert, get, list pending then settled, settle once', async () => {
    const a = await store();
    const b = await store();
    await a.insert(pendingRecord('apr-st0001'));
    await a.insert(pendingRecord('apr-st0002'));
    expect((await b.get('apr-st0001'))?.input.statement).toBe('DELETE FROM patients WHERE id = $1');
    expect(await b.get('apr-nothere')).toBeUndefined();
    const r = (await b.get('apr-st0001'))!;
    expect(await b.settle(r.id, settledFrom(r, 'bob'))).toBe(true);
    expect(await a.settle(r.id, settledFrom(r, 'carol'))).toBe(false);
    expect((await a.get(r.id))?.settlement?.approver?.name).toBe('bob');
    const pendingIds = (await a.list({ includeSettled: false })).map((x) => x.id);
    expect(pendingIds).toContain('apr-st0002');
    expect(pendingIds).not.toContain('apr-st0001');
    const all = (await a.list({ includeSettled: true })).map((x) => `${x.id}:${x.status}`);
    expect(all.indexOf('apr-st0002:pending')).toBeLessThan(all.indexOf('apr-st0001:approved'));
    await expect(a.insert(pendingRecord('apr-st0002'))).rejects.toThrow(StoreError);
  });

  it('of two replicas settling one request at the same moment, exactly one wins', async () => {
    const a = await store();
    const b = await store();
    for (let i = 0; i < 10; i++) {
      const r = pendingRecord(`apr-race${i}x`);
      await a.insert(r);
      const wins = await Promise.all([a.settle(r.id, settledFrom(r, 'bob')), b.settle(r.id, settledFrom(r, 'carol'))]);
      expect(wins.filter(Boolean)).toHaveLength(1);
    }
  });

  it('tells every other replica about inserts and settlements, never the one that made them', async () => {
    const a = await store();
    const b = await store();
    const seenByA: string[] = [];
    const seenByB: string[] = [];
    a.watch({ change: (c) => seenByA.push(`${c.id}:${c.status}`), resync: () => {} });
    b.watch({ change: (c) => seenByB.push(`${c.id}:${c.status}`), resync: () => {} });
    const r = pendingRecord('apr-ntfy01');
    await a.insert(r);
    await until('the insert to reach b', () => seenByB.includes('apr-ntfy01:pending'));
    await b.settle(r.id, settledFrom(r, 'bob'));
    await until('the settlement to reach a', () => seenByA.includes('apr-ntfy01:approved'));
    expect(seenByA).not.toContain('apr-ntfy01:pending');
    expect(seenByB).not.toContain('apr-ntfy01:approved');
  });

  it('refuses a store set up by a newer phigate instead of misreading it', async () => {
    const direct = await database();
    await direct.query("UPDATE phigate.meta SET value = '99' WHERE key = 'schema_version'");
    try {
      const err = await SharedDatabase.open(url).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as Error).message).toMatch(/set up by a newer phigate \(schema 99; this one knows up to 1\): upgrade this replica/);
    } finally {
      await direct.query("UPDATE phigate.meta SET value = '1' WHERE key = 'schema_version'");
    }
  });

  it('connects over TLS with the server certificate verified (sslmode=verify-full)', async () => {
    const info = inject('pg');
    const tls = `${url.replace('@127.0.0.1:', '@localhost:')}?sslmode=verify-full&sslrootcert=${encodeURIComponent(info.caCert)}`;
    const db = await SharedDatabase.open(tls);
    opened.push(db);
    const r = await db.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    expect(r.rows[0]).toEqual({ ssl: true });
  });

  it('refuses to open with a message naming the reason and never the password', async () => {
    const bad = url.replace(`/${DB}`, '/no_such_database');
    const err = await SharedDatabase.open(bad).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    const message = (err as Error).message;
    expect(message).toMatch(/cannot open the shared store at postgres:\/\/.*no_such_database: .*does not exist/);
    const password = new URL(url).password;
    expect(message).not.toContain(password);
    expect(redactStoreUrl(url)).not.toContain(password);
  });
});

describe('ApprovalService on a shared store (two replicas)', () => {
  it('a statement held on one replica is listed and approved on the other, and released where it waits', async () => {
    const a = await replica();
    const b = await replica();
    const h = a.service.request(heldDelete());
    // b's approver terminals learn of it live, and b lists it.
    const requested = await until('b to hear of the request', () => b.events.find((e) => e.type === 'requested' && e.approval.id === h.id));
    expect(requested.approval.input.rule).toBe('phi-writes');
    expect((await b.service.list(bob)).map((r) => r.id)).toContain(h.id);
    const decided = await b.service.decide(h.id, bob, { approve: true, reason: 'ticket 7' });
    expect(decided.status).toBe('approved');
    expect(await within(h.outcome)).toEqual({ approved: true, approver: 'bob', scope: 'once', reason: 'ticket 7' });
    await until('a to hear of the decision', () => a.events.find((e) => e.type === 'decided' && e.approval.id === h.id));
    // The webhook hears each change once: from the replica that made it.
    expect(a.hooks).toEqual([`requested:${h.id}`]);
    expect(b.hooks).toEqual([`decided:${h.id}`]);
    // The other replica's approver is told who decided it, whichever replica they ask.
    const late = await a.service.decide(h.id, carol, { approve: false, reason: 'no' }).then(() => undefined, (e: unknown) => e);
    expect(late).toBeInstanceOf(ApprovalError);
    expect((late as ApprovalError).message).toMatch(new RegExp(`${h.id} was already approved by bob`));
  });

  it('approvers racing on two replicas: one decision stands, the other is told who won', async () => {
    const a = await replica();
    const b = await replica();
    const h = a.service.request(heldDelete());
    await until('b to hear of the request', () => b.events.some((e) => e.approval.id === h.id));
    const results = await Promise.allSettled([
      a.service.decide(h.id, bob, { approve: true, reason: 'ok' }),
      b.service.decide(h.id, carol, { approve: false, reason: 'no' }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(ApprovalError);
    expect((lost[0]!.reason as ApprovalError).code).toBe('already_decided');
    const outcome = await within(h.outcome);
    expect(typeof outcome === 'object' && outcome.approver).toBe(won[0]!.status === 'fulfilled' && won[0]!.value.settlement?.approver?.name);
  });

  it('a decision taken while the waiting replica could not hear it still reaches the statement', async () => {
    // a reconnects after a second: the decision below lands while nobody on a listens.
    const a = await replica({ reconnectMs: 1_000 });
    const b = await replica();
    let resyncs = 0;
    a.service.onResync(() => resyncs++);
    const h = a.service.request(heldDelete());
    await until('b to hear of the request', () => b.events.some((e) => e.approval.id === h.id));
    // Cut a's notification connection, decide meanwhile; a reconnects and re-reads what it waits for.
    const cut = await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'phigate-store-listen' AND pid <> pg_backend_pid()", [DB]);
    expect(cut.rowCount).toBeGreaterThanOrEqual(2);
    await b.service.decide(h.id, bob, { approve: false, reason: 'not today' });
    expect(await within(h.outcome)).toEqual({ approved: false, approver: 'bob', cause: 'denied', reason: 'not today' });
    // Live views on a are told to start over from a fresh list.
    expect(resyncs).toBe(1);
  });

  it('when the store cannot be written, a withdrawal still refuses the statement and nothing crashes', async () => {
    const a = await replica();
    const h = a.service.request(heldDelete());
    await until('the request to be stored', async () => (await a.store.get(h.id))?.status === 'pending');
    await a.db.close();
    h.withdraw('client went away');
    expect(await within(h.outcome)).toEqual({ approved: false, cause: 'withdrawn', reason: 'client went away' });
    const err = await a.service.decide(h.id, bob, { approve: true, reason: 'ok' }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
  });

  it('a replica that stops withdraws its requests; requests of a replica that vanished are expired by another', async () => {
    const a = await replica();
    const b = await replica();
    const h = a.service.request(heldDelete());
    await until('b to hear of the request', () => b.events.some((e) => e.approval.id === h.id));
    await a.service.close();
    expect(await within(h.outcome)).toMatchObject({ approved: false, cause: 'cancelled' });
    const gone = await until('b to hear of the withdrawal', () => b.events.find((e) => e.type === 'withdrawn' && e.approval.id === h.id));
    expect(gone.approval.settlement?.outcome).toMatchObject({ cause: 'withdrawn', reason: 'the gateway holding the statement shut down' });

    // A crashed replica never withdraws: its request stays pending past its expiry until a sweep.
    const orphan = pendingRecord('apr-orphan', { expiresAt: new Date(Date.now() - 60_000).toISOString() });
    await b.store.insert(orphan);
    const fresh = pendingRecord('apr-fresh1');
    await b.store.insert(fresh);
    expect(await b.service.sweep()).toBe(1);
    expect((await b.store.get('apr-orphan'))?.status).toBe('expired');
    expect((await b.store.get('apr-fresh1'))?.status).toBe('pending');
    expect(b.events.some((e) => e.type === 'expired' && e.approval.id === 'apr-orphan')).toBe(true);
  });
});
