// Session limits before PostgreSQL's: an identity's and a connection's session ceilings answered as
// a 53300 ErrorResponse naming the limit, recorded as session.refused, and counts that return to zero
// after refused sessions, failed upstream connects, killed sessions and dropped tunnels.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { auditRecords, gatewayCli, startGateway, type Gw, type Proc } from '../support/harness.js';
import { pgClient, psql } from '../support/clients.js';

// The text continues the harness policy's connections: \`small\` holds at most 1 session whoever
// holds it; every identity at most 2.
const POLICY = (port: number): string => `  small:
    upstream: postgres://phigate_md5@127.0.0.1:${port}/ehr
    password_env: EHR_MD5_PASSWORD
    tls: disable
    allow_groups: [engineering]
    max_sessions: 1
limits:
  sessions_per_identity: 2
default: allow
`;

let gw: Gw;
let aliceCli: Proc;
let alice: number;
let olivia: number;
beforeAll(async () => {
  // The extra text continues the last connection (broken) in the harness policy, then sets limits.
  gw = await startGateway({ policy: POLICY(inject('pg').port) });
}, 60_000);
afterAll(async () => gw?.close());

async function open(port: number, user = 'alice'): Promise<pg.Client> {
  const c = pgClient(port, { user });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function refusal(port: number, user = 'alice'): Promise<{ code?: string; message: string; hint?: string }> {
  const c = pgClient(port, { user });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    return err as { code?: string; message: string; hint?: string };
  } finally {
    await c.end().catch(() => {});
  }
  throw new Error('the session was admitted');
}

describe('session limits', () => {
  beforeAll(async () => {
    const cli = await gw.connect('ehr', await gw.token('alice'));
    aliceCli = cli;
    alice = cli.port;
    olivia = (await gw.connect('ehr', await gw.token('olivia'))).port;
  });

  it('refuses the third session of an identity with 53300 naming the limit, and records it', async () => {
    const held = [await open(alice), await open(alice)];
    try {
      const err = await refusal(alice);
      expect(err.code).toBe('53300');
      expect(err.message).toMatch(/^phigate: too many sessions for alice[^:]*: 2 open, at most 2 \(limits\.sessions_per_identity\)$/);
      expect(err.hint).toContain('limits.sessions_per_identity');
      // `phigate connect` says it on its stderr too.
      for (let i = 0; i < 50 && !/too many sessions/.test(aliceCli.stderr()); i++) await new Promise((r) => setTimeout(r, 100));
      expect(aliceCli.stderr()).toMatch(/^phigate: too many sessions for alice[^:]*: 2 open, at most 2 \(limits\.sessions_per_identity\)$/m);
      // psql shows it as a normal connection error.
      const p = await psql(alice, ['-c', 'select 1']);
      expect(p.code).toBe(2);
      expect(p.stderr).toMatch(/FATAL: +phigate: too many sessions for alice.*\(limits\.sessions_per_identity\)/);
      // Another identity is not affected.
      const o = await open(olivia, 'olivia');
      expect((await o.query('select 7 as n')).rows[0].n).toBe(7);
      await o.end();
    } finally {
      await Promise.all(held.map((c) => c.end()));
    }
    const refused = auditRecords(gw).filter((r) => r['type'] === 'session.refused');
    expect(refused.length).toBeGreaterThanOrEqual(2);
    expect(refused.at(-1)).toMatchObject({ connection: 'ehr', code: '53300', limit: 'limits.sessions_per_identity' });
    const search = await gatewayCli(gw, 'carol', ['audit', 'search', '--type', 'session.refused']);
    expect(search.code).toBe(0);
    expect(search.stdout).toContain('session.refused');
    expect(search.stdout).toContain('limits.sessions_per_identity');
    const verify = await gatewayCli(gw, 'carol', ['audit', 'verify']);
    expect(verify.code).toBe(0);
  });

  it('refuses a session past the connection\'s max_sessions, naming that key', async () => {
    const a = await open((await gw.connect('small', await gw.token('alice'))).port);
    try {
      const o = (await gw.connect('small', await gw.token('olivia'))).port;
      const err = await refusal(o, 'olivia');
      expect(err.code).toBe('53300');
      expect(err.message).toBe('phigate: too many sessions on connection "small": 1 open, at most 1 (connections.small.max_sessions)');
    } finally {
      await a.end();
    }
  });

  it('gives every place back: after refused, failed, killed and dropped sessions an identity opens its 2 again', async () => {
    // Refused: many at once over the limit.
    const held = [await open(alice), await open(alice)];
    const errs = await Promise.all(Array.from({ length: 12 }, () => refusal(alice)));
    expect(new Set(errs.map((e) => e.code))).toEqual(new Set(['53300']));
    await Promise.all(held.map((c) => c.end()));
    // Failed upstream connects (the `broken` connection's database is a closed port).
    const broken = (await gw.connect('broken', await gw.token('alice'))).port;
    const failed: { code?: string; message: string }[] = [];
    for (let i = 0; i < 6; i++) failed.push(await refusal(broken));
    for (const e of failed) {
      expect(e.code).toBe('08001');
      expect(e.message).toMatch(/^phigate could not connect to the database of "broken": connection refused \(ECONNREFUSED\)$/);
    }
    // Killed from the database side while open.
    const k = await open(alice);
    const pid = (await k.query('select pg_backend_pid() as pid')).rows[0].pid as number;
    const ended = new Promise<void>((r) => k.once('end', () => r()));
    const admin = new pg.Client({ host: gw.pg.host, port: gw.pg.port, user: gw.pg.superuser.user, password: gw.pg.superuser.password, database: 'ehr' });
    await admin.connect();
    await admin.query('select pg_terminate_backend($1)', [pid]);
    await admin.end();
    await ended;
    // Tunnel dropped: the `phigate connect` process killed with both its sessions open.
    const doomed = await gw.connect('ehr', await gw.token('alice'));
    const orphans = [await open(doomed.port), await open(doomed.port)];
    const orphansEnded = Promise.all(orphans.map((c) => new Promise<void>((r) => c.once('end', () => r()))));
    doomed.proc.kill('SIGKILL');
    await orphansEnded;
    // The gateway notices the closed tunnels and their backends; each place comes back.
    const again: pg.Client[] = [];
    for (let attempt = 0; again.length < 2 && attempt < 100; attempt++) {
      try {
        again.push(await open(alice));
      } catch (err) {
        expect((err as { code?: string }).code).toBe('53300');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(again.length).toBe(2);
    const rows = await Promise.all(again.map(async (c) => (await c.query('select 1 as one')).rows[0].one));
    expect(rows).toEqual([1, 1]);
    // ...and no more than 2.
    expect((await refusal(alice)).code).toBe('53300');
    await Promise.all(again.map((c) => c.end()));
  });
});
