// kill -9 of the gateway at random points while clients write, several rounds on one data directory:
// after every restart the chain verifies and every row that reached PostgreSQL has its statement
// record (each insert names its row's unique id as a table alias, an identifier the redacted text
// keeps); a torn tail forced after one kill is cut and recorded; sessions the kills cut off are
// closed as interrupted, their recordings sealed. Seeded (PHIGATE_CRASH_SEED reruns a seed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { run, startGateway, type Gw } from '../support/harness.js';
import { pgClient, psql, psqlArgs } from '../support/clients.js';

const POLICY = `masking:
  columns:
    - { column: crashw_patients.ssn, strategy: partial, keep_last: 4 }
  unmasked_groups: [privacy-officers]
default: allow
`;
const ROUNDS = 5;
const WRITERS = 4;
const SEED = Number(process.env['PHIGATE_CRASH_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
/** The kill after which a torn final line is left in the log and in a live session's recording. */
const TORN_ROUND = 2;
const TORN_LOG = '{"at":"2026-01-01T00:00:00.000Z","connection":"ehr","decision":"al';
const TORN_RECORDING = '{"t":1,"type":"row","n":1,"values":["4';

/** mulberry32: the kill points of a run follow from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let gw: Gw;
let admin: pg.Client;
let alicePort: number;
let agentPort: number;
const dataDir = (): string => join(gw.dir, 'data');
const logFile = (): string => join(dataDir(), 'audit', 'audit.jsonl');

beforeAll(async () => {
  gw = await startGateway({ policy: POLICY });
  admin = new pg.Client({ host: gw.pg.host, port: gw.pg.port, user: gw.pg.superuser.user, password: gw.pg.superuser.password, database: 'ehr' });
  await admin.connect();
  await admin.query(`DROP TABLE IF EXISTS crashw_rows, crashw_patients;
    DO $$ DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables WHERE tablename LIKE 'crashw_copy_%' LOOP EXECUTE 'DROP TABLE ' || t; END LOOP; END $$;
    CREATE TABLE crashw_rows (id text PRIMARY KEY, client int NOT NULL);
    CREATE TABLE crashw_patients (id int PRIMARY KEY, ssn text);
    INSERT INTO crashw_patients SELECT g, '123-45-' || lpad((6000 + g)::text, 4, '0') FROM generate_series(1, 50) g;
    GRANT ALL ON crashw_rows, crashw_patients TO PUBLIC; GRANT CREATE ON SCHEMA public TO PUBLIC`);
  alicePort = (await gw.connect('ehr', await gw.token('alice'))).port;
  agentPort = (await gw.connect('ehr', await gw.token('agent'))).port;
}, 60_000);
afterAll(async () => {
  await admin?.end();
  await gw?.close();
});

interface Load {
  stop(): Promise<void>;
  acked: Set<string>;
  stats: { inserts: number; insertErrors: number; reads: number; leaks: number; copies: number; copyRowsSent: number };
}

/** Writers (unique ids, parallel), a masked reader and a COPY FROM in flight, all reconnecting after each kill. */
function startLoad(): Load {
  let stopping = false;
  const acked = new Set<string>();
  const stats = { inserts: 0, insertErrors: 0, reads: 0, leaks: 0, copies: 0, copyRowsSent: 0 };
  /** One session at a time, reopened whenever the gateway drops it. */
  const loop = async (port: number, user: string, body: (c: pg.Client) => Promise<void>): Promise<void> => {
    while (!stopping) {
      const c = pgClient(port, { user, connectionTimeoutMillis: 20_000 });
      c.on('error', () => {});
      try {
        await c.connect();
        while (!stopping) await body(c);
      } catch {
        stats.insertErrors++;
      } finally {
        await c.end().catch(() => {});
      }
      if (!stopping) await sleep(50);
    }
  };
  const writer = (w: number, port: number, user: string): Promise<void> => {
    let n = 0;
    return loop(port, user, async (c) => {
      const id = `w${w}_${++n}`;
      stats.inserts++;
      await c.query(`INSERT INTO crashw_rows AS ${id} (id, client) VALUES ($1, $2)`, [id, w]);
      acked.add(id);
    });
  };
  const reader = loop(agentPort, 'agent', async (c) => {
    const r = await c.query<{ ssn: string }>('SELECT id, ssn FROM crashw_patients ORDER BY id');
    stats.reads++;
    stats.leaks += r.rows.filter((x) => !/^\*{3}-\*{2}-\d{4}$/.test(x.ssn)).length;
  });
  const copier = (async () => {
    for (let k = 1; !stopping; k++) {
      // A table per attempt: the COPY record names it, so its rows are matched to their record.
      const made = await psql(alicePort, ['-c', `CREATE TABLE crashw_copy_${k} (id text)`], { timeoutMs: 30_000 });
      if (made.code !== 0) {
        await sleep(100);
        continue;
      }
      stats.copies++;
      const child = spawn('psql', psqlArgs(alicePort, ['-c', `COPY crashw_copy_${k} (id) FROM STDIN`]), { stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, PGCONNECT_TIMEOUT: '20' } });
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin.on('error', () => {});
      // Streamed over about a second: a kill finds it in flight.
      for (let i = 0; i < 20 && child.exitCode === null && !stopping; i++) {
        child.stdin.write(Array.from({ length: 100 }, (_, j) => `c${k}_${i * 100 + j}\n`).join(''));
        stats.copyRowsSent += 100;
        await sleep(50);
      }
      child.stdin.end();
      await exited;
    }
  })();
  const all = [
    ...Array.from({ length: WRITERS }, (_, w) => writer(w, w === WRITERS - 1 ? agentPort : alicePort, w === WRITERS - 1 ? 'agent' : 'alice')),
    reader, copier,
  ];
  return {
    acked, stats,
    async stop() {
      stopping = true;
      await Promise.all(all);
    },
  };
}

type Rec = Record<string, unknown>;
function records(): Rec[] {
  return readFileSync(logFile(), 'utf8').split('\n').filter((l) => l.endsWith('}')).map((l) => JSON.parse(l) as Rec);
}

/** Rows in PostgreSQL now, then the records on disk: each row's statement record is written before the row can exist. */
async function rowsWithoutRecords(): Promise<{ rows: number; copyRows: number; matched: number; missing: string[] }> {
  const rows = (await admin.query<{ id: string }>('SELECT id FROM crashw_rows')).rows.map((r) => r.id);
  const tables = (await admin.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE tablename LIKE 'crashw_copy_%'")).rows.map((r) => r.tablename);
  const copied = new Map<string, number>();
  for (const t of tables) copied.set(t, Number((await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n));
  const inserts = new Set<string>();
  const copies = new Set<string>();
  for (const r of records()) {
    if (r['type'] !== 'statement' || r['decision'] !== 'allow') continue;
    const sql = String(r['sql']);
    const ins = /^INSERT INTO crashw_rows AS (w\d+_\d+) /.exec(sql);
    if (ins) inserts.add(ins[1]!);
    const cp = /^COPY (crashw_copy_\d+) /.exec(sql);
    if (cp) copies.add(cp[1]!);
  }
  const missing = rows.filter((id) => !inserts.has(id));
  for (const [t, n] of copied) if (n > 0 && !copies.has(t)) missing.push(`${t} (${n} rows)`);
  const copyRows = [...copied.values()].reduce((a, b) => a + b, 0);
  return { rows: rows.length, copyRows, matched: rows.length - missing.length, missing };
}

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = run(args);
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** A recording of a session the log shows open (started, not ended): what a kill leaves. */
function openRecording(): string | undefined {
  const recs = records();
  const ended = new Set(recs.filter((r) => r['type'] === 'session.end').map((r) => String(r['session'])));
  const open = recs.filter((r) => r['type'] === 'session.start' && !ended.has(String(r['session']))).map((r) => String(r['session']));
  const dir = join(dataDir(), 'recordings');
  return open.find((s) => existsSync(join(dir, `${s}.ndjson`)));
}

describe('kill -9 under write load, several rounds', () => {
  it('after every restart: the chain verifies, every row has its record, torn tails are cut and recorded, killed sessions are closed as interrupted', async () => {
    const random = prng(SEED);
    console.log(`crash-writes: seed ${SEED} (rerun with PHIGATE_CRASH_SEED=${SEED})`);
    const load = startLoad();
    let tornSession: string | undefined;
    const rounds: string[] = [];
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        const delay = Math.round(600 + random() * 1600);
        await sleep(delay);
        gw.server.proc.kill('SIGKILL');
        await gw.server.exited;
        if (round === TORN_ROUND) {
          // SIGKILL cannot tear a write() to a file; a power cut can: leave what it would.
          tornSession = openRecording();
          expect(tornSession, 'a session was live at the kill').toBeDefined();
          appendFileSync(join(dataDir(), 'recordings', `${tornSession}.ndjson`), TORN_RECORDING);
          appendFileSync(logFile(), TORN_LOG);
        }
        await gw.restartServer();
        const verify = await cli(['audit', 'verify', '--data-dir', dataDir()]);
        expect(verify.code, verify.stdout + verify.stderr).toBe(0);
        const check = await rowsWithoutRecords();
        expect(check.missing).toEqual([]);
        const closed = records().filter((r) => r['type'] === 'session.end' && r['reason'] === 'interrupted').length;
        rounds.push(`round ${round}: killed after ${delay} ms; rows ${check.rows} + ${check.copyRows} copied, all with their records; interrupted sessions closed so far ${closed}`);
        // Load again before the next kill: clients reconnect through their `phigate connect`.
        const before = load.stats.inserts;
        for (let i = 0; i < 200 && load.stats.inserts < before + 20; i++) await sleep(50);
      }
    } finally {
      await load.stop();
    }
    await gw.server.stop();

    const recs = records();
    const final = await rowsWithoutRecords();
    const statements = recs.filter((r) => r['type'] === 'statement').length;
    const repairs = recs.filter((r) => r['type'] === 'log.repaired');
    const interrupted = recs.filter((r) => r['type'] === 'session.end' && r['reason'] === 'interrupted');
    for (const line of rounds) console.log(`crash-writes: ${line}`);
    console.log(`crash-writes: ${ROUNDS} kills; ${final.rows} inserted rows and ${final.copyRows} copied rows in PostgreSQL, ${final.matched} matched to their statement records ` +
      `(${statements} statement records); ${load.acked.size} inserts acknowledged of ${load.stats.inserts} sent; ${load.stats.copies} COPYs started; ` +
      `${load.stats.reads} masked reads; ${repairs.length} log repairs; ${interrupted.length} sessions closed as interrupted`);

    expect(final.missing).toEqual([]);
    expect(final.rows).toBeGreaterThan(0);
    // What PostgreSQL acknowledged is there (the other direction: nothing recorded is lost).
    const inTable = new Set((await admin.query<{ id: string }>('SELECT id FROM crashw_rows')).rows.map((r) => r.id));
    expect([...load.acked].filter((id) => !inTable.has(id))).toEqual([]);
    expect(load.stats.reads).toBeGreaterThan(0);
    expect(load.stats.leaks).toBe(0);

    // One server.start per incarnation; the torn line was cut and the cut recorded.
    expect(recs.filter((r) => r['type'] === 'server.start')).toHaveLength(ROUNDS + 1);
    expect(repairs).toHaveLength(1);
    expect(repairs[0]).toMatchObject({ file: 'audit.jsonl', bytes: Buffer.byteLength(TORN_LOG) });

    // Every session is closed; an interrupted one's end is written at the next start, before its server.start.
    const ended = new Set(recs.filter((r) => r['type'] === 'session.end').map((r) => String(r['session'])));
    expect(recs.filter((r) => r['type'] === 'session.start' && !ended.has(String(r['session'])))).toEqual([]);
    expect(interrupted.length).toBeGreaterThan(0);
    for (const end of interrupted) {
      const next = recs.slice(Number(end['seq']) + 1).find((r) => r['type'] !== 'session.end');
      expect(next?.['type']).toBe('server.start');
      expect(end['recording']).toBeDefined();
    }
    const torn = interrupted.find((r) => r['session'] === tornSession);
    expect(torn?.['recording_cut']).toMatchObject({ bytes: Buffer.byteLength(TORN_RECORDING) });

    // The evidence as an auditor sees it: seals verify, sessions and replay say interrupted.
    const verify = await cli(['audit', 'verify', '--data-dir', dataDir()]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(new RegExp(`recordings\\s+${recs.filter((r) => r['type'] === 'session.end' && r['recording']).length} sealed, all match`));
    const sessions = await cli(['sessions', '--data-dir', dataDir(), '--since', '1h', '--limit', '1000']);
    expect(sessions.stdout.split('\n').filter((l) => /interrupted, recorded/.test(l))).toHaveLength(interrupted.length);
    const replay = await cli(['replay', tornSession!, '--data-dir', dataDir()]);
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toMatch(/interrupted: the server stopped without ending the session/);
    expect(replay.stdout).toMatch(/recording matches its seal/);
    const recordings = readdirSync(join(dataDir(), 'recordings'));
    expect(recordings.length).toBeGreaterThanOrEqual(interrupted.length);
  }, 180_000);
});
