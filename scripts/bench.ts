// `npm run bench`: measures phigate against a direct connection in the same run, on this machine.
// Data path: pgbench -S (select-only) with 1 and 8 clients, direct vs through `phigate connect` →
// `phigate server`; prints TPS, mean latency, the ratio, and the gateway's CPU per transaction.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPostgres } from '../test/support/postgres.js';
import { startTestIdp } from '../test/support/oidc.js';
import { run, type Proc } from '../test/support/proc.js';
import { benchDecisions } from './bench-decisions.js';
import { runAuditBench } from './bench-audit.js';

const MASK_ROWS = Number(process.env['BENCH_MASK_ROWS'] ?? 1_000_000);
const BENCH_PATIENTS_SQL = `DROP TABLE IF EXISTS bench_patients;
CREATE TABLE bench_patients AS
SELECT g AS id, 'MRN-' || lpad((10000000 + g)::text, 8, '0') AS mrn, 'Name' || g || ' Person' AS full_name,
       lpad((100 + g % 565)::text, 3, '0') || '-' || lpad((10 + g % 89)::text, 2, '0') || '-' || lpad((1000 + g % 8999)::text, 4, '0') AS ssn,
       date '1940-01-01' + (g % 29000) AS date_of_birth, 'City' || (g % 100) AS city, g % 7 AS visits
FROM generate_series(1, ${MASK_ROWS}) g;`;

