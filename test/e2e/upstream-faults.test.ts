// An unreachable, silent, misconfigured, full, stopping or restarted database, on a PostgreSQL of
// this file's own: every client gets one ErrorResponse naming the connection and the cause (never a
// hang, never the gateway's credentials), live sessions end with their evidence, and new sessions,
// masked readers included, work again once the database is back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { startTestPostgres, type StartedPostgres } from '../support/postgres.js';
import { auditRecords, startGateway, type Gw } from '../support/harness.js';
import { pgClient, psql } from '../support/clients.js';

let db: StartedPostgres;
let silent: Server;
const silentSockets: Socket[] = [];
let gw: Gw;
let port: number;
const ROLE = 'phigate_scram';
const WRONG = 'Wr0ng-pw-4-test';

const MASKING = `masking:
  columns:
    - { column: fpatients.ssn, strategy: partial, keep_last: 4 }
  unmasked_groups: [privacy-officers]
`;

beforeAll(async () => {
  db = await startTestPostgres({ flags: ['-c', 'max_connections=12', '-c', 'superuser_reserved_connections=0'] });
  silent = createServer((s) => {
    silentSockets.push(s); // accepted, never answered
    s.on('error', () => {});
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const silentPort = (silent.address() as { port: number }).port;
  const admin = await adminClient();
  await admin.query(`CREATE TABLE fpatients (id int, ssn text); INSERT INTO fpatients VALUES (1, '123-45-6789');
    CREATE VIEW fview AS SELECT id, 'nothing'::text AS x FROM fpatients; GRANT ALL ON fpatients, fview TO PUBLIC`);
  await admin.end();
  // Continues the harness policy's connections with a silent database and a wrong password.
  gw = await startGateway({
    pg: db.info,
    serverEnv: { WRONG_PW: WRONG },
    policy: `  silent:
    upstream: postgres://nobody@127.0.0.1:${silentPort}/nothing
    tls: disable
    allow_groups: [engineering]
  wrongpw:
    upstream: postgres://${ROLE}@127.0.0.1:${db.info.port}/ehr
    password_env: WRONG_PW
    tls: disable
    allow_groups: [engineering]
limits:
  upstream_connect_timeout: 3s
${MASKING}default: allow
`,
  });
  port = (await gw.connect('ehr', await gw.token('alice'))).port;
}, 120_000);

afterAll(async () => {
  await gw?.close();
  for (const s of silentSockets) s.destroy();
  silent?.close();
  await db?.stop();
});

function adminClient(): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: db.info.port, user: db.info.superuser.user, password: db.info.superuser.password, database: 'ehr' });
  c.on('error', () => {});
  return c.connect().then(() => c);
}

interface PgError { code?: string; message: string; hint?: string; detail?: string }

/** Opens a session through `phigate connect` on `p` expecting it to be refused; its error. */
async function refused(p: number): Promise<PgError> {
  const c = pgClient(p, { connectionTimeoutMillis: 30_000 });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    return err as PgError;
  } finally {
    await c.end().catch(() => {});
  }
  throw new Error('the session was admitted');
}

async function portOf(connection: string): Promise<number> {
  return (await gw.connect(connection, await gw.token('alice'))).port;
}

