// `npm run soak`: a real gateway in front of embedded PostgreSQL under mixed clients for a long time
// (default 30 minutes; --duration 5m or SOAK_DURATION): pgbench, masked readers, writers (with
// statements the policy blocks), clients that connect and disconnect (some vanish without a
// Terminate), a client that cancels its queries, a slow reader of a large result. Every few seconds
// it samples the gateway's RSS (/proc), heap and event-loop lag (its /metrics). It prints a summary
// and exits 1 if the gateway died, stopped answering /healthz, a client met an unexpected error or
// hung, or memory grew without bound (end, after the load stopped and a settle, against warm-up).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startTestPostgres } from '../test/support/postgres.js';
import { startTestIdp, type TestIdp } from '../test/support/oidc.js';
import { run, type Proc } from '../test/support/proc.js';
import { scrape } from '../test/support/metrics.js';
import { runCmd } from '../test/support/clients.js';
import { scriptPolicy } from '../test/support/script-policy.js';
import { parseDuration } from '../src/policy/duration.js';

const env = process.env;
const num = (name: string, dflt: number): number => (env[name] !== undefined && env[name] !== '' ? Number(env[name]) : dflt);

function durationArg(): number {
  const i = process.argv.indexOf('--duration');
  const text = i >= 0 ? process.argv[i + 1] : env['SOAK_DURATION'];
  if (text === undefined || text === '') return 30 * 60_000;
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms === undefined || ms < 10_000) throw new Error(`--duration: expected a duration of at least 10s such as 30m, 300s or 300, got "${text}"`);
  return ms;
}

const DURATION_MS = durationArg();
const SAMPLE_MS = num('SOAK_SAMPLE_MS', 5_000);
const WARMUP_MS = Math.min(60_000, DURATION_MS * 0.2);
const SETTLE_MS = num('SOAK_SETTLE_MS', 5_000);
const PGBENCH_RATE = num('SOAK_PGBENCH_RATE', 100);
const RSS_FACTOR = num('SOAK_RSS_FACTOR', 2);
const HEAP_FACTOR = num('SOAK_HEAP_FACTOR', 3);
/** Tokens live 10 minutes: a fresh `phigate connect` takes new connections this often. */
const ROTATE_MS = 5 * 60_000;
/** Every client reconnects at least this often, so old `phigate connect` processes can be stopped. */
const CLIENT_LIFETIME_MS = 60_000;
const PATIENTS = 2_000;

const POLICY_RULES = `rules:
  - name: no-ddl
    when: { statement: [drop, truncate, alter, create] }
    action: block
    message: DDL is not allowed through phigate
default: allow
masking:
  columns:
    - { column: soak_patients.ssn, strategy: partial, keep_last: 4 }
    - { column: soak_patients.mrn, strategy: tokenize }
    - { column: soak_patients.full_name, strategy: redact }
  detectors: [us_ssn]
  unmasked_groups: [engineering]
`;

const SETUP_SQL = `DROP TABLE IF EXISTS soak_patients, soak_writes;
CREATE TABLE soak_patients AS
SELECT g AS id, 'MRN-' || lpad((10000000 + g)::text, 8, '0') AS mrn, 'Name' || g || ' Person' AS full_name,
       lpad((100 + g % 565)::text, 3, '0') || '-' || lpad((10 + g % 89)::text, 2, '0') || '-' || lpad((1000 + g % 8999)::text, 4, '0') AS ssn,
       'City' || (g % 50) AS city
FROM generate_series(1, ${PATIENTS}) g;
ALTER TABLE soak_patients ADD PRIMARY KEY (id);
CREATE TABLE soak_writes (id bigserial PRIMARY KEY, v text NOT NULL);
GRANT ALL ON soak_patients, soak_writes TO PUBLIC;
GRANT ALL ON SEQUENCE soak_writes_id_seq TO PUBLIC;`;

/**
 * prom-client's nodejs_eventloop_lag_* come from a timer every 10 ms and include its interval (an
 * idle gateway reads 10 ms); the soak reports the delay beyond it.
 */
