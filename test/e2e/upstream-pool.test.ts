// The upstream pool's isolation between sessions, with a pool of one connection so that identity A's
// backend is the one identity B gets next (checked by pg_backend_pid): nothing A left in the
// session (prepared statements, settings, temporary tables, LISTEN, advisory locks, cursors,
// sequence state, an open transaction) is visible to B; a connection left mid-COPY is not reused;
// masking follows the reader, not the backend; a cancel after release reaches nothing.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connect } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { serialize } from 'pg-protocol';
import pg from 'pg';
import { startGateway, type Gw } from '../support/harness.js';
import { pgClient, rawPg, runCmd } from '../support/clients.js';

// A database of its own: the pool reuses nothing where an extension with session state DISCARD ALL
// cannot clear is installed, and the attack suite installs dblink in the shared ehr database.
const POOL_DB = 'pool_ehr';

const POLICY = (port: number, role: string): string => `  pooled:
    upstream: postgres://${role}@127.0.0.1:${port}/${POOL_DB}
    password_env: EHR_DB_PASSWORD
    tls: disable
    allow_groups: [engineering, privacy-officers]
    pool: { size: 1 }
  unpooled:
    upstream: postgres://${role}@127.0.0.1:${port}/${POOL_DB}
    password_env: EHR_DB_PASSWORD
    tls: disable
    allow_groups: [engineering, privacy-officers]
    pool: false
masking:
  columns:
    - { column: pool_patients.ssn, strategy: partial, keep_last: 4 }
  unmasked_groups: [privacy-officers]
default: allow
`;

const SSN = '123-45-6789';

let gw: Gw;
let admin: pg.Client;
/** `phigate connect pooled` ports: olivia and bob see raw values, alice is a masked reader. */
const ports: Record<'olivia' | 'bob' | 'alice', number> = { olivia: 0, bob: 0, alice: 0 };

beforeAll(async () => {
  const info = inject('pg');
  const su = { host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password };
  const setup = new pg.Client({ ...su, database: 'postgres' });
  await setup.connect();
  try {
    await setup.query(`DROP DATABASE IF EXISTS ${POOL_DB} WITH (FORCE)`);
    await setup.query(`CREATE DATABASE ${POOL_DB}`);
  } finally {
    await setup.end();
  }
  gw = await startGateway({ policy: POLICY(info.port, info.roles.scram.user) });
  admin = new pg.Client({ ...su, database: POOL_DB });
  await admin.connect();
  await admin.query(`DROP TABLE IF EXISTS pool_patients, pool_t; DROP SEQUENCE IF EXISTS pool_seq;
    CREATE TABLE pool_patients (id int, ssn text); INSERT INTO pool_patients VALUES (1, '${SSN}');
    CREATE TABLE pool_t (v text); CREATE SEQUENCE pool_seq;
    GRANT ALL ON pool_patients, pool_t, pool_seq TO PUBLIC`);
  for (const who of ['olivia', 'bob', 'alice'] as const) ports[who] = (await gw.connect('pooled', await gw.token(who))).port;
}, 60_000);
afterAll(async () => {
  await admin?.end();
  await gw?.close();
});

