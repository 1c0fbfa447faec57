// Half-open and idle peers through real processes: a `phigate connect` stopped with SIGSTOP (its
// socket stays open, nothing answers: a client vanished without a FIN) loses its session to the
// tunnel timeout; a stopped gateway makes the CLI close its local clients; a session idle inside a
// transaction past limits.idle_in_transaction_timeout is ended with FATAL 25P03 and rolled back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { auditRecords, gatewayCli, policyYaml, startGateway, type Gw } from '../support/harness.js';
import { pgClient } from '../support/clients.js';

const LIVENESS = `  tunnel_ping_interval: 200ms
  tunnel_timeout: 1s
`;
const RULES = `rules:
  - name: held-deletes
    when: { statement: [delete], tables: [peer_held] }
    action: approve
    approvers: [privacy-officers]
    timeout: 2s
default: allow
`;
/** The idle-in-transaction limit is off at first: the tunnel tests leave transactions open on purpose. */
const policy = (idle: string): string => `limits:\n  idle_in_transaction_timeout: ${idle}\n${LIVENESS}${RULES}`;

let gw: Gw;
let admin: pg.Client;

beforeAll(async () => {
  gw = await startGateway({ policy: policy('0') });
  admin = new pg.Client({ host: gw.pg.host, port: gw.pg.port, user: gw.pg.superuser.user, password: gw.pg.superuser.password, database: 'ehr' });
  await admin.connect();
  await admin.query(`DROP TABLE IF EXISTS peer_rows, peer_held; CREATE TABLE peer_rows (id int PRIMARY KEY);
    CREATE TABLE peer_held (id int); INSERT INTO peer_held VALUES (1); GRANT ALL ON peer_rows, peer_held TO PUBLIC`);
});
afterAll(async () => {
  await admin?.query('DROP TABLE IF EXISTS peer_rows, peer_held').catch(() => {});
  await admin?.end();
  await gw?.close();
});

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !(await check());) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The upstream backends of sessions opened with this application_name. */
async function backends(app: string): Promise<number> {
  return (await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [app])).rows[0].n as number;
}

async function committed(id: number): Promise<number> {
  return (await admin.query('SELECT count(*)::int AS n FROM peer_rows WHERE id = $1', [id])).rows[0].n as number;
}

/** The session.end record of the session opened with this application_name. */
function sessionEnd(app: string): Record<string, unknown> | undefined {
  const records = auditRecords(gw);
  const start = records.find((r) => r.type === 'session.start' && r.application_name === app);
  return start && records.find((r) => r.type === 'session.end' && r.session === start.session);
}

/** A node-postgres client whose asynchronous errors (a FATAL while idle, a cut connection) are kept. */
async function client(port: number, app: string): Promise<{ c: pg.Client; errors: (Error & { code?: string })[] }> {
  const c = pgClient(port, { application_name: app });
  const errors: (Error & { code?: string })[] = [];
  c.on('error', (e) => errors.push(e));
  await c.connect();
  return { c, errors };
}

