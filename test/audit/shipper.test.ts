// Evidence shipped to the shared store (`--store`): two replicas' logs (two data directories, two
// checkpoint keys) shipped to one real PostgreSQL, then searched there. The store's answers must be
// the local logs' answers, merged newest first; only records already on disk are shipped; shipping
// resumes where it stopped; sealed recordings go along with their session's end.
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { AuditLog } from '../../src/audit/log.js';
import { searchAudit, listSessions, type SearchFilters } from '../../src/audit/search.js';
import { SharedEvidence } from '../../src/audit/shared-evidence.js';
import { verifySharedChains } from '../../src/audit/shared-verify.js';
import { planSharedExport } from '../../src/audit/shared-export.js';
import { exportBundleToFile, verifyBundle, writeBundle } from '../../src/audit/export.js';
import { policyVersion } from '../../src/policy/version.js';
import { AuditShipper } from '../../src/audit/shipper.js';
import { keyFingerprint } from '../../src/audit/keys.js';
import { SharedDatabase } from '../../src/store/shared-db.js';
import { silentLogger } from '../../src/common/log.js';
import { recordingFileName } from '../../src/recording/format.js';
import { statementEvent, tempDir } from './helpers.js';
import { scratchDatabase, type ScratchDatabase } from '../support/postgres.js';

const DB = `phigate_evidence_${process.pid}`;
let scratch: ScratchDatabase;
let db: SharedDatabase;

beforeAll(async () => {
  scratch = await scratchDatabase(inject('pg'), DB);
  db = await SharedDatabase.open(scratch.url);
});

afterAll(async () => {
  await db?.close();
  await scratch?.drop();
});

interface Replica {
  dir: string;
  log: AuditLog;
  shipper: AuditShipper;
  key: ReturnType<typeof generateKeyPairSync>['privateKey'];
  cleanup(): Promise<void>;
}

async function replica(opts: { syncIntervalMs?: number; dir?: string; key?: Replica['key'] } = {}): Promise<Replica> {
  const t = opts.dir ? { dir: opts.dir, cleanup: () => {} } : tempDir('phigate-ship-');
  const key = opts.key ?? generateKeyPairSync('ed25519').privateKey;
  mkdirSync(join(t.dir, 'recordings'), { recursive: true });
  mkdirSync(join(t.dir, 'policies'), { recursive: true });
  const log = AuditLog.open(join(t.dir, 'audit'), { signingKey: key, syncIntervalMs: opts.syncIntervalMs ?? 5 });
  const shipper = new AuditShipper({
    db, log, signingKey: key, recordingsDir: join(t.dir, 'recordings'), policiesDir: join(t.dir, 'policies'), logger: silentLogger, intervalMs: 60_000,
  });
  await shipper.start();
  return {
    dir: t.dir, log, shipper, key,
    async cleanup() {
      await log.close();
      await shipper.stop();
      t.cleanup();
    },
  };
}

async function storeLines(chain: string): Promise<string[]> {
  const r = await db.query('SELECT line FROM phigate.audit_records WHERE chain = $1 ORDER BY seq', [chain]);
  return (r.rows as { line: string }[]).map((x) => x.line);
}

function localLines(dir: string): string[] {
  return readFileSync(join(dir, 'audit', 'audit.jsonl'), 'utf8').trim().split('\n');
}

/** Two fresh replicas, and a store holding nothing else (earlier tests shipped to it too). */
async function twoReplicasOnAnEmptyStore(): Promise<[Replica, Replica]> {
  await db.query('TRUNCATE phigate.audit_records, phigate.audit_chains, phigate.audit_checkpoints, phigate.recordings');
  return [await replica(), await replica()];
}

/** What a running replica does on its own: sync and sign its log (indexed for local searches), then ship it. */
async function signAndShip(...replicas: Replica[]): Promise<void> {
  for (const r of replicas) {
    await r.log.checkpoint();
    r.log.flushIndex();
    await r.shipper.flush();
  }
}

/** Writes a session's recording and appends its session.end record sealing it, as a session does when it ends. */
function endSealed(r: Replica, session: string, user: string, statements: number): void {
  const recording = `{"type":"header","session":"${session}"}\n`;
  writeFileSync(join(r.dir, 'recordings', recordingFileName(session)), recording);
  r.log.append({ type: 'session.end', session, user, connection: 'ehr', duration_ms: 5, statements, bytes_in: 1, bytes_out: 2,
    recording: { sha256: createHash('sha256').update(recording).digest('hex'), file: recordingFileName(session) } });
}

