// Two `phigate server` processes sharing one PostgreSQL store (`--store`): a statement held on one
// replica is listed and approved through the other, and runs where it waits (docs/operator.md "Several replicas").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import pg from 'pg';
import { gatewayCli, run, startGateway, type Gw } from '../support/harness.js';
import { pgClient, psql } from '../support/clients.js';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { auditRecords } from '../support/harness.js';
import { scratchDatabase, type ScratchDatabase } from '../support/postgres.js';
import type { ApprovalsReport } from '../../src/cli/commands/approvals.js';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const RULES = `rules:
  - name: phi-writes
    when: { statement: [delete], tables: [rep_patients] }
    action: approve
    approvers: [privacy-officers]
    timeout: 2m
default: allow
masking:
  columns:
    - { column: rep_patients.name, strategy: tokenize }
`;
const DB = `phigate_replicas_${process.pid}`;

let a: Gw;
let b: Gw;
let admin: pg.Client;
let scratch: ScratchDatabase;
let storeUrl: string;
let storeEnv: NodeJS.ProcessEnv;
let keyFile: string;

beforeAll(async () => {
  const info = inject('pg');
  scratch = await scratchDatabase(info, DB);
  // The password travels in PGPASSWORD, as an operator would keep it out of the command line.
  storeUrl = scratch.urlWithoutPassword;
  storeEnv = { PGPASSWORD: scratch.password };
  // One tokenization key for both, as a mounted secret would be.
  keyFile = join(mkdtempSync(join(tmpdir(), 'phigate-key-')), 'token.key');
  writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  const shared = ['--store', storeUrl, '--masking-key-file', keyFile];
  a = await startGateway({ policy: RULES, serverArgs: shared, serverEnv: storeEnv });
  b = await startGateway({ policy: RULES, serverArgs: shared, serverEnv: storeEnv, idp: a.idp });
  admin = new pg.Client({ host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password, database: 'ehr' });
  await admin.connect();
  await admin.query('DROP TABLE IF EXISTS rep_patients; CREATE TABLE rep_patients (id int, name text); GRANT ALL ON rep_patients TO PUBLIC');
  await admin.query("INSERT INTO rep_patients VALUES (1, 'Ada'), (2, 'Grace')");
});

afterAll(async () => {
  await admin?.query('DROP TABLE IF EXISTS rep_patients').catch(() => {});
  await admin?.end();
  await b?.close();
  await a?.close();
  await a?.idp.close();
  if (keyFile) rmSync(dirname(keyFile), { recursive: true, force: true });
  await scratch?.drop();
});

const cli = gatewayCli;