async function session(who: keyof typeof ports): Promise<pg.Client> {
  const c = pgClient(ports[who], { user: who });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function pid(c: pg.Client): Promise<number> {
  return (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
}

async function one(c: pg.Client, sql: string): Promise<unknown> {
  const r = await c.query({ text: sql, rowMode: 'array' });
  return r.rows[0]?.[0];
}

/** Runs `a` as olivia, ends her session, then gives bob's next session on the same backend to `b`. */
async function aThenB(a: (c: pg.Client) => Promise<void>, b: (c: pg.Client) => Promise<void>): Promise<void> {
  const ca = await session('olivia');
  const pa = await pid(ca);
  try {
    await a(ca);
  } finally {
    await ca.end();
  }
  const cb = await session('bob');
  try {
    expect(await pid(cb)).toBe(pa);
    await b(cb);
  } finally {
    await cb.end();
  }
}

describe('upstream pool: nothing of one identity reaches the next', () => {
  it('prepared statements (SQL and protocol-level) are gone', async () => {
    await aThenB(async (a) => {
      await a.query('PREPARE a_stmt AS SELECT 1');
      await a.query({ name: 'a_named', text: 'SELECT 2' });
      expect(await one(a, 'SELECT count(*)::int FROM pg_prepared_statements')).toBe(2);
    }, async (b) => {
      expect(await one(b, 'SELECT count(*)::int FROM pg_prepared_statements')).toBe(0);
    });
  });

  it('settings (SET, set_config, custom ones) are back to their defaults', async () => {
    const defaults = await session('bob');
    const workMem = await one(defaults, 'SHOW work_mem');
    await defaults.end();
    await aThenB(async (a) => {
      await a.query("SET work_mem = '7MB'");
      await a.query("SELECT set_config('phigate_test.secret', 'olivia-secret', false)");
      await a.query("SET search_path = pg_temp, public");
    }, async (b) => {
      expect(await one(b, 'SHOW work_mem')).toBe(workMem);
      expect(await one(b, "SELECT coalesce(current_setting('phigate_test.secret', true), '')")).toBe('');
      expect(await one(b, 'SHOW search_path')).toBe('"$user", public');
      expect(await one(b, 'SHOW application_name')).not.toBe('phigate-pool');
    });
  });

  it('temporary tables are dropped', async () => {
    await aThenB(async (a) => {
      await a.query("CREATE TEMP TABLE a_tmp AS SELECT 'olivia-secret'::text AS s");
    }, async (b) => {
      expect(await one(b, "SELECT count(*)::int FROM pg_class WHERE relname = 'a_tmp'")).toBe(0);
    });
  });

  it('LISTEN registrations end: a NOTIFY after release reaches nobody', async () => {
    await aThenB(async (a) => {
      await a.query('LISTEN a_chan');
    }, async (b) => {
      const heard: string[] = [];
      b.on('notification', (n) => heard.push(n.channel));
      expect(await one(b, 'SELECT count(*)::int FROM pg_listening_channels()')).toBe(0);
      await admin.query('NOTIFY a_chan');
      await b.query('SELECT 1');
      await new Promise((r) => setTimeout(r, 200));
      await b.query('SELECT 1');
      expect(heard).toEqual([]);
    });
  });

  it('session advisory locks are released', async () => {
    await aThenB(async (a) => {
      await a.query('SELECT pg_advisory_lock(4242)');
    }, async (b) => {
      const held = await admin.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242");
      expect(held.rows[0].n).toBe(0);
      expect(await one(b, 'SELECT pg_try_advisory_lock(4242)')).toBe(true);
    });
  });

  it('cursors WITH HOLD are closed', async () => {
    await aThenB(async (a) => {
      await a.query('DECLARE a_cur CURSOR WITH HOLD FOR SELECT ssn FROM pool_patients');
    }, async (b) => {
      expect(await one(b, 'SELECT count(*)::int FROM pg_cursors')).toBe(0);
    });
  });

  it('sequence state (currval, lastval) is forgotten', async () => {
    await aThenB(async (a) => {
      await a.query("SELECT nextval('pool_seq')");
    }, async (b) => {
      await expect(b.query("SELECT currval('pool_seq')")).rejects.toMatchObject({ code: '55000' });
    });
  });

  it('a session ended inside a transaction leaves no transaction open and nothing of it committed', async () => {
    await aThenB(async (a) => {
      await a.query('BEGIN');
      await a.query("INSERT INTO pool_t VALUES ('uncommitted')");
    }, async (b) => {
      expect(await one(b, 'SELECT count(*)::int FROM pool_t')).toBe(0);
      const open = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND usename = $1", [gw.pg.roles.scram.user]);
      expect(open.rows[0].n).toBe(0);
    });
  });

  it('a connection left in the middle of COPY FROM STDIN is closed, not reused', async () => {
    const raw = await rawPg(ports.olivia);
    raw.send(serialize.query('COPY pool_t FROM STDIN'));
    for (let i = 0; i < 200 && !raw.received().includes(Buffer.from([0x47])); i++) await new Promise((r) => setTimeout(r, 25));
    const copying = await admin.query("SELECT pid FROM pg_stat_activity WHERE query = 'COPY pool_t FROM STDIN'");
    expect(copying.rows).toHaveLength(1);
    const copyPid = copying.rows[0].pid as number;
    raw.close();
    const b = await session('bob');
    try {
      expect(await pid(b)).not.toBe(copyPid);
      expect(await one(b, 'SELECT count(*)::int FROM pool_t')).toBe(0);
    } finally {
      await b.end();
    }
    const left = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [copyPid]);
    expect(left.rows[0].n).toBe(0);
  });

  it('masking follows the reader: masked after unmasked and unmasked after masked on the same backend', async () => {
    const o1 = await session('olivia');
    const backend = await pid(o1);
    expect(await one(o1, 'SELECT ssn FROM pool_patients')).toBe(SSN);
    // Raw values left in session state for whoever comes next.
    await o1.query('CREATE TEMP TABLE raw_copy AS SELECT ssn FROM pool_patients');
    await o1.end();
    const a = await session('alice');
    try {
      expect(await pid(a)).toBe(backend);
      const masked = await one(a, 'SELECT ssn FROM pool_patients');
      expect(masked).not.toBe(SSN);
      expect(String(masked)).toMatch(/6789$/);
      expect(await one(a, "SELECT count(*)::int FROM pg_class WHERE relname = 'raw_copy'")).toBe(0);
    } finally {
      await a.end();
    }
    const o2 = await session('olivia');
    expect(await pid(o2)).toBe(backend);
    expect(await one(o2, 'SELECT ssn FROM pool_patients')).toBe(SSN);
    await o2.end();
  });

  it('a cancel with a released session\'s key does not cancel the next session\'s statement', async () => {
    const a = await session('olivia');
    const backend = await pid(a);
    const key = { pid: (a as unknown as { processID: number }).processID, secret: (a as unknown as { secretKey: number }).secretKey };
    await a.end();
    const b = await session('bob');
    expect(await pid(b)).toBe(backend);
    // Settled at once into a value: a rejection must not sit unhandled while the test waits.
    const running = b.query('SELECT pg_sleep(1.5) AS done').then(() => 'done', (e: unknown) => e);
    for (let i = 0; i < 100; i++) {
      const r = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [backend]);
      if (r.rows[0].n === 1) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    await cancelRequest(ports.olivia, key.pid, key.secret);
    expect(await running).toBe('done');
    // The holder's own key still cancels its statement.
    const mine = { pid: (b as unknown as { processID: number }).processID, secret: (b as unknown as { secretKey: number }).secretKey };
    const long = b.query('SELECT pg_sleep(30)').then(() => 'done', (e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    await cancelRequest(ports.bob, mine.pid, mine.secret);
    expect(await long).toMatchObject({ code: '57014' });
    await b.end();
  });

  it('pgbench -C reuses the pooled connection: one backend for every session', async () => {
    const script = `${gw.dir}/select1.sql`;
    writeFileSync(script, 'SELECT 1;\n');
    const r = await runCmd('pgbench', ['-n', '-C', '-c', '1', '-t', '20', '-f', script, '-h', '127.0.0.1', '-p', String(ports.bob), '-U', 'bob', 'ehr'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    const count = (name: string): number => Number(new RegExp(`^${name}\\{connection="pooled"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? NaN);
    expect(count('phigate_upstream_pool_opened_total')).toBeLessThanOrEqual(2);
    expect(count('phigate_upstream_pool_reused_total')).toBeGreaterThanOrEqual(20);
    expect(count('phigate_upstream_pool_reset_failures_total')).toBe(0);
  });

  it('a policy change of the connection drains its pool: the idle backend closes, the next session gets a new one', async () => {
    const before = await session('bob');
    const old = await pid(before);
    await before.end();
    const text = readFileSync(gw.policyFile, 'utf8');
    writeFileSync(gw.policyFile, text.replace('pool: { size: 1 }', 'pool: { size: 1, idle_timeout: 5m }'));
    gw.server.proc.kill('SIGHUP');
    for (let i = 0; i < 100 && !/policy activated.*source=sighup/.test(gw.server.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    const after = await session('bob');
    try {
      expect(await pid(after)).not.toBe(old);
    } finally {
      await after.end();
    }
    const left = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [old]);
    expect(left.rows[0].n).toBe(0);
  });

  it('a client\'s startup parameters apply to its session on a pooled connection; an invalid one is refused as PostgreSQL refuses it', async () => {
    const conninfo = `host=127.0.0.1 port=${ports.bob} dbname=ehr user=bob`;
    const ok = await runCmd('psql', [conninfo, '-X', '-tA', '-c', 'SHOW DateStyle', '-c', 'SHOW application_name'],
      { env: { PGDATESTYLE: 'German', PGAPPNAME: 'agent-7' } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim().split('\n')).toEqual(['German, DMY', 'agent-7']);
    const bad = await runCmd('psql', [conninfo, '-X', '-tA', '-c', 'SELECT 1'], { env: { PGDATESTYLE: 'bogus' } });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/invalid value for parameter "DateStyle"/i);
    // The next session starts from the defaults, not from the previous session's parameters.
    const next = await runCmd('psql', [conninfo, '-X', '-tA', '-c', 'SHOW DateStyle'], {});
    expect(next.stdout.trim()).toBe('ISO, MDY');
  });

  it('with pool: false each session gets its own backend, closed at its end', async () => {
    const port = (await gw.connect('unpooled', await gw.token('bob'))).port;
    const pids: number[] = [];
    for (let i = 0; i < 2; i++) {
      const c = pgClient(port, { user: 'bob' });
      await c.connect();
      pids.push(await pid(c));
      await c.end();
    }
    expect(pids[0]).not.toBe(pids[1]);
  });

  it('with dblink installed nothing is reused (its connections outlive DISCARD ALL), said once in the log', async () => {
    await admin.query('CREATE EXTENSION IF NOT EXISTS dblink');
    try {
      const pids: number[] = [];
      for (let i = 0; i < 3; i++) {
        const c = await session('olivia');
        pids.push(await pid(c));
        await c.end();
      }
      expect(new Set(pids).size).toBe(3);
      expect(gw.server.stderr().match(/are not reused while one of dblink/g)).toHaveLength(1);
    } finally {
      await admin.query('DROP EXTENSION IF EXISTS dblink');
    }
  });
});

function cancelRequest(port: number, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write(serialize.cancel(processId, secretKey)));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}