describe('AuditShipper', () => {
  it('ships the log byte for byte, only what is on disk, and resumes where it stopped', async () => {
    const a = await replica({ syncIntervalMs: 60_000 });
    const chain = keyFingerprint(a.key);
    for (let i = 0; i < 20; i++) a.log.append(statementEvent(i));
    // Written but not yet fsynced: not shipped (a crash could still lose it locally).
    await a.shipper.flush();
    expect(await storeLines(chain)).toEqual([]);
    await a.log.checkpoint();
    await a.shipper.flush();
    expect(await storeLines(chain)).toEqual(localLines(a.dir));
    const cps = await db.query('SELECT seq FROM phigate.audit_checkpoints WHERE chain = $1', [chain]);
    expect(cps.rows.map((r: { seq: string }) => Number(r.seq))).toContain(19);
    const key = await db.query('SELECT public_key FROM phigate.audit_chains WHERE chain = $1', [chain]);
    expect(key.rows[0].public_key).toMatch(/BEGIN PUBLIC KEY/);

    // A restart (new log and shipper on the same directory) continues without sending anything twice.
    await a.log.close();
    await a.shipper.stop();
    const again = await replica({ dir: a.dir, key: a.key });
    for (let i = 20; i < 30; i++) again.log.append(statementEvent(i));
    await again.log.checkpoint();
    await again.shipper.flush();
    expect(await storeLines(chain)).toEqual(localLines(a.dir));
    expect(again.shipper.stats()).toMatchObject({ chain, behind: 0, failing: false });
    // Checkpoints too, each once, read from where the last round stopped.
    const localCps = readFileSync(join(a.dir, 'audit', 'checkpoints.jsonl'), 'utf8').trim().split('\n');
    const storeCps = await db.query('SELECT line FROM phigate.audit_checkpoints WHERE chain = $1 ORDER BY seq', [chain]);
    expect(storeCps.rows.map((r: { line: string }) => r.line)).toEqual(localCps);
    await again.cleanup();
  });
});

describe('AuditShipper after a data directory was restored from an older copy', () => {
  it('ships nothing over what the store holds and says why, instead of dropping records', async () => {
    const a = await replica();
    const chain = keyFingerprint(a.key);
    for (let i = 0; i < 10; i++) a.log.append(statementEvent(i));
    await a.log.checkpoint();
    const older = readFileSync(join(a.dir, 'audit', 'audit.jsonl'));
    for (let i = 10; i < 20; i++) a.log.append(statementEvent(i));
    await a.log.checkpoint();
    await a.shipper.flush();
    await a.log.close();
    await a.shipper.stop();
    // The backup with 10 records comes back; the replica goes on writing from record 10.
    rmSync(join(a.dir, 'audit'), { recursive: true, force: true });
    mkdirSync(join(a.dir, 'audit'));
    writeFileSync(join(a.dir, 'audit', 'audit.jsonl'), older);
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (msg: string, f?: Record<string, unknown>) => void warnings.push(`${msg} ${JSON.stringify(f ?? {})}`) };
    const log = AuditLog.open(join(a.dir, 'audit'), { signingKey: a.key, syncIntervalMs: 5 });
    for (let i = 100; i < 105; i++) log.append(statementEvent(i));
    await log.checkpoint();
    const shipper = new AuditShipper({ db, log, signingKey: a.key, recordingsDir: join(a.dir, 'recordings'), logger, intervalMs: 60_000 });
    await shipper.start();
    await expect(shipper.flush()).rejects.toThrow(/holds other records for chain .* \(from record 10\) than this replica's audit log: was its data directory restored/);
    // The store still has the first history, untouched.
    const stored = await db.query('SELECT count(*)::int AS n FROM phigate.audit_records WHERE chain = $1', [chain]);
    expect(stored.rows[0].n).toBe(20);
    expect(warnings.join('\n')).toMatch(/does not match the local audit log where shipping stopped/);
    await log.close();
    await shipper.stop();
    await a.cleanup().catch(() => {});
  });
});