describe('replicas sharing a store', () => {
  it('a DELETE held on replica A is listed and approved on replica B, then runs on A', async () => {
    const { port } = await a.connect('ehr', await a.token('alice'));
    // By id: alice sees names as tokens, and a write may not filter on a masked column's raw value.
    const held = psql(port, ['-c', 'DELETE FROM rep_patients WHERE id = 2'], { timeoutMs: 60_000 });

    let id: string | undefined;
    const until = Date.now() + 20_000;
    while (!id && Date.now() < until) {
      const r = await cli(b, 'bob', ['approvals', '--json']);
      expect(r.code).toBe(0);
      id = (JSON.parse(r.stdout) as ApprovalsReport).approvals.find((x) => x.rule === 'phi-writes' && x.statement.startsWith('DELETE FROM rep_patients'))?.id;
      if (!id) await new Promise((res) => setTimeout(res, 200));
    }
    expect(id).toMatch(/^apr-/);
    expect((await admin.query('SELECT count(*)::int AS n FROM rep_patients')).rows[0].n).toBe(2);

    const ok = await cli(b, 'bob', ['approve', id!, '--reason', 'erasure request 9']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const r = await held;
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('DELETE 1');
    expect((await admin.query('SELECT name FROM rep_patients')).rows).toEqual([{ name: 'Ada' }]);

    // A, where the statement waited, records the decision; deciding again anywhere says who did.
    const decided = auditRecords(a).find((x) => x['type'] === 'approval.decided' && x['approval'] === id);
    expect(decided).toMatchObject({ outcome: 'approved', approver: 'bob', reason: 'erasure request 9' });
    const again = await cli(a, 'olivia', ['approve', id!, '--deny']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(new RegExp(`${id} was already approved by bob`));
  });

  it('evidence written on A is found, listed and replayed through B', async () => {
    // The DELETE above ran on A: B answers from what A shipped to the store (every 200 ms).
    type Found = { chain?: string; sql?: string; decision?: string; session?: string };
    let found: Found | undefined;
    for (let i = 0; i < 50 && !found; i++) {
      const r = await cli(b, 'carol', ['audit', 'search', '--table', 'rep_patients', '--type', 'statement', '--json']);
      expect(r.stderr).toBe('');
      found = (JSON.parse(r.stdout) as { records: Found[] }).records.find((x) => x.sql?.startsWith('DELETE FROM rep_patients'));
      if (!found) await new Promise((res) => setTimeout(res, 200));
    }
    expect(found).toMatchObject({ decision: 'approved', chain: expect.stringMatching(/^ed25519:/) });
    expect(found!.sql).not.toContain('Grace');
    const session = found!.session!;
    // The session's end (with its recording's seal) is shipped once psql has gone away.
    type Ended = { session: string; ended_at?: string };
    let ended: Ended | undefined;
    for (let i = 0; i < 50 && !ended?.ended_at; i++) {
      const r = await cli(b, 'carol', ['sessions', '--user', 'alice', '--json']);
      ended = (JSON.parse(r.stdout) as { sessions: Ended[] }).sessions.find((x) => x.session === session);
      if (!ended?.ended_at) await new Promise((res) => setTimeout(res, 200));
    }
    expect(ended?.ended_at).toBeTruthy();
    const replay = await cli(b, 'carol', ['replay', session.slice(0, 8), '--json']);
    expect(replay.stderr).toBe('');
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('DELETE FROM rep_patients');
    expect(replay.stdout).not.toContain('Grace');
    // B's own records of these evidence reads are searchable through A in turn.
    let seen = false;
    for (let i = 0; i < 50 && !seen; i++) {
      const r = await cli(a, 'carol', ['audit', 'search', '--type', 'replay', '--json']);
      seen = (JSON.parse(r.stdout) as { records: { session?: string; chain?: string }[] }).records.some((x) => x.session === session && x.chain !== found!.chain);
      if (!seen) await new Promise((res) => setTimeout(res, 200));
    }
    expect(seen).toBe(true);

    const verified = await cli(b, 'carol', ['audit', 'verify', '--json']);
    expect(verified.code).toBe(0);
    const report = JSON.parse(verified.stdout) as { ok: boolean; replicas: { chain: string; own: boolean; ok: boolean; records: number }[] };
    expect(report.ok).toBe(true);
    expect(report.replicas).toHaveLength(2);
    expect(report.replicas.every((c) => c.ok && c.records > 0)).toBe(true);
    expect(report.replicas.find((c) => !c.own)?.chain).toBe(found!.chain);
    const text = await cli(b, 'carol', ['audit', 'verify']);
    expect(text.stdout).toMatch(/shared store {2}2 replica chains/);
    expect(text.stdout).toMatch(/\(this replica\) .*: intact/);
    // A's chain exported through B: the same bundle A would give, verifying offline.
    const bundle = join(b.dir, 'replica-a.ndjson');
    const exported = await cli(b, 'carol', ['audit', 'export', '--replica', found!.chain!, '--out', bundle]);
    expect(exported.code).toBe(0);
    const checked = await cli(b, 'carol', ['audit', 'verify', '--bundle', bundle, '--json']);
    expect(checked.code).toBe(0);
    expect(JSON.parse(checked.stdout)).toMatchObject({ ok: true, key: found!.chain });
    expect(readFileSync(bundle, 'utf8')).toContain('DELETE FROM rep_patients');
    const nowhere = await cli(b, 'carol', ['audit', 'export', '--replica', 'ed25519:0000000000000000']);
    expect(nowhere.code).not.toBe(0);
    expect(nowhere.stderr).toMatch(/no replica chain ed25519:0000000000000000 in the shared store/);
    const health = await (await fetch(`${a.url}/healthz`)).json() as { evidence_shipping?: { chain: string; failing: boolean } };
    expect(health.evidence_shipping).toMatchObject({ chain: found!.chain, failing: false });
  });

  it('just-in-time access asked on A and approved on B holds on both; each ends its own sessions on expiry', async () => {
    const asked = run(['connect', 'ehr-jit', '--server', a.url, '--reason', 'ticket 12', '--duration', '15s'], { PHIGATE_TOKEN: await a.token('jitbot') });
    let id: string | undefined;
    for (let i = 0; i < 100 && !id; i++) {
      const r = await cli(b, 'bob', ['approvals', '--json']);
      id = (JSON.parse(r.stdout) as ApprovalsReport).approvals.find((x) => x.kind === 'access' && x.status === 'pending')?.id;
      if (!id) await new Promise((res) => setTimeout(res, 100));
    }
    expect(id).toMatch(/^apr-/);
    // B has no tunnel for jitbot before the approval.
    const early = run(['connect', 'ehr-jit', '--server', b.url], { PHIGATE_TOKEN: await b.token('jitbot') });
    expect((await early.exited).code).toBe(2);
    expect(early.stderr()).toMatch(/must be approved by privacy-officers first/);

    expect((await cli(b, 'bob', ['approve', id!, '--reason', 'ticket 4'])).code).toBe(0);
    const portA = Number((await asked.waitFor(/port=(\d+)/))[1]);
    expect((await psql(portA, ['-tA', '-c', 'select 1'])).stdout.trim()).toBe('1');

    // A tunnel that lands on B (a load balancer's choice) finds the grant, and B answers for the request.
    const viaB = run(['connect', 'ehr-jit', '--server', b.url], { PHIGATE_TOKEN: await b.token('jitbot') });
    const portB = Number((await viaB.waitFor(/port=(\d+)/))[1]);
    expect(viaB.stderr()).toMatch(/access to "ehr-jit" granted by bob until /);
    const st = await fetch(`${b.url}/v1/access-requests/${id}`, { headers: { authorization: `Bearer ${await b.token('jitbot')}` } });
    expect(await st.json()).toMatchObject({ id, status: 'approved', approver: 'bob' });
    const other = await fetch(`${b.url}/v1/access-requests/${id}`, { headers: { authorization: `Bearer ${await b.token('alice')}` } });
    expect(other.status).toBe(404);

    const longA = psql(portA, ['-c', 'select pg_sleep(45)'], { timeoutMs: 55_000 });
    const longB = psql(portB, ['-c', 'select pg_sleep(45)'], { timeoutMs: 55_000 });
    for (const r of await Promise.all([longA, longB])) {
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`access to "ehr-jit" expired at .* \\(grant ${id}\\)`));
    }
    const after = await psql(portB, ['-c', 'select 1']);
    expect(after.stderr).toMatch(/needs approved access to "ehr-jit" first/);
    await asked.stop();
    await viaB.stop();
  });

  it('with one --masking-key-file, tokenized values are equal on every replica', async () => {
    const viaA = await psql((await a.connect('ehr', await a.token('alice'))).port, ['-tA', '-c', 'SELECT name FROM rep_patients WHERE id = 1']);
    const viaB = await psql((await b.connect('ehr', await b.token('alice'))).port, ['-tA', '-c', 'SELECT name FROM rep_patients WHERE id = 1']);
    expect(viaA.stdout.trim()).not.toContain('Ada');
    expect(viaA.stdout.trim()).not.toBe('');
    expect(viaB.stdout.trim()).toBe(viaA.stdout.trim());

    chmodSync(keyFile, 0o644);
    const loose = run(['server', '--config', a.policyFile, '--listen', '127.0.0.1:0', '--data-dir', `${a.dir}/loose`, '--masking-key-file', keyFile]);
    expect((await loose.exited).code).toBe(1);
    expect(loose.stderr()).toMatch(/cannot use --masking-key-file: .*token\.key is readable by others; run: chmod 600/);
    chmodSync(keyFile, 0o600);
  });

  it('policy apply on A is in force on B at once; applying the old one through B restores both', async () => {
    const original = readFileSync(a.policyFile, 'utf8');
    const blocking = join(a.dir, 'no-reads.yaml');
    writeFileSync(blocking, original.replace('rules:\n', 'rules:\n  - name: no-reads\n    when: { statement: [select], tables: [rep_patients] }\n    action: block\n'));
    const portB = (await b.connect('ehr', await b.token('alice'))).port;
    const read = async (port: number): Promise<string> => {
      const r = await psql(port, ['-tA', '-c', 'SELECT count(*) FROM rep_patients']);
      return r.code === 0 ? r.stdout.trim() : r.stderr;
    };
    expect(await read(portB)).toMatch(/^\d+$/);
    const applied = await cli(a, 'root', ['policy', 'apply', blocking]);
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toMatch(/^activated sha256:[0-9a-f]{64} \(published to every replica\)$/m);
    let onB = '';
    for (let i = 0; i < 50 && !/no-reads/.test(onB); i++) {
      onB = await read(portB);
      if (!/no-reads/.test(onB)) await new Promise((res) => setTimeout(res, 100));
    }
    expect(onB).toMatch(/no-reads/);
    const history = JSON.parse((await cli(b, 'root', ['policy', 'history', '--json'])).stdout) as { history: { source: string; by?: string }[] };
    expect(history.history[0]).toMatchObject({ source: 'replica', by: 'root' });

    const back = join(a.dir, 'original.yaml');
    writeFileSync(back, original);
    expect((await cli(b, 'root', ['policy', 'apply', back])).code).toBe(0);
    const portA = (await a.connect('ehr', await a.token('alice'))).port;
    let onA = '';
    for (let i = 0; i < 50 && !/^\d+$/.test(onA); i++) {
      onA = await read(portA);
      if (!/^\d+$/.test(onA)) await new Promise((res) => setTimeout(res, 100));
    }
    expect(onA).toMatch(/^\d+$/);
    expect(await read(portB)).toMatch(/^\d+$/);
  });

  it("psql's cancel reaches the statement when its tunnel lands on the other replica", async () => {
    const client = pgClient((await a.connect('ehr', await a.token('alice'))).port);
    await client.connect();
    const key = client as unknown as { processID: number; secretKey: number };
    const portB = (await b.connect('ehr', await b.token('alice'))).port;
    const sleeping = client.query('SELECT pg_sleep(30)').then(() => undefined, (e: { code?: string }) => e);
    await new Promise((r) => setTimeout(r, 500));
    // What psql sends on Ctrl-C: a CancelRequest with the key it got, on a new connection (here through B).
    const cancel = Buffer.alloc(16);
    cancel.writeInt32BE(16, 0);
    cancel.writeInt32BE(80877102, 4);
    cancel.writeInt32BE(key.processID, 8);
    cancel.writeInt32BE(key.secretKey, 12);
    await new Promise<void>((resolve, reject) => {
      const sock = connect(portB, '127.0.0.1', () => sock.write(cancel));
      sock.on('close', () => resolve()).on('error', reject);
    });
    const err = await sleeping;
    expect(err).toMatchObject({ code: '57014' });
    await client.end();
  });

  it("an approver's live view is told to start over when its replica may have missed updates", async () => {
    const ws = new WebSocket(`${b.url.replace('http', 'ws')}/v1/approvals/stream`, { headers: { authorization: `Bearer ${await b.token('bob')}` } });
    const first = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))));
    expect(JSON.parse(await first)).toMatchObject({ type: 'snapshot' });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    // Cut the replicas' notification connections: on reconnecting they re-read, and views start over.
    await scratch.admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'phigate-store-listen'", [DB]);
    expect(await closed).toEqual({ code: 4409, reason: 'updates may have been missed; reconnect for a fresh list' });
  });

  it('a server whose store cannot be opened does not start, and says why without the password', async () => {
    const bad = run(['server', '--config', a.policyFile, '--listen', '127.0.0.1:0', '--data-dir', `${a.dir}/other`,
      '--store', storeUrl.replace(`/${DB}`, '/no_such_db')], { ...storeEnv });
    const { code } = await bad.exited;
    expect(code).toBe(1);
    expect(bad.stderr()).toMatch(/cannot open the shared store at postgres:\/\/.*no_such_db: .*does not exist/);
    expect(bad.stderr()).not.toContain(String(storeEnv['PGPASSWORD']));
    const usage = run(['server', '--config', a.policyFile, '--store', 'mysql://x@y/z']);
    expect((await usage.exited).code).toBe(2);
    expect(usage.stderr()).toMatch(/--store must be a postgres:\/\/ URL/);
  });
});