describe('a peer that vanishes without a FIN', () => {
  it('a stopped `phigate connect`: the gateway ends its session at the tunnel timeout, closing its backend and rolling back', async () => {
    const cli = await gw.connect('ehr', await gw.token('alice'));
    const { c, errors } = await client(cli.port, 'peer-vanished');
    await c.query('BEGIN');
    await c.query('INSERT INTO peer_rows VALUES (1)');
    expect(await backends('peer-vanished')).toBe(1);
    cli.proc.kill('SIGSTOP');
    try {
      await until('session.end with reason "tunnel timeout"', () => sessionEnd('peer-vanished')?.reason === 'tunnel timeout');
      await until('the upstream backend to go', async () => (await backends('peer-vanished')) === 0);
      expect(await committed(1)).toBe(0);
      // The row lock went with the transaction: another session may write the same key at once.
      await admin.query('INSERT INTO peer_rows VALUES (1)');
      await admin.query('DELETE FROM peer_rows WHERE id = 1');
    } finally {
      cli.proc.kill('SIGCONT');
    }
    // Running again, the CLI finds the gateway's reason waiting, says it, and its client gets the FATAL.
    await until('the CLI to say why', () => /phigate: tunnel silent for \d+m?s \(limits\.tunnel_timeout: 1s\)/.test(cli.stderr()));
    await until('the client to see the FATAL', () => errors.length > 0);
    expect(errors[0]).toMatchObject({ code: '08006' });
    expect(errors[0]!.message).toMatch(/tunnel silent for .*the session was ended, any transaction rolled back/);
    expect(cli.stderr()).not.toMatch(/no answer from the gateway/);
    // The CLI itself lives on: a new connection through it works.
    const again = await client(cli.port, 'peer-vanished-again');
    expect((await again.c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await again.c.end();
  });

  it('a stopped gateway: the CLI closes its local client with a clear message; after the gateway resumes its session ends', async () => {
    const cli = await gw.connect('ehr', await gw.token('alice'));
    const { c, errors } = await client(cli.port, 'peer-server-stopped');
    expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    gw.server.proc.kill('SIGSTOP');
    try {
      await until('the CLI to give up on the gateway', () => /phigate: no answer from the gateway at http:\/\/127\.0\.0\.1:\d+ for \d+m?s; closed the client connection/.test(cli.stderr()));
      await until('the local client to be cut', () => errors.length > 0);
      await expect(c.query('SELECT 1')).rejects.toThrow();
      expect(cli.stderr()).not.toMatch(/was cut/);
    } finally {
      gw.server.proc.kill('SIGCONT');
    }
    // The gateway, running again, sees the tunnel closed and ends the session (not a timeout of its own).
    await until('the session to end', () => sessionEnd('peer-server-stopped') !== undefined);
    expect(sessionEnd('peer-server-stopped')!.reason).toBe('client closed');
    await until('the upstream backend to go', async () => (await backends('peer-server-stopped')) === 0);
    const again = await client(cli.port, 'peer-server-again');
    expect((await again.c.query('SELECT 2 AS two')).rows[0].two).toBe(2);
    await again.c.end();
  });
});

describe('limits.idle_in_transaction_timeout', () => {
  beforeAll(async () => {
    const file = join(gw.dir, 'idle.yaml');
    writeFileSync(file, policyYaml(gw.pg, gw.idp, 1, policy('1s')));
    const r = await gatewayCli(gw, 'root', ['policy', 'apply', file]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('ends a session idle inside a transaction with FATAL 25P03 naming the limit; its write is rolled back', async () => {
    const cli = await gw.connect('ehr', await gw.token('alice'));
    const { c, errors } = await client(cli.port, 'peer-idle-tx');
    await c.query('BEGIN');
    await c.query('INSERT INTO peer_rows VALUES (2)');
    await until('the idle session to be ended', () => errors.length > 0);
    expect(errors[0]).toMatchObject({ code: '25P03' });
    expect(errors[0]!.message).toBe('phigate: idle in transaction past limits.idle_in_transaction_timeout (1s); the transaction was rolled back');
    await until('the upstream backend to go', async () => (await backends('peer-idle-tx')) === 0);
    expect(await committed(2)).toBe(0);
    await until('session.end', () => sessionEnd('peer-idle-tx') !== undefined);
    expect(sessionEnd('peer-idle-tx')!.reason).toBe('idle in transaction timeout');
    await until('the CLI to say why', () => /phigate: idle in transaction past limits\.idle_in_transaction_timeout \(1s\)/.test(cli.stderr()));
  });

  it('does not end a session idle outside a transaction, nor one whose statement waits for approval', async () => {
    const cli = await gw.connect('ehr', await gw.token('alice'));
    const { c, errors } = await client(cli.port, 'peer-idle');
    await c.query('SELECT 1');
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await c.query('SELECT 3 AS three')).rows[0].three).toBe(3);
    // Inside a transaction, a DELETE held for approval waits 2s (past the 1s limit) and is refused
    // when nobody decides; the session lives on and the transaction is the client's to end.
    await c.query('BEGIN');
    await c.query('INSERT INTO peer_rows VALUES (3)');
    await expect(c.query('DELETE FROM peer_held WHERE id = 1')).rejects.toThrow(/no approver decided within 2s/);
    await c.query('ROLLBACK');
    expect(await committed(3)).toBe(0);
    expect((await c.query('SELECT 4 AS four')).rows[0].four).toBe(4);
    expect(errors).toEqual([]);
    expect(sessionEnd('peer-idle')).toBeUndefined();
    await c.end();
  });
});