describe('AuditShipper when the store goes away', () => {
  it('keeps the records locally, says it is failing, and catches up when the store is back', async () => {
    const a = await replica();
    const chain = keyFingerprint(a.key);
    const live = new AuditShipper({ db: await SharedDatabase.open(scratch.url), log: a.log, signingKey: a.key, recordingsDir: join(a.dir, 'recordings'), logger: silentLogger, intervalMs: 50 });
    await live.start();
    const gate = async (allow: boolean): Promise<void> => {
      await scratch.admin.query(`ALTER DATABASE ${DB} ALLOW_CONNECTIONS ${allow}`);
      if (!allow) await scratch.admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [DB]);
    };
    try {
      await gate(false);
      for (let i = 0; i < 10; i++) a.log.append(statementEvent(i));
      await a.log.checkpoint();
      for (let i = 0; i < 100 && !live.stats().failing; i++) await new Promise((r) => setTimeout(r, 50));
      expect(live.stats()).toMatchObject({ failing: true, behind: 10 });
    } finally {
      await gate(true);
    }
    // Retries every 5 s while failing; the next round ships everything.
    for (let i = 0; i < 200 && live.stats().failing; i++) await new Promise((r) => setTimeout(r, 50));
    expect(live.stats()).toMatchObject({ failing: false, behind: 0 });
    expect((await db.query('SELECT count(*)::int AS n FROM phigate.audit_records WHERE chain = $1', [chain])).rows[0].n).toBe(10);
    await live.stop();
    await a.cleanup();
  });
});

describe('SharedEvidence', () => {
  it('answers like the local logs, merged newest first across replicas; sessions and recordings from any replica', async () => {
    const [a, b] = await twoReplicasOnAnEmptyStore();
    const events = (r: Replica, base: number, session: string, user: string): void => {
      r.log.append({ type: 'session.start', session, user, subject: `${user}-sub`, issuer: 'https://idp', kind: 'human', connection: 'ehr', client_addr: '127.0.0.1', application_name: 'psql' });
      for (let i = 0; i < 40; i++) r.log.append(statementEvent(base + i, { session, user }));
      endSealed(r, session, user, 40);
    };
    events(a, 0, '11111111-0000-4000-8000-000000000001', 'alice');
    // Enough records that selective searches read the store in several pages.
    for (let i = 0; i < 1200; i++) b.log.append(statementEvent(1000 + i));
    events(b, 100, '22222222-0000-4000-8000-000000000002', 'bob');
    await new Promise((r) => setTimeout(r, 5));
    events(a, 200, '33333333-0000-4000-8000-000000000003', 'alice');
    await signAndShip(a, b);
    const shared = new SharedEvidence(db);
    const filters: SearchFilters[] = [
      {}, { user: 'alice' }, { user: 'bob', limit: 5 }, { table: 'patients' }, { decision: 'block' }, { sql: 'JOIN VISITS' },
      { types: ['session.start', 'session.end'] }, { connection: 'billing', table: 'claims' }, { session: '22222222-0000-4000-8000-000000000002' },
      { limit: 1000 }, { table: 'labs', decision: 'denied', limit: 300 }, { user: 'heidi', sql: 'delete', limit: 10_000 },
      { table: 'PUBLIC.Labs', limit: 10_000 }, { table: 'other.labs' }, { table: 'nowhere' },
    ];
    for (const f of filters) {
      const got = await shared.search(f);
      const local = [...searchAudit(join(a.dir, 'audit'), { ...f, limit: 10_000 }).records.map((r) => ({ ...r, chain: keyFingerprint(a.key) })),
        ...searchAudit(join(b.dir, 'audit'), { ...f, limit: 10_000 }).records.map((r) => ({ ...r, chain: keyFingerprint(b.key) }))]
        .sort((x, y) => (x.at < y.at ? 1 : x.at > y.at ? -1 : x.chain < y.chain ? 1 : x.chain > y.chain ? -1 : y.seq - x.seq));
      const limit = f.limit ?? 100;
      expect(got.records.map((r) => `${r.chain}/${r.seq}`), JSON.stringify(f)).toEqual(local.slice(0, limit).map((r) => `${r.chain}/${r.seq}`));
      expect(got.more, JSON.stringify(f)).toBe(local.length > limit);
    }
    expect(await shared.total()).toBe(a.log.stats().records + b.log.stats().records);

    const s = await shared.sessions({});
    expect(s.sessions.map((x) => x.session)).toEqual([
      '33333333-0000-4000-8000-000000000003', '22222222-0000-4000-8000-000000000002', '11111111-0000-4000-8000-000000000001']);
    const localA = listSessions(join(a.dir, 'audit'), {}).sessions;
    expect(s.sessions.filter((x) => x.user === 'alice')).toEqual(localA);

    const rec = await shared.recording('2222');
    expect(rec).toMatchObject({ session: '22222222-0000-4000-8000-000000000002', chain: keyFingerprint(b.key) });
    expect(rec!.seal).toBe(rec!.sha256);
    expect(rec!.content.toString()).toContain('"header"');
    expect(await shared.recording('9999')).toBeUndefined();
    await a.cleanup();
    await b.cleanup();
  });
});