describe('when the shared store is unreachable', () => {
  it('statements needing an approval are refused, others run; evidence reads answer 503; all recover', async () => {
    const gate = async (allow: boolean): Promise<void> => {
      await scratch.admin.query(`ALTER DATABASE ${DB} ALLOW_CONNECTIONS ${allow}`);
      if (!allow) await scratch.admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [DB]);
    };
    const { port } = await a.connect('ehr', await a.token('alice'));
    await gate(false);
    try {
      const held = await psql(port, ['-c', 'DELETE FROM rep_patients WHERE id = 1'], { timeoutMs: 30_000 });
      expect(held.code).not.toBe(0);
      expect(held.stderr).toMatch(/could not be stored/);
      expect((await psql(port, ['-tA', '-c', 'SELECT 1'])).stdout.trim()).toBe('1');
      const search = await cli(b, 'carol', ['audit', 'search', '--limit', '1']);
      expect(search.code).not.toBe(0);
      expect(search.stderr).toMatch(/shared store is unavailable/);
      expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
    } finally {
      await gate(true);
    }
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = (await cli(b, 'carol', ['audit', 'search', '--limit', '1'])).code === 0;
      if (!ok) await new Promise((r) => setTimeout(r, 200));
    }
    expect(ok).toBe(true);
  });
});