async function timed(f: () => Promise<{ code: number | null; stderr: string }>): Promise<number> {
  const t = process.hrtime.bigint();
  const r = await f();
  if (r.code !== 0) throw new Error(`psql failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
}

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 2);
const SCALE = Number(process.env['BENCH_SCALE'] ?? 10);
// BENCH_ONLY=decisions,pgbench,masking,evidence,stall runs just those sections (all by default).
const ONLY = new Set((process.env['BENCH_ONLY'] ?? 'decisions,pgbench,masking,evidence,stall').split(',').map((s) => s.trim()));
/** stall: the size of each large statement, and how many are sent. */
const STALL_BYTES = Number(process.env['BENCH_STALL_BYTES'] ?? 900 * 1024);
const STALL_COUNT = Number(process.env['BENCH_STALL_COUNT'] ?? 4);
// BENCH_STORE=1: the gateway runs with --store (a database on the same PostgreSQL), so evidence
// shipping is part of what is measured.
const STORE = process.env['BENCH_STORE'] === '1';
// BENCH_PROF_DIR: the gateway and the CLI write V8 CPU profiles there when they exit.
const PROF_DIR = process.env['BENCH_PROF_DIR'];
const nodeArgs = PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : [];

interface PgbenchResult {
  tps: number;
  latencyMs: number;
  transactions: number;
}

function sh(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const p = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    p.once('error', rej);
    p.once('exit', (code) => res({ code, stdout, stderr }));
  });
}

async function pgbench(host: string, port: number, user: string, clients: number, env: NodeJS.ProcessEnv): Promise<PgbenchResult> {
  const r = await sh('pgbench', ['-n', '-S', '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(SECONDS),
    '-h', host, '-p', String(port), '-U', user, 'ehr'], env);
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout);
  const lat = /latency average = ([\d.]+) ms/.exec(r.stdout);
  const tx = /number of transactions actually processed: (\d+)/.exec(r.stdout);
  if (r.code !== 0 || !tps || !lat || !tx) throw new Error(`pgbench failed (${r.code}): ${r.stdout}\n${r.stderr}`);
  return { tps: Number(tps[1]), latencyMs: Number(lat[1]), transactions: Number(tx[1]) };
}

/** utime + stime of a process, in microseconds. */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1_000_000) / 100; // USER_HZ is 100 on Linux
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

async function main(): Promise<void> {
  if (ONLY.has('decisions')) await benchDecisions();
  process.stdout.write(`phigate bench: pgbench -S, scale ${SCALE}, ${SECONDS}s per run, best of ${ROUNDS} rounds, ${process.version}\n`);
  const db = await startTestPostgres();
  const idp = await startTestIdp({ identities: { alice: ['engineering'] } });
  const dir = mkdtempSync(join(tmpdir(), 'phigate-bench-'));
  const procs: Proc[] = [];
  try {
    const role = db.info.roles.scram;
    const pgEnv = { PGPASSWORD: role.password, PGSSLMODE: 'disable' };
    const init = await sh('pgbench', ['-i', '-q', '-s', String(SCALE), '-h', db.info.host, '-p', String(db.info.port), '-U', role.user, 'ehr'], pgEnv);
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    const policy = join(dir, 'phigate.yaml');
    writeFileSync(policy, `version: 1
identity:
  issuers:
    - issuer: ${idp.issuer}
      audience: phigate
connections:
  ehr:
    upstream: postgres://${role.user}@${db.info.host}:${db.info.port}/${db.info.database}
    password_env: EHR_DB_PASSWORD
    tls: disable
    allow_groups: [engineering]
masking:
  columns:
    - { column: bench_patients.ssn, strategy: partial, keep_last: 4 }
    - { column: bench_patients.mrn, strategy: tokenize }
    - { column: bench_patients.full_name, strategy: redact }
    - { column: bench_patients.date_of_birth, strategy: year_only }
  detectors: [us_ssn, email]
`);
    const seed = !ONLY.has('masking') ? { code: 0, stderr: '' } : await sh('psql', ['-X', '-q', '-h', db.info.host, '-p', String(db.info.port), '-U', role.user, '-d', 'ehr', '-c', BENCH_PATIENTS_SQL], pgEnv);
    if (seed.code !== 0) throw new Error(`seeding bench_patients failed: ${seed.stderr}`);
    const storeArgs: string[] = [];
    if (STORE) {
      const su = db.info.superuser;
      const made = await sh('psql', ['-X', '-q', '-h', db.info.host, '-p', String(db.info.port), '-U', su.user, '-d', 'postgres', '-c', 'CREATE DATABASE phigate_bench_store'],
        { PGPASSWORD: su.password, PGSSLMODE: 'disable' });
      if (made.code !== 0) throw new Error(`creating the store database failed: ${made.stderr}`);
      storeArgs.push('--store', `postgres://${encodeURIComponent(su.user)}:${encodeURIComponent(su.password)}@${db.info.host}:${db.info.port}/phigate_bench_store`);
      process.stdout.write('  (gateway with --store: evidence shipped to PostgreSQL)\n');
    }
    // The gateway samples its own event-loop delay (loop-delay.ts), printed on SIGUSR2.
    const loopDelay = fileURLToPath(new URL('./loop-delay.js', import.meta.url));
    const server = run(['server', '--config', policy, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'), '--log-level', 'warn', ...storeArgs],
      { EHR_DB_PASSWORD: role.password }, { nodeArgs: [...nodeArgs, '--import', loopDelay] });
    procs.push(server);
    const serverUrl = (await server.waitFor(/listening on (http:\/\/[\d.]+:\d+)/))[1]!;
    const connect = run(['connect', 'ehr', '--server', serverUrl], { PHIGATE_TOKEN: await idp.mint('alice') }, { nodeArgs });
    procs.push(connect);
    const gwPort = Number((await connect.waitFor(/Listening on 127\.0\.0\.1:(\d+)/))[1]);

    const rows: string[] = [];
    const summary: Record<string, number> = {};
    for (const clients of ONLY.has('pgbench') ? [1, 8] : []) {
      let direct: PgbenchResult | undefined;
      let via: PgbenchResult | undefined;
      let cpuServer = Infinity;
      let cpuClient = Infinity;
      for (let round = 0; round < ROUNDS; round++) {
        const d = await pgbench(db.info.host, db.info.port, role.user, clients, pgEnv);
        if (!direct || d.tps > direct.tps) direct = d;
        const s0 = cpuMicros(server.proc.pid!);
        const c0 = cpuMicros(connect.proc.pid!);
        const g = await pgbench('127.0.0.1', gwPort, 'alice', clients, { PGSSLMODE: 'disable' });
        cpuServer = Math.min(cpuServer, (cpuMicros(server.proc.pid!) - s0) / g.transactions);
        cpuClient = Math.min(cpuClient, (cpuMicros(connect.proc.pid!) - c0) / g.transactions);
        if (!via || g.tps > via.tps) via = g;
      }
      const ratio = via!.tps / direct!.tps;
      summary[`tps_ratio_${clients}`] = ratio;
      rows.push(
        `${String(clients).padStart(7)}  ${fmt(direct!.tps).padStart(10)}  ${fmt(via!.tps).padStart(10)}  ${fmt(ratio, 2).padStart(5)}x` +
          `  ${fmt(direct!.latencyMs, 3).padStart(8)}  ${fmt(via!.latencyMs, 3).padStart(8)}  ${fmt(via!.latencyMs - direct!.latencyMs, 3).padStart(8)}` +
          `  ${fmt(cpuServer, 0).padStart(6)}  ${fmt(cpuClient, 0).padStart(6)}`,
      );
    }
    if (rows.length > 0) {
      process.stdout.write('\nData path (pgbench -S, simple protocol; latency in ms; CPU in us per transaction)\n');
      process.stdout.write('clients  direct TPS  phigate TPS  ratio  direct ms  phigate ms  added ms  srv CPU  cli CPU\n');
      for (const r of rows) process.stdout.write(`${r}\n`);
    }
    if (ONLY.has('masking')) {
      /** One big SELECT through psql to /dev/null, direct vs phigate (best of ROUNDS), and the gateway's and CLI's CPU. */
      const bigSelect = async (key: string, title: string, sql: string, rows: number): Promise<void> => {
        const run = (host: string, port: number, user: string, env: NodeJS.ProcessEnv) =>
          timed(() => sh('psql', ['-X', '-At', '-o', '/dev/null', '-h', host, '-p', String(port), '-U', user, '-d', 'ehr', '-c', sql], env));
        let directS = Infinity;
        let viaS = Infinity;
        let cpuServer = Infinity;
        let cpuClient = Infinity;
        for (let round = 0; round < ROUNDS; round++) {
          directS = Math.min(directS, await run(db.info.host, db.info.port, role.user, pgEnv));
          const s0 = cpuMicros(server.proc.pid!);
          const c0 = cpuMicros(connect.proc.pid!);
          viaS = Math.min(viaS, await run('127.0.0.1', gwPort, 'alice', { PGSSLMODE: 'disable' }));
          cpuServer = Math.min(cpuServer, cpuMicros(server.proc.pid!) - s0);
          cpuClient = Math.min(cpuClient, cpuMicros(connect.proc.pid!) - c0);
        }
        summary[key] = directS / viaS;
        process.stdout.write(`\n${title}\n`);
        process.stdout.write(`  direct   ${fmt(rows / directS).padStart(10)} rows/s  (${directS.toFixed(2)} s)\n`);
        process.stdout.write(`  phigate  ${fmt(rows / viaS).padStart(10)} rows/s  (${viaS.toFixed(2)} s)  ratio ${fmt(directS / viaS, 2)}x\n`);
        process.stdout.write(`  CPU per row: gateway ${fmt((cpuServer * 1000) / rows)} ns, CLI ${fmt((cpuClient * 1000) / rows)} ns\n`);
      };
      await bigSelect('masked_rows_ratio', `Masking (SELECT * FROM bench_patients: ${fmt(MASK_ROWS)} rows, 4 masked columns + detectors; psql to /dev/null)`,
        'SELECT * FROM bench_patients', MASK_ROWS);
      // The common case: a table without masked columns, every text value still scanned by the detectors.
      await bigSelect('detector_rows_ratio', `Detectors only (SELECT * FROM pgbench_accounts: ${fmt(SCALE * 100_000)} rows, no masked column, a text column scanned)`,
        'SELECT * FROM pgbench_accounts', SCALE * 100_000);
    }
    if (ONLY.has('stall')) {
      let reads = 0;
      /** The gateway's event-loop delay since the previous call. */
      const loopStats = async (): Promise<{ max_ms: number; p99_ms: number; mean_ms: number }> => {
        server.proc.kill('SIGUSR2');
        const m = await server.waitFor(new RegExp(`loop-delay#${++reads} (\\{.*\\})`));
        return JSON.parse(m[1]!) as { max_ms: number; p99_ms: number; mean_ms: number };
      };
      const client = async (): Promise<pg.Client> => {
        const c = new pg.Client({ host: '127.0.0.1', port: gwPort, user: 'alice', database: 'ehr' });
        await c.connect();
        return c;
      };
      const [big, small] = await Promise.all([client(), client()]);
      // Small statements alone for a while, then again while the other client sends large ones.
      const smallFor = async (until: () => boolean): Promise<{ n: number; seconds: number; maxMs: number }> => {
        const t0 = process.hrtime.bigint();
        let n = 0;
        let maxMs = 0;
        while (!until()) {
          const t = process.hrtime.bigint();
          await small.query('SELECT 1');
          maxMs = Math.max(maxMs, Number(process.hrtime.bigint() - t) / 1e6);
          n++;
        }
        return { n, seconds: Number(process.hrtime.bigint() - t0) / 1e9, maxMs };
      };
      const ids: number[] = [];
      for (let i = 1, len = 0; len < STALL_BYTES; i++, len += String(i).length + 1) ids.push(i);
      // A different text each time (as an application's literals differ): no cache answers it.
      const largeSql = (i: number): string => `SELECT count(*) + ${i} FROM pgbench_branches WHERE bid IN (${ids.join(',')})`;
      // Warm-up (JIT, first connections, the analysis worker's start), not measured.
      for (let i = 0; i < 500; i++) await small.query('SELECT 1');
      await big.query(largeSql(-1));
      await loopStats();
      const quietEnd = Date.now() + 3000;
      const alone = await smallFor(() => Date.now() > quietEnd);
      const quiet = await loopStats();
      let done = false;
      const t0 = process.hrtime.bigint();
      const sending = (async () => {
        for (let i = 0; i < STALL_COUNT; i++) await big.query(largeSql(i));
      })().finally(() => (done = true));
      const beside = await smallFor(() => done);
      await sending;
      const largeS = Number(process.hrtime.bigint() - t0) / 1e9;
      const loaded = await loopStats();
      await Promise.all([big.end(), small.end()]);
      summary['stall_max_ms'] = loaded.max_ms;
      summary['stall_small_tps_ratio'] = beside.n / beside.seconds / (alone.n / alone.seconds);
      process.stdout.write(`\nEvent-loop stall (one client sends ${STALL_COUNT} statements of ${fmt(STALL_BYTES / 1024)} KiB, another SELECT 1 in a loop)\n`);
      process.stdout.write(`  gateway event-loop delay, small statements alone: max ${quiet.max_ms} ms, p99 ${quiet.p99_ms} ms\n`);
      process.stdout.write(`  gateway event-loop delay, beside large ones:     max ${loaded.max_ms} ms, p99 ${loaded.p99_ms} ms\n`);
      process.stdout.write(`  large statements: ${fmt(largeS / STALL_COUNT, 2)} s each\n`);
      process.stdout.write(`  small statements: ${fmt(alone.n / alone.seconds)}/s alone (slowest ${fmt(alone.maxMs, 1)} ms), ` +
        `${fmt(beside.n / beside.seconds)}/s beside large ones (slowest ${fmt(beside.maxMs, 1)} ms)\n`);
    }
    if (ONLY.has('evidence')) {
      process.stdout.write('\nEvidence\n');
      await runAuditBench((l) => process.stdout.write(`  ${l}\n`), Number(process.env['BENCH_AUDIT_RECORDS'] ?? 1_000_000));
    }
    process.stdout.write(`\nsummary ${JSON.stringify(Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, Number(v.toFixed(3))])))}\n`);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await idp.close();
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