describe('verifySharedChains', () => {
  it('finds every chain intact, then each kind of tampering in the store', async () => {
    const [a, b] = await twoReplicasOnAnEmptyStore();
    const session = '44444444-0000-4000-8000-000000000004';
    for (let i = 0; i < 30; i++) a.log.append(statementEvent(i));
    endSealed(a, session, 'alice', 0);
    for (let i = 0; i < 12; i++) b.log.append(statementEvent(100 + i));
    await signAndShip(a, b);
    const chainA = keyFingerprint(a.key);
    const chainB = keyFingerprint(b.key);
    const own = { chain: chainA, publicKey: createPublicKey(a.key) };
    const clean = await verifySharedChains(db, own);
    expect(clean.map((c) => [c.chain, c.own, c.ok, c.records, c.unanchored])).toEqual(
      [[chainA, true, true, 31, 0], [chainB, false, true, 12, 0]].sort((x, y) => String(x[0]).localeCompare(String(y[0]))));
    expect(clean.find((c) => c.chain === chainA)!.recordings).toEqual({ checked: 1, failed: 0 });

    const codes = async (chain: string): Promise<string[]> => (await verifySharedChains(db, own)).find((c) => c.chain === chain)!.problems.map((p) => p.code);
    // A value rewritten in place.
    const orig = (await db.query('SELECT line FROM phigate.audit_records WHERE chain = $1 AND seq = 5', [chainB])).rows[0].line as string;
    await db.query('UPDATE phigate.audit_records SET line = $3 WHERE chain = $1 AND seq = $2', [chainB, 5, orig.replace(/"user":"[a-z]+"/, '"user":"mallory"')]);
    expect(await codes(chainB)).toContain('prev');
    await db.query('UPDATE phigate.audit_records SET line = $3 WHERE chain = $1 AND seq = $2', [chainB, 5, orig]);
    expect(await codes(chainB)).toEqual([]);
    // The newest records removed.
    await db.query('DELETE FROM phigate.audit_records WHERE chain = $1 AND seq >= 10', [chainB]);
    expect(await codes(chainB)).toContain('truncated');
    // A replaced public key (to re-sign a rewritten chain) and a swapped recording.
    const other = createPublicKey(generateKeyPairSync('ed25519').privateKey).export({ format: 'pem', type: 'spki' }).toString();
    await db.query('UPDATE phigate.audit_chains SET public_key = $2 WHERE chain = $1', [chainA, other]);
    await db.query('UPDATE phigate.recordings SET content = $2 WHERE session = $1', [session, Buffer.from('{"type":"header"}\n')]);
    const aCodes = await codes(chainA);
    expect(aCodes).toContain('key');
    expect(aCodes).toContain('recording');
    await a.cleanup();
    await b.cleanup();
  });
});

describe('planSharedExport', () => {
  it("gives the same bundle from the store as the replica's own export, which verifies offline with its key", async () => {
    const [a, b] = await twoReplicasOnAnEmptyStore();
    // A round before the policy exists: its text must go along with its policy.activated record later.
    await b.shipper.flush();
    const policyText = 'version: 1\n# the policy in force\nconnections: {}\n';
    const version = policyVersion(policyText);
    writeFileSync(join(b.dir, 'policies', `${version.slice('sha256:'.length)}.yaml`), policyText);
    b.log.append({ type: 'policy.activated', policy: version, source: 'startup' });
    // More than one page of the store (5,000 lines) before the cut.
    for (let i = 0; i < 5100; i++) b.log.append(statementEvent(i, { policy: version }));
    for (let i = 0; i < 10; i++) a.log.append(statementEvent(5000 + i));
    const cut = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 5100; i < 5200; i++) b.log.append(statementEvent(i, { policy: version }));
    await signAndShip(a, b);
    const chainB = keyFingerprint(b.key);
    for (const range of [{}, { until: cut }, { since: cut }]) {
      const fromStore = join(b.dir, 'store.ndjson');
      const out = createWriteStream(fromStore);
      await writeBundle((await planSharedExport(db, chainB, range))!, out);
      await new Promise<void>((r) => out.end(() => r()));
      const local = join(b.dir, 'local.ndjson');
      await exportBundleToFile(join(b.dir, 'audit'), local, { ...range, policiesDir: join(b.dir, 'policies') });
      const body = (f: string): string[] => readFileSync(f, 'utf8').trim().split('\n').slice(1);
      expect(body(fromStore), JSON.stringify(range)).toEqual(body(local));
      const report = await verifyBundle(fromStore, { publicKey: createPublicKey(b.key) });
      expect(report.problems, JSON.stringify(range)).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.policies).toBe(1);
    }
    expect(await planSharedExport(db, 'ed25519:0000000000000000')).toBeUndefined();
    await a.cleanup();
    await b.cleanup();
  });
});