const LAG_RESOLUTION_S = 0.01;
const excess = (s: number): number => Math.max(0, s - LAG_RESOLUTION_S);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mb = (bytes: number): string => (bytes / 1048576).toFixed(1);
const ms3 = (s: number): string => (s * 1000).toFixed(2);


/** Errors met by clients: expected ones (what the client provoked) and the rest, by client and kind. */
class Errors {
  readonly expected = new Map<string, number>();
  readonly unexpected = new Map<string, number>();
  readonly firstUnexpected = new Map<string, string>();
  add(client: string, err: unknown, expectedCodes: string[] = []): void {
    const e = err as { code?: unknown; message?: unknown };
    const code = typeof e?.code === 'string' ? e.code : undefined;
    const message = typeof e?.message === 'string' ? e.message : String(err);
    const kind = `${client}: ${code ?? message.replace(/\d+/g, 'N').slice(0, 80)}`;
    const map = code !== undefined && expectedCodes.includes(code) ? this.expected : this.unexpected;
    map.set(kind, (map.get(kind) ?? 0) + 1);
    if (map === this.unexpected && !this.firstUnexpected.has(kind)) this.firstUnexpected.set(kind, message.slice(0, 300));
  }
  count(map: Map<string, number>): number {
    return [...map.values()].reduce((a, b) => a + b, 0);
  }
}

/** `phigate connect` processes per identity; a fresh one (fresh token) every ROTATE_MS. */
class Tunnels {
  private readonly current = new Map<string, { port: number; proc: Proc }>();
  private readonly all: { proc: Proc; retireAt?: number }[] = [];
  private stopping = false;
  constructor(private readonly idp: TestIdp, private readonly serverUrl: string, private readonly errors: Errors) {}

  port(identity: string): number {
    return this.current.get(identity)!.port;
  }

  async open(identity: string): Promise<void> {
    const proc = run(['connect', 'ehr', '--server', this.serverUrl], { PHIGATE_TOKEN: await this.idp.mint(identity) });
    const port = Number((await proc.waitFor(/Listening on 127\.0\.0\.1:(\d+)/))[1]);
    const old = this.current.get(identity);
    if (old) this.all.find((t) => t.proc === old.proc)!.retireAt = Date.now() + 2 * CLIENT_LIFETIME_MS;
    this.current.set(identity, { port, proc });
    this.all.push({ proc });
    void proc.exited.then(({ code, signal }) => {
      if (!this.stopping && !this.all.find((t) => t.proc === proc)?.retireAt) this.errors.add('tunnel', new Error(`phigate connect exited (${code ?? signal})`));
    });
  }

  /** Opens fresh tunnels when due and stops retired ones. */
  async maintain(openedAt: Map<string, number>): Promise<void> {
    for (const [identity, at] of openedAt) {
      if (Date.now() - at >= ROTATE_MS) {
        await this.open(identity);
        openedAt.set(identity, Date.now());
      }
    }
    for (const t of this.all) if (t.retireAt !== undefined && Date.now() >= t.retireAt) void t.proc.stop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.all.map((t) => t.proc.stop()));
  }
}

interface Counts {
  pgbenchTx: number; maskedReads: number; writes: number; blocked: number; connects: number; abrupt: number;
  cancels: number; slowRows: number;
}

