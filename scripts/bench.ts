// `npm run bench`: measures phigate against a direct connection in the same run, on this machine.
// Data path: pgbench -S (select-only) with 1 and 8 clients, direct, PgBouncer, a bare Node relay and
// `phigate connect` → `phigate server`: TPS, ratio, latency, CPU per transaction of each process
// (bench-datapath.ts); connection setup (pgbench -C); replicas on one host (bench-replicas.ts);
// syscalls per transaction (BENCH_STRACE=1); masking, evidence and event-loop stall sections.
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCmd } from '../test/support/clients.js';
import { startTestPostgres } from '../test/support/postgres.js';
import { startTestIdp } from '../test/support/oidc.js';
import { run, type Proc } from '../test/support/proc.js';
import { scriptPolicy } from '../test/support/script-policy.js';
import { benchDecisions } from './bench-decisions.js';
import { gatewayReadyMs } from './bench-connect.js';
import { runAuditBench } from './bench-audit.js';
import { benchMaskRows } from './bench-mask-rows.js';
import { benchConnections, benchDataPath, benchStrace, type Path } from './bench-datapath.js';
import { startPgBouncer, startRelayProcess, type Hop } from './bench-hops.js';
import { cpuMicros, fmt } from './bench-measure.js';
import { benchReplicas } from './bench-replicas.js';

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
// BENCH_ONLY=decisions,pgbench,connections,masking,evidence,stall,replicas,strace runs just those
// sections (all but strace by default; BENCH_STRACE=1 adds strace). `connections` compares new
// connections across the hops and phigate with its upstream pool on and off (`connect` is its
// earlier name).
const ONLY = new Set((process.env['BENCH_ONLY'] ?? 'decisions,pgbench,connections,masking,evidence,stall,replicas').split(',').map((s) => s.trim()));
if (ONLY.has('connect')) ONLY.add('connections');
if (process.env['BENCH_STRACE'] === '1') ONLY.add('strace');
// BENCH_PATHS: the hops compared with direct in the pgbench, connections and strace sections.
const PATHS = new Set((process.env['BENCH_PATHS'] ?? 'pgbouncer,relay,relay-evidence,phigate,phigate-unmasked').split(',').map((s) => s.trim()));
/** strace: transactions per client (8 clients) in the traced run. */
const STRACE_TX = Number(process.env['BENCH_STRACE_TX'] ?? 2000);
/** stall: the size of each large statement, and how many are sent. */
const STALL_BYTES = Number(process.env['BENCH_STALL_BYTES'] ?? 900 * 1024);
const STALL_COUNT = Number(process.env['BENCH_STALL_COUNT'] ?? 4);
// BENCH_STORE=1: the gateway runs with --store (a database on the same PostgreSQL), so evidence
// shipping is part of what is measured.
const STORE = process.env['BENCH_STORE'] === '1';
// BENCH_PROF_DIR: the gateway and the CLI write V8 CPU profiles there when they exit.
const PROF_DIR = process.env['BENCH_PROF_DIR'];
const nodeArgs = PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : [];

