// The shared store's schema steps (src/store/migrations.ts) on a real PostgreSQL: a fresh store gets
// every step, recorded; a store set up before steps were recorded upgrades in place keeping its
// rows; a later, non-idempotent step runs exactly once however many replicas open the store at
// once; a store from a newer phigate is refused before anything is changed.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { SharedDatabase, StoreError } from '../../src/store/shared-db.js';
import { STORE_MIGRATIONS, STORE_SCHEMA_VERSION, pendingMigrations, type StoreMigration } from '../../src/store/migrations.js';
import { scratchDatabase, type ScratchDatabase } from '../support/postgres.js';

const DB = `phigate_migrations_${process.pid}`;
let scratch: ScratchDatabase | undefined;

beforeEach(async () => {
  await scratch?.drop();
  scratch = await scratchDatabase(inject('pg'), DB);
});

afterAll(async () => scratch?.drop());

async function sql(text: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: scratch!.url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}

async function tables(): Promise<string[]> {
  const rows = await sql("SELECT tablename FROM pg_tables WHERE schemaname = 'phigate'");
  return rows.map((r) => r['tablename'] as string).sort();
}

async function meta(): Promise<Record<string, string>> {
  const rows = await sql('SELECT key, value FROM phigate.meta ORDER BY key');
  return Object.fromEntries(rows.map((r) => [r['key'] as string, r['value'] as string]));
}

async function openClose(migrations?: readonly StoreMigration[]): Promise<void> {
  await (await SharedDatabase.open(scratch!.url, migrations ? { migrations } : {})).close();
}

const EVERY_TABLE = ['approvals', 'audit_chains', 'audit_checkpoints', 'audit_records', 'meta', 'policies', 'policy_activations', 'recordings'];

/**
 * What phigate before recorded steps left in a store whose replica got as far as opening its
 * approval store (the evidence and policy tables were created later, at gateway start): a frozen
 * copy of that version's statements.
 */
const LEGACY_PARTIAL_STORE = `
CREATE SCHEMA IF NOT EXISTS phigate;
CREATE TABLE IF NOT EXISTS phigate.meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO phigate.meta (key, value) VALUES ('schema_version', '1') ON CONFLICT (key) DO NOTHING;
CREATE TABLE IF NOT EXISTS phigate.approvals (
  id text PRIMARY KEY,
  status text NOT NULL,
  record jsonb NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  settled_at timestamptz
);
CREATE INDEX IF NOT EXISTS approvals_pending ON phigate.approvals (created_at) WHERE status = 'pending';
INSERT INTO phigate.approvals VALUES ('apr-legacy', 'pending', '{"input":{}}', now(), now() + interval '1 hour', NULL);`;

describe('shared store migrations', () => {
  it('the list is numbered 1, 2, 3, ... and a misnumbered list is a bug caught at open', async () => {
    expect(STORE_MIGRATIONS.map((m) => m.version)).toEqual(STORE_MIGRATIONS.map((_, i) => i + 1));
    expect(STORE_SCHEMA_VERSION).toBe(STORE_MIGRATIONS.length);
    expect(pendingMigrations(new Map([['migration.1', 'x']]), STORE_MIGRATIONS.slice(0, 1))).toEqual([]);
    expect(() => pendingMigrations(new Map(), [{ version: 2, name: 'gap', sql: '' }])).toThrow(/numbered 2/);
  });

  it('a fresh store gets every step, each recorded once in phigate.meta', async () => {
    await openClose();
    expect(await tables()).toEqual(EVERY_TABLE);
    expect(await meta()).toEqual({
      schema_version: String(STORE_SCHEMA_VERSION),
      ...Object.fromEntries(STORE_MIGRATIONS.map((m) => [`migration.${m.version}`, m.name])),
    });
    // Opening again runs nothing and changes nothing.
    await openClose();
    expect(Object.keys(await meta())).toHaveLength(STORE_MIGRATIONS.length + 1);
  });

  it('a store set up before steps were recorded is completed in place, its rows kept, its version unchanged for older replicas', async () => {
    await sql(LEGACY_PARTIAL_STORE);
    expect(await tables()).toEqual(['approvals', 'meta']);
    await openClose();
    expect(await tables()).toEqual(EVERY_TABLE);
    expect(await sql('SELECT id, status FROM phigate.approvals')).toEqual([{ id: 'apr-legacy', status: 'pending' }]);
    // Step 1's indexes that the legacy store lacked were created too.
    const idx = await sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'phigate' AND tablename = 'approvals'");
    expect(idx.map((r) => r['indexname']).sort()).toEqual(['approvals_access', 'approvals_pending', 'approvals_pkey', 'approvals_settled']);
    expect(await meta()).toMatchObject({ schema_version: '1', 'migration.1': STORE_MIGRATIONS[0]!.name });
  });

  it('a later step that is not idempotent runs exactly once, with replicas opening the store together', async () => {
    await sql(LEGACY_PARTIAL_STORE);
    const next: StoreMigration[] = [...STORE_MIGRATIONS, {
      version: STORE_MIGRATIONS.length + 1, name: 'test: a plain CREATE TABLE',
      sql: 'CREATE TABLE phigate.step_once (id int PRIMARY KEY); INSERT INTO phigate.step_once VALUES (1);',
    }];
    await Promise.all([openClose(next), openClose(next), openClose(next)]);
    // A second run of the step would have failed (the table exists) and doubled the row.
    await openClose(next);
    expect(await sql('SELECT id FROM phigate.step_once')).toEqual([{ id: 1 }]);
    expect((await meta())['schema_version']).toBe(String(next.length));
    // This phigate's own list now knows less than the store: it refuses, as an older replica would.
    const err = await openClose().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toMatch(new RegExp(`newer phigate \\(schema ${next.length}; this one knows up to ${STORE_SCHEMA_VERSION}\\)`));
  });

  it('a store from a newer phigate is refused before any step runs', async () => {
    await sql(`CREATE SCHEMA phigate; CREATE TABLE phigate.meta (key text PRIMARY KEY, value text NOT NULL);
               INSERT INTO phigate.meta VALUES ('schema_version', '99')`);
    const err = await openClose().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toMatch(/set up by a newer phigate \(schema 99; this one knows up to 1\): upgrade this replica/);
    expect(await tables()).toEqual(['meta']);
    expect(await meta()).toEqual({ schema_version: '99' });
  });
});