async function main(): Promise<number> {
  let started = Date.now();
  process.stdout.write(`phigate soak: ${(DURATION_MS / 1000).toFixed(0)} s of mixed clients, sampled every ${SAMPLE_MS / 1000} s, ${process.version}\n`);
  const db = await startTestPostgres();
  const idp = await startTestIdp({ identities: { alice: ['engineering'], agent: ['ai-agents'] } });
  const dir = mkdtempSync(join(tmpdir(), 'phigate-soak-'));
  const errors = new Errors();
  let server: Proc | undefined;
  let tunnels: Tunnels | undefined;
  try {
    const role = db.info.roles.scram;
    const direct = { host: db.info.host, port: db.info.port, user: role.user, password: role.password, database: db.info.database };
    const init = await runCmd('pgbench', ['-i', '-q', '-s', '1', '-h', direct.host, '-p', String(direct.port), '-U', direct.user, direct.database],
      { env: { PGPASSWORD: role.password, PGSSLMODE: 'disable' }, timeoutMs: 600_000 });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    const admin = new pg.Client(direct);
    await admin.connect();
    await admin.query(SETUP_SQL);
    const rawSsn = new Map<number, string>((await admin.query<{ id: number; ssn: string }>('SELECT id, ssn FROM soak_patients')).rows.map((r) => [r.id, r.ssn]));
    await admin.end();

    const policy = join(dir, 'phigate.yaml');
    writeFileSync(policy, scriptPolicy({
      issuer: idp.issuer,
      connections: { ehr: { upstream: `postgres://${role.user}@${direct.host}:${direct.port}/${direct.database}`, allowGroups: ['engineering', 'ai-agents'] } },
      rest: POLICY_RULES,
    }));
    server = run(['server', '--config', policy, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'), '--log-level', 'warn'],
      { EHR_DB_PASSWORD: role.password });
    const serverUrl = (await server.waitFor(/listening on (http:\/\/[\d.]+:\d+)/))[1]!;
    const serverPid = server.proc.pid!;
    let gatewayDied: string | undefined;
    void server.exited.then(({ code, signal }) => (gatewayDied = `exited (${code ?? signal})`));
    tunnels = new Tunnels(idp, serverUrl, errors);
    await tunnels.open('alice');
    await tunnels.open('agent');
    const openedAt = new Map([['alice', Date.now()], ['agent', Date.now()]]);
    const t = tunnels;

    const counts: Counts = { pgbenchTx: 0, maskedReads: 0, writes: 0, blocked: 0, connects: 0, abrupt: 0, cancels: 0, slowRows: 0 };
    const loadEnds = Date.now() + DURATION_MS;
    const running = (): boolean => Date.now() < loadEnds && gatewayDied === undefined;
    const client = async (identity: string): Promise<pg.Client> => {
      const c = new pg.Client({ host: '127.0.0.1', port: t.port(identity), user: identity, database: 'ehr', connectionTimeoutMillis: 30_000 });
      await c.connect();
      return c;
    };
    /** A client loop: reconnects every CLIENT_LIFETIME_MS; an error is counted and the connection made again. */
    const loop = async (name: string, identity: string, body: (c: pg.Client) => Promise<void>, expectedCodes: string[] = []): Promise<void> => {
      while (running()) {
        let c: pg.Client | undefined;
        try {
          c = await client(identity);
          c.on('error', (err) => errors.add(name, err, expectedCodes));
          const until = Date.now() + CLIENT_LIFETIME_MS;
          while (running() && Date.now() < until) await body(c);
        } catch (err) {
          errors.add(name, err, expectedCodes);
          await sleep(500);
        } finally {
          await c?.end().catch(() => {});
        }
      }
    };

    const pgbenchLoop = async (): Promise<void> => {
      while (running()) {
        const secs = Math.max(1, Math.min(60, Math.floor((loadEnds - Date.now()) / 1000)));
        const r = await runCmd('pgbench', ['-n', '-b', 'select-only@9', '-b', 'tpcb-like@1', '-c', '4', '-j', '2', '-R', String(PGBENCH_RATE), '-T', String(secs),
          '-h', '127.0.0.1', '-p', String(t.port('alice')), '-U', 'alice', 'ehr'], { env: { PGSSLMODE: 'disable' }, timeoutMs: (secs + 120) * 1000 });
        const tx = /number of transactions actually processed: (\d+)/.exec(r.stdout);
        if (tx) counts.pgbenchTx += Number(tx[1]);
        if (r.code !== 0 || !tx) errors.add('pgbench', new Error(`pgbench exited ${r.code}: ${(r.stderr.split('\n').find((l) => /error|fatal/i.test(l)) ?? r.stderr).slice(0, 200)}`));
        if (Date.now() + 1000 >= loadEnds) break;
      }
    };

    const maskedReader = (): Promise<void> => loop('masked reader', 'agent', async (c) => {
      const id = 1 + Math.floor(Math.random() * PATIENTS);
      const r = await c.query<{ id: number; ssn: string; full_name: string }>('SELECT id, ssn, full_name, mrn FROM soak_patients WHERE id = $1', [id]);
      const row = r.rows[0];
      if (!row || row.ssn === rawSsn.get(id) || row.full_name.startsWith('Name')) errors.add('masked reader', new Error('a raw value reached a masked reader'));
      await c.query(`SELECT city, count(*) FROM soak_patients WHERE ssn LIKE '%${id % 10}' GROUP BY city`);
      counts.maskedReads += 2;
      await sleep(5);
    });

    let writes = 0;
    const writer = (): Promise<void> => loop('writer', 'alice', async (c) => {
      const r = await c.query<{ id: string }>('INSERT INTO soak_writes (v) VALUES ($1) RETURNING id', [`w${writes}`]);
      const id = Number(r.rows[0]!.id);
      await c.query('UPDATE soak_writes SET v = v || $2 WHERE id = $1', [id, 'x']);
      await c.query(`BEGIN; INSERT INTO soak_writes (v) VALUES ('tx${writes}'); COMMIT`);
      writes++;
      counts.writes += 3;
      if (writes % 100 === 0) await c.query('DELETE FROM soak_writes WHERE id < $1', [id - 1000]);
      if (writes % 20 === 0) {
        try {
          await c.query('DROP TABLE soak_writes');
          errors.add('writer', new Error('DROP TABLE was not blocked'));
        } catch (err) {
          if ((err as { code?: string }).code !== '42501') throw err;
          counts.blocked++;
          errors.add('writer', err, ['42501']);
        }
      }
      await sleep(5);
    });

    const churn = async (): Promise<void> => {
      let n = 0;
      while (running()) {
        const c = new pg.Client({ host: '127.0.0.1', port: t.port(n % 3 === 0 ? 'agent' : 'alice'), user: 'alice', database: 'ehr', connectionTimeoutMillis: 30_000 });
        c.on('error', () => {}); // the abrupt ones below end with a socket error of our own making
        try {
          await c.connect();
          await c.query('SELECT 1');
          counts.connects++;
          if (++n % 5 === 0) {
            // Vanish without a Terminate.
            (c as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
            counts.abrupt++;
          } else {
            await c.end();
          }
        } catch (err) {
          errors.add('churn', err);
          await c.end().catch(() => {});
          await sleep(500);
        }
        await sleep(30);
      }
    };

    const canceller = (): Promise<void> => loop('canceller', 'alice', async (c) => {
      const key = c as unknown as { processID: number; secretKey: number };
      const q = c.query('SELECT pg_sleep(10)').then(() => 'completed', (err: { code?: string }) => err.code ?? 'error');
      let outcome: string | undefined;
      void q.then((o) => (outcome = o));
      for (let attempt = 0; attempt < 5 && outcome === undefined; attempt++) {
        await sleep(200 + attempt * 500);
        if (outcome === undefined) await sendCancel(t.port('alice'), key.processID, key.secretKey);
      }
      const o = await q;
      if (o === '57014') {
        counts.cancels++;
        errors.add('canceller', { code: o, message: 'canceling statement due to user request' }, ['57014']);
      } else errors.add('canceller', new Error(`the cancelled statement ended with ${o}`));
      await sleep(300);
    });

    const slowReader = (): Promise<void> => loop('slow reader', 'alice', async (c) => {
      const stream = (c as unknown as { connection: { stream: Socket } }).connection.stream;
      // Reads for 50 ms in every 250: the gateway has to hold the upstream back, not buffer the result.
      const timer = setInterval(() => {
        stream.pause();
        setTimeout(() => stream.resume(), 200);
      }, 250);
      try {
        const r = await c.query("SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 20000) g");
        counts.slowRows += r.rowCount ?? 0;
      } finally {
        clearInterval(timer);
        stream.resume();
      }
    });

    interface Point { at: number; rss: number; heap: number; p50: number; p99: number; max: number; statements: number; sessions: number }
    const points: Point[] = [];
    const sample = async (): Promise<Point> => {
      const status = readFileSync(`/proc/${serverPid}/status`, 'utf8');
      const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
      const m = await scrape(`${serverUrl}/metrics`);
      const p: Point = {
        at: Date.now() - started, rss, heap: m.value('nodejs_heap_size_used_bytes'),
        p50: excess(m.value('nodejs_eventloop_lag_p50_seconds')), p99: excess(m.value('nodejs_eventloop_lag_p99_seconds')),
        max: excess(m.value('nodejs_eventloop_lag_max_seconds')),
        statements: m.value('phigate_statement_decisions_total'), sessions: m.value('phigate_sessions_active'),
      };
      points.push(p);
      return p;
    };
    const line = (label: string, p: Point): string =>
      `${label.padStart(7)}  ${mb(p.rss).padStart(7)}  ${mb(p.heap).padStart(7)}  ${ms3(p.p50).padStart(8)}  ${ms3(p.p99).padStart(8)}  ${ms3(p.max).padStart(8)}  ${String(p.statements).padStart(10)}  ${String(p.sessions).padStart(8)}\n`;

    started = Date.now();
    const first = await sample();
    process.stdout.write('\n   time   RSS MB  heap MB   lag p50   lag p99   lag max  statements  sessions   (lag: ms beyond the 10 ms timer, per sample interval)\n');
    process.stdout.write(line('start', first));
    const loads = [pgbenchLoop(), maskedReader(), maskedReader(), writer(), churn(), canceller(), slowReader()];
    const allDone = Promise.all(loads);
    let warm: Point | undefined;
    let lastPrinted = 0;
    while (running()) {
      await sleep(Math.min(SAMPLE_MS, Math.max(0, loadEnds - Date.now())));
      if (gatewayDied) break;
      try {
        const p = await sample();
        if (!warm && p.at >= WARMUP_MS) {
          warm = p;
          process.stdout.write(line('warm', p));
        } else if (p.at - lastPrinted >= 30_000) {
          process.stdout.write(line(`${Math.round(p.at / 1000)}s`, p));
          lastPrinted = p.at;
        }
      } catch (err) {
        errors.add('sampler', err);
      }
      await tunnels.maintain(openedAt).catch((err: unknown) => errors.add('tunnel', err));
    }
    // Every client finishes its current statement and stops; one still busy after a minute hung.
    const hung = await Promise.race([allDone.then(() => false), sleep(60_000).then(() => true)]);
    if (hung) errors.add('soak', new Error('a client did not finish within 60 s of the end of the load'));
    await sleep(SETTLE_MS);
    let end: Point | undefined;
    let healthz = false;
    if (!gatewayDied) {
      end = await sample().catch(() => undefined);
      healthz = await fetch(`${serverUrl}/healthz`).then((r) => r.status === 200, () => false);
    }
    warm ??= points[Math.min(1, points.length - 1)]!;
    end ??= points[points.length - 1]!;
    if (end) process.stdout.write(line('end', end));

    const loadPoints = points.slice(1);
    const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
    const pct = (xs: number[], q: number): number => {
      const s = sorted(xs);
      return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))]!;
    };
    const peakRss = Math.max(...points.map((p) => p.rss));
    const peakHeap = Math.max(...points.map((p) => p.heap));
    const lag = { p50: pct(loadPoints.map((p) => p.p50), 0.5), p99: pct(loadPoints.map((p) => p.p99), 0.99), max: Math.max(0, ...loadPoints.map((p) => p.max)) };
    const rssGrew = end.rss > warm.rss * RSS_FACTOR;
    const heapGrew = end.heap > warm.heap * HEAP_FACTOR;
    const unexpected = errors.count(errors.unexpected);
    const failures = [
      ...(gatewayDied ? [`the gateway ${gatewayDied}`] : []),
      ...(!gatewayDied && !healthz ? ['the gateway did not answer /healthz at the end'] : []),
      ...(unexpected > 0 ? [`${unexpected} unexpected client error(s)`] : []),
      ...(rssGrew ? [`RSS grew from ${mb(warm.rss)} MB after warm-up to ${mb(end.rss)} MB (limit ${RSS_FACTOR}x)`] : []),
      ...(heapGrew ? [`heap grew from ${mb(warm.heap)} MB after warm-up to ${mb(end.heap)} MB (limit ${HEAP_FACTOR}x)`] : []),
    ];

    const out = (s: string): boolean => process.stdout.write(`${s}\n`);
    out('\nSummary');
    out(`                    start     warm     peak      end`);
    out(`  RSS MB         ${[first.rss, warm.rss, peakRss, end.rss].map((v) => mb(v).padStart(8)).join(' ')}`);
    out(`  heap used MB   ${[first.heap, warm.heap, peakHeap, end.heap].map((v) => mb(v).padStart(8)).join(' ')}`);
    out(`  event-loop lag over ${loadPoints.length} samples: p50 ${ms3(lag.p50)} ms, p99 ${ms3(lag.p99)} ms, max ${ms3(lag.max)} ms`);
    out(`  statements decided by the gateway: ${end.statements - first.statements}`);
    out(`  clients: pgbench ${counts.pgbenchTx} transactions; masked reads ${counts.maskedReads}; writes ${counts.writes} (+${counts.blocked} blocked DROPs); ` +
      `connects ${counts.connects} (${counts.abrupt} vanished without Terminate); cancels ${counts.cancels}; slow-read rows ${counts.slowRows}`);
    const listErrors = (title: string, map: Map<string, number>): void => {
      out(`  ${title}: ${map.size === 0 ? 'none' : ''}`);
      for (const [k, n] of [...map.entries()].sort((a, b) => b[1] - a[1])) out(`    ${String(n).padStart(6)}  ${k}${errors.firstUnexpected.has(k) ? `  (first: ${errors.firstUnexpected.get(k)})` : ''}`);
    };
    listErrors('expected errors', errors.expected);
    listErrors('unexpected errors', errors.unexpected);
    out(`  /healthz at the end: ${healthz ? 'ok' : 'NOT OK'}`);
    out(failures.length === 0 ? 'result: PASS' : `result: FAIL: ${failures.join('; ')}`);
    out(`soak-result ${JSON.stringify({
      pass: failures.length === 0, failures, durationMs: DURATION_MS, healthz, gatewayDied: gatewayDied ?? null, unexpectedErrors: unexpected,
      expectedErrors: errors.count(errors.expected), statements: end.statements - first.statements, counts,
      rssMb: { start: Number(mb(first.rss)), warm: Number(mb(warm.rss)), peak: Number(mb(peakRss)), end: Number(mb(end.rss)) },
      heapMb: { start: Number(mb(first.heap)), warm: Number(mb(warm.heap)), peak: Number(mb(peakHeap)), end: Number(mb(end.heap)) },
      lagMs: { p50: Number(ms3(lag.p50)), p99: Number(ms3(lag.p99)), max: Number(ms3(lag.max)) },
    })}`);
    return failures.length === 0 ? 0 : 1;
  } finally {
    await tunnels?.stop();
    await server?.stop();
    await idp.close();
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A CancelRequest on a new connection, as libpq sends it. */
function sendCancel(port: number, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1', () => {
      const b = Buffer.alloc(16);
      b.writeInt32BE(16, 0);
      b.writeInt32BE(80877102, 4);
      b.writeInt32BE(processId, 8);
      b.writeInt32BE(secretKey, 12);
      s.end(b);
    });
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.resume();
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