async function main(): Promise<void> {
  if (ONLY.has('decisions')) await benchDecisions();
  process.stdout.write(`phigate bench: pgbench -S, scale ${SCALE}, ${SECONDS}s per run, best of ${ROUNDS} rounds, ${process.version}\n`);
  const db = await startTestPostgres();
  // alice reads masked (every agent's case); dana is in unmasked_groups (the fast path).
  const idp = await startTestIdp({ identities: { alice: ['engineering'], dana: ['privacy-officers'] } });
  const dir = mkdtempSync(join(tmpdir(), 'phigate-bench-'));
  const procs: Proc[] = [];
  try {
    const role = db.info.roles.scram;
    const pgEnv = { PGPASSWORD: role.password, PGSSLMODE: 'disable' };
    const init = await runCmd('pgbench', ['-i', '-q', '-s', String(SCALE), '-h', db.info.host, '-p', String(db.info.port), '-U', role.user, 'ehr'], { env: pgEnv, timeoutMs: 600_000 });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    const policy = join(dir, 'phigate.yaml');
    const upstream = `postgres://${role.user}@${db.info.host}:${db.info.port}/${db.info.database}`;
    writeFileSync(policy, scriptPolicy({
      issuer: idp.issuer,
      connections: {
        ehr: { upstream, allowGroups: ['engineering', 'privacy-officers'] },
        'ehr-nopool': { upstream, allowGroups: ['engineering', 'privacy-officers'], pool: false },
      },
      rest: `masking:
  columns:
    - { column: bench_patients.ssn, strategy: partial, keep_last: 4 }
    - { column: bench_patients.mrn, strategy: tokenize }
    - { column: bench_patients.full_name, strategy: redact }
    - { column: bench_patients.date_of_birth, strategy: year_only }
  detectors: [us_ssn, email]
  unmasked_groups: [privacy-officers]
`,
    }));
    const seed = !ONLY.has('masking') ? { code: 0, stderr: '' } : await runCmd('psql', ['-X', '-q', '-h', db.info.host, '-p', String(db.info.port), '-U', role.user, '-d', 'ehr', '-c', BENCH_PATIENTS_SQL], { env: pgEnv, timeoutMs: 600_000 });
    if (seed.code !== 0) throw new Error(`seeding bench_patients failed: ${seed.stderr}`);
    const su = db.info.superuser;
    /** A database on the same PostgreSQL for --store; returns its URL. */
    const storeDb = async (name: string): Promise<string> => {
      const made = await runCmd('psql', ['-X', '-q', '-h', db.info.host, '-p', String(db.info.port), '-U', su.user, '-d', 'postgres', '-c', `CREATE DATABASE ${name}`],
        { env: { PGPASSWORD: su.password, PGSSLMODE: 'disable' } });
      if (made.code !== 0) throw new Error(`creating the store database ${name} failed: ${made.stderr}`);
      return `postgres://${encodeURIComponent(su.user)}:${encodeURIComponent(su.password)}@${db.info.host}:${db.info.port}/${name}`;
    };
    const storeArgs: string[] = [];
    if (STORE) {
      storeArgs.push('--store', await storeDb('phigate_bench_store'));
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

    const token = await idp.mint('alice');
    const summary: Record<string, number> = {};
    const hops: Hop[] = [];
    try {
      const direct: Path = { key: 'direct', label: 'direct', target: { host: db.info.host, port: db.info.port, user: role.user, env: pgEnv }, procs: [] };
      const paths: Path[] = [direct];
      const skipped: string[] = [];
      if (['pgbench', 'connections', 'strace'].some((s) => ONLY.has(s))) {
        if (PATHS.has('pgbouncer')) {
          const b = await startPgBouncer({ host: db.info.host, port: db.info.port, database: 'ehr', user: role.user, password: role.password });
          if ('skipped' in b) skipped.push(`PgBouncer: ${b.skipped}`);
          else {
            hops.push(b);
            paths.push({ key: 'pgbouncer', label: 'PgBouncer (transaction pool)', target: { host: '127.0.0.1', port: b.port, user: role.user, env: { PGSSLMODE: 'disable' } },
              procs: [{ name: 'pgbouncer', pid: b.pid }] });
          }
        }
        if (PATHS.has('relay')) {
          const r = await startRelayProcess(db.info.host, db.info.port);
          hops.push(r);
          paths.push({ key: 'relay', label: 'bare Node relay (scripts/relay.ts)', target: { ...direct.target, host: '127.0.0.1', port: r.port }, procs: [{ name: 'relay', pid: r.pid }] });
        }
        if (PATHS.has('relay-evidence') && ONLY.has('pgbench')) {
          const r = await startRelayProcess(db.info.host, db.info.port, join(dir, 'relay-evidence.jsonl'));
          hops.push(r);
          paths.push({ key: 'relay-evidence', label: 'relay + a hash-chained record per statement', target: { ...direct.target, host: '127.0.0.1', port: r.port }, procs: [{ name: 'relay', pid: r.pid }] });
        }
      }
      if (PATHS.has('phigate')) {
        paths.push({ key: 'phigate', label: 'phigate connect -> server', target: { host: '127.0.0.1', port: gwPort, user: 'alice', env: { PGSSLMODE: 'disable' } },
          procs: [{ name: 'server', pid: server.proc.pid! }, { name: 'connect', pid: connect.proc.pid! }] });
      }
      if (PATHS.has('phigate-unmasked') && ONLY.has('pgbench')) {
        const unmasked = run(['connect', 'ehr', '--server', serverUrl], { PHIGATE_TOKEN: await idp.mint('dana') }, { nodeArgs });
        procs.push(unmasked);
        const port = Number((await unmasked.waitFor(/Listening on 127\.0\.0\.1:(\d+)/))[1]);
        paths.push({ key: 'phigate-unmasked', label: 'phigate, unmasked reader', target: { host: '127.0.0.1', port, user: 'dana', env: { PGSSLMODE: 'disable' } },
          procs: [{ name: 'server', pid: server.proc.pid! }, { name: 'connect', pid: unmasked.proc.pid! }] });
      }
      if (ONLY.has('pgbench')) await benchDataPath({ paths, seconds: SECONDS, rounds: ROUNDS, clients: [1, 8], skipped, summary });
      if (ONLY.has('connections')) {
        const granted = await runCmd('psql', ['-X', '-q', '-h', db.info.host, '-p', String(db.info.port), '-U', role.user, '-d', 'ehr', '-c',
          `GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${db.info.roles.trust.user}`], { env: pgEnv });
        if (granted.code !== 0) throw new Error(`granting the trust role SELECT failed: ${granted.stderr}`);
        const trust: Path = { ...direct, label: 'direct, trust role', target: { ...direct.target, user: db.info.roles.trust.user, env: { PGSSLMODE: 'disable' } } };
        const notes: Record<string, string> = {
          [direct.label]: 'SCRAM-SHA-256 with PostgreSQL (4096 iterations, client and server)',
          [trust.label]: 'none (pg_hba trust): a backend start without authentication',
          'PgBouncer (transaction pool)': 'trust at PgBouncer; its server connections stay logged in (pooled)',
          'phigate connect -> server': 'no password on the local port; the server verifies the tunnel\'s bearer token (JWT, verdict cached); a pooled, logged-in upstream connection, reset',
        };
        const hopsC = paths.filter((p) => p.key === 'pgbouncer' || p.key === 'phigate');
        if (PATHS.has('phigate')) {
          const nopool = run(['connect', 'ehr-nopool', '--server', serverUrl], { PHIGATE_TOKEN: token }, { nodeArgs });
          procs.push(nopool);
          const port = Number((await nopool.waitFor(/Listening on 127\.0\.0\.1:(\d+)/))[1]);
          hopsC.push({ key: 'phigate-nopool', label: 'phigate, pool: false', target: { host: '127.0.0.1', port, user: 'alice', env: { PGSSLMODE: 'disable' } },
            procs: [{ name: 'server', pid: server.proc.pid! }, { name: 'connect', pid: nopool.proc.pid! }] });
          notes['phigate, pool: false'] = 'as above, with a new upstream connection (SCRAM) per session';
        }
        await benchConnections({ paths: [direct, trust, ...hopsC], seconds: SECONDS, rounds: ROUNDS, summary, notes });
        // The gateway's own share: a tunnel stream straight to the server, StartupMessage to ReadyForQuery.
        for (const name of PATHS.has('phigate') ? ['ehr', 'ehr-nopool'] : []) {
          const ms = await gatewayReadyMs(serverUrl, name, token, 200);
          summary[`gateway_ready_ms_${name.replace('-', '_')}`] = ms;
          process.stdout.write(`  gateway alone (tunnel open + startup), ${name === 'ehr' ? 'pooled' : 'pool: false'}: ${ms.toFixed(3)} ms\n`);
        }
      }
      if (ONLY.has('strace')) {
        await benchStrace({ paths: paths.filter((p) => p.key !== 'direct' && p.key !== 'phigate-unmasked'), clients: 8, transactionsPerClient: STRACE_TX, summary });
      }
    } finally {
      await Promise.all(hops.map((h) => h.stop()));
    }
    if (ONLY.has('replicas')) {
      await benchReplicas({ policy, dir, storeUrl: await storeDb('phigate_bench_replicas'), serverEnv: { EHR_DB_PASSWORD: role.password }, token,
        clients: 8, seconds: SECONDS, rounds: ROUNDS, procs, summary });
    }
    if (ONLY.has('masking')) {
      /** One big SELECT through psql to /dev/null, direct vs phigate (best of ROUNDS), and the gateway's and CLI's CPU. */
      const bigSelect = async (key: string, title: string, sql: string, rows: number): Promise<void> => {
        const run = (host: string, port: number, user: string, env: NodeJS.ProcessEnv) =>
          timed(() => runCmd('psql', ['-X', '-At', '-o', '/dev/null', '-h', host, '-p', String(port), '-U', user, '-d', 'ehr', '-c', sql], { env, timeoutMs: 600_000 }));
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
      // The row path alone, in this process: what masking costs without sockets, tunnel or PostgreSQL.
      const rowPath = benchMaskRows(200_000);
      summary['row_path_masked_ns'] = rowPath.cpuNsPerRow;
      process.stdout.write(`\nRow path alone (applyToDataRow in this process, ${fmt(rowPath.rows)} patients-like rows): ` +
        `${fmt(rowPath.cpuNsPerRow)} ns CPU per masked row, ${fmt(rowPath.detectOnlyRowsPerSecond)} rows per CPU second with detectors only\n`);
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