describe('upstream faults', () => {
  it('a closed port: 08001 naming the connection and "connection refused"', async () => {
    const e = await refused(await portOf('broken'));
    expect(e.code).toBe('08001');
    expect(e.message).toBe('phigate could not connect to the database of "broken": connection refused (ECONNREFUSED)');
    expect(e.hint).toMatch(/down or restarting/);
  });

  it('a database that accepts and never answers: 08001 after limits.upstream_connect_timeout, not a hang', async () => {
    const e = await refused(await portOf('silent'));
    expect(e.code).toBe('08001');
    expect(e.message).toMatch(/^phigate could not connect to the database of "silent": timed out after 3000 ms .*\(limits\.upstream_connect_timeout\)$/);
    expect(silentSockets.length).toBeGreaterThan(0);
  });

  it('a wrong password: 08004, the operator\'s problem, without role or password', async () => {
    const p = await portOf('wrongpw');
    const e = await refused(p);
    expect(e.code).toBe('08004');
    expect(e.message).toBe('phigate could not authenticate to the database of "wrongpw"; ask the operator');
    expect(JSON.stringify(e)).not.toContain(ROLE);
    expect(JSON.stringify(e)).not.toContain(WRONG);
    const q = await psql(p, ['-c', 'select 1']);
    expect(q.stderr).toMatch(/FATAL: +phigate could not authenticate to the database of "wrongpw"; ask the operator/);
    const rec = auditRecords(gw).filter((r) => r['type'] === 'session.refused' && r['connection'] === 'wrongpw');
    expect(rec.length).toBeGreaterThan(0);
    expect(rec[0]).toMatchObject({ code: '08004' });
    expect(JSON.stringify(rec)).not.toContain(ROLE);
  });

  it('PostgreSQL\'s max_connections reached: its 53300 passed on, naming the connection and max_sessions', async () => {
    const fillers: pg.Client[] = [];
    try {
      // Take every slot left (the gateway's catalog watch holds one).
      let full: PgError | undefined;
      for (let i = 0; i < 20 && !full; i++) {
        try {
          fillers.push(await adminClient());
        } catch (err) {
          full = err as PgError;
        }
      }
      expect(full?.code).toBe('53300');
      const e = await refused(port);
      expect(e.code).toBe('53300');
      expect(e.message).toBe('phigate could not connect to the database of "ehr": the database has no free connection slot (PostgreSQL answered 53300, too many connections)');
      expect(e.hint).toContain('connections.ehr.max_sessions');
      expect(e.detail).toMatch(/^PostgreSQL: /);
    } finally {
      await Promise.all(fillers.map((c) => c.end()));
    }
  });

  it('a database shutting down (smart): 57P03 with a hint to try again', async () => {
    const holder = await adminClient();
    const down = db.shutdown('smart');
    try {
      // New connections are refused while the holder keeps the server up.
      let e: PgError | undefined;
      for (let i = 0; i < 50 && e?.code !== '57P03'; i++) {
        e = await refused(port).catch((err: Error) => ({ message: err.message }));
        if (e.code !== '57P03') await new Promise((r) => setTimeout(r, 100));
      }
      expect(e?.code).toBe('57P03');
      expect(e?.message).toBe('phigate could not connect to the database of "ehr": the database is not accepting connections now');
      expect(e?.detail).toBe('PostgreSQL: the database system is shutting down');
      expect(e?.hint).toMatch(/try again in a few seconds/);
    } finally {
      await holder.end();
      await down;
      await db.restart();
    }
  });

  it('PostgreSQL restarted under live sessions: they end with a clear error and their evidence; new sessions and masked readers work', async () => {
    const live: pg.Client[] = [];
    const errors: PgError[][] = [];
    for (let i = 0; i < 3; i++) {
      const c = pgClient(port);
      const mine: PgError[] = [];
      errors.push(mine);
      c.on('error', (err) => mine.push(err as PgError));
      await c.connect();
      expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
      live.push(c);
    }
    const ended = Promise.all(live.map((c) => new Promise<void>((r) => c.once('end', () => r()))));
    await db.shutdown('fast');
    await ended;
    for (const mine of errors) {
      // PostgreSQL's own admin-shutdown error, passed through, and nothing of the gateway's after it
      // (node-postgres adds its own "terminated unexpectedly" for any server-side close).
      expect(mine[0]?.code).toBe('57P01');
      expect(mine[0]?.message).toMatch(/terminating connection due to administrator command/);
      expect(mine.filter((e) => e.code !== undefined).length).toBe(1);
    }
    // Down: a new session is told so, at once.
    const downErr = await refused(port);
    expect(downErr).toMatchObject({ code: '08001', message: 'phigate could not connect to the database of "ehr": connection refused (ECONNREFUSED)' });
    await db.restart();

    // Every session that started has its session.end.
    const recs = auditRecords(gw);
    const started = recs.filter((r) => r['type'] === 'session.start').map((r) => r['session']);
    const ends = recs.filter((r) => r['type'] === 'session.end');
    const endedIds = new Set(ends.map((r) => r['session']));
    expect(ends.filter((r) => r['reason'] === 'the database ended the session').length).toBe(3);
    expect(started.length).toBeGreaterThanOrEqual(3);
    expect(started.filter((s) => !endedIds.has(s))).toEqual([]);

    // New sessions work; alice is a masked reader.
    const c = pgClient(port);
    c.on('error', () => {});
    await c.connect();
    const ssn = (await c.query('select ssn from fpatients')).rows[0].ssn as string;
    expect(ssn).not.toBe('123-45-6789');
    expect(ssn).toMatch(/6789$/);
    await c.end();

    // The catalog watch came back: a view replaced outside the gateway after the restart is read masked.
    const admin = await adminClient();
    await admin.query('CREATE OR REPLACE VIEW fview AS SELECT id, ssn AS x FROM fpatients');
    await admin.end();
    let x = '';
    for (let i = 0; i < 100 && !/^\*.*6789$/.test(x); i++) {
      await new Promise((r) => setTimeout(r, 200));
      const v = pgClient(port);
      v.on('error', () => {});
      await v.connect();
      x = (await v.query('select x from fview')).rows[0].x as string;
      await v.end();
      expect(x).not.toBe('123-45-6789');
    }
    expect(x).toMatch(/6789$/);
  });
});
