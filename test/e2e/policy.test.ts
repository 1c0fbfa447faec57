// Statement policy through the real gateway: blocked statements fail with 42501 naming the rule,
// nothing blocked ever reaches the database, and clients (psql, node-postgres) stay consistent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { startGateway, type Gw } from '../support/harness.js';
import { pgClient, psql, rawPg } from '../support/clients.js';
import { expectTools } from '../support/expect-tools.js';

// Some tests run psql through `phigate exec`: without it they fail, and this names the package.
expectTools('psql');

const RULES = `rules:
  - name: no-ddl
    when: { statement: [drop, truncate, alter, grant, revoke] }
    action: block
    message: DDL is not allowed through phigate
  - name: no-file-access
    when: { functions: [pg_read_file, pg_ls_dir] }
    action: block
  - name: agents-read-only
    when: { identity_kind: [agent], statement: [write] }
    action: block
    message: agents may only read
default: allow
`;

let gw: Gw;
let port: number;
let admin: pg.Client;

beforeAll(async () => {
  gw = await startGateway({ policy: RULES });
  port = (await gw.connect('ehr', await gw.token('alice'))).port;
  admin = new pg.Client({ host: gw.pg.host, port: gw.pg.port, user: gw.pg.superuser.user, password: gw.pg.superuser.password, database: 'ehr' });
  await admin.connect();
  await admin.query('DROP TABLE IF EXISTS pol_t; CREATE TABLE pol_t (id int); GRANT ALL ON pol_t TO PUBLIC; INSERT INTO pol_t VALUES (1)');
});
afterAll(async () => {
  await admin?.end();
  await gw?.close();
});

const tableExists = async (): Promise<boolean> =>
  (await admin.query("SELECT to_regclass('public.pol_t') IS NOT NULL AS e")).rows[0].e as boolean;

describe('blocked statements', () => {
  it('psql: DROP is refused with 42501 naming the rule, and the table is still there', async () => {
    const r = await psql(port, ['-v', 'VERBOSITY=verbose', '-c', 'DROP TABLE pol_t']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR: +42501: phigate: blocked by rule "no-ddl": DDL is not allowed through phigate/);
    expect(r.stderr).not.toMatch(/PHIGATE_REFUSED/);
    expect(await tableExists()).toBe(true);
  });

  it('a multi-statement query with one blocked part runs no part of it', async () => {
    const r = await psql(port, ['-c', 'INSERT INTO pol_t VALUES (2); DROP TABLE pol_t']);
    expect(r.stderr).toMatch(/blocked by rule "no-ddl"/);
    expect(await tableExists()).toBe(true);
    expect((await admin.query('SELECT count(*)::int AS n FROM pol_t WHERE id = 2')).rows[0].n).toBe(0);
  });

  it('comments and string literals do not count', async () => {
    const r = await psql(port, ['-tA', '-c', "/* DROP TABLE pol_t */ SELECT 'DROP TABLE pol_t' AS s"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('DROP TABLE pol_t');
  });

  it('an unparseable statement is refused by phigate itself (fail closed)', async () => {
    const r = await psql(port, ['-v', 'VERBOSITY=verbose', '-c', 'SELEC 1']);
    expect(r.stderr).toMatch(/42601: phigate: cannot classify this statement, so it was not run: syntax error at or near "SELEC"/);
  });

  it('inside a transaction, a blocked statement aborts it as a real error would; ROLLBACK recovers', async () => {
    const script = 'BEGIN;\nINSERT INTO pol_t VALUES (3);\nTRUNCATE pol_t;\nSELECT 1;\nROLLBACK;\nSELECT count(*) AS n FROM pol_t;\n';
    const r = await psql(port, ['-tA', '-v', 'ON_ERROR_STOP=0', '-f', '-'], { input: script });
    expect(r.stderr).toMatch(/blocked by rule "no-ddl"/);
    expect(r.stderr).toMatch(/current transaction is aborted/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1');
  });

  it('node-postgres (extended protocol): a blocked Parse fails with 42501, the connection goes on', async () => {
    const c = pgClient(port);
    await c.connect();
    try {
      // pg_read_file is withheld by the server-access baseline before the rule is consulted.
      await expect(c.query('SELECT pg_read_file($1)', ['/etc/passwd'])).rejects.toMatchObject({
        code: '42501', message: 'phigate: pg_read_file() reaches files on the database server; the server-access baseline allows it only for groups listed under server_access.files in the policy',
      });
      await c.query('BEGIN');
      await expect(c.query({ name: 'dropper', text: 'DROP TABLE pol_t', values: [] })).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      await c.query('ROLLBACK');
      const r = await c.query('SELECT $1::int + 1 AS v', [41]);
      expect(r.rows[0].v).toBe(42);
      expect(await tableExists()).toBe(true);
    } finally {
      await c.end();
    }
  });

  it('agent sessions (exec --name) are decided as agents', async () => {
    const { run } = await import('../support/harness.js');
    const p = run(['exec', '--server', gw.url, '--name', 'claude', '--connection', 'ehr', '--', 'psql', '-X', '-c', 'INSERT INTO pol_t VALUES (9)'],
      { PHIGATE_TOKEN: await gw.token('agent') });
    expect((await p.exited).code).not.toBe(0);
    expect(p.stderr()).toMatch(/blocked by rule "agents-read-only": agents may only read/);
    expect((await admin.query('SELECT count(*)::int AS n FROM pol_t WHERE id = 9')).rows[0].n).toBe(0);
  });
});

describe('settings that would let a statement be read differently', () => {
  it('ends a session that turns standard_conforming_strings off', async () => {
    const r = await psql(port, ['-c', 'SET standard_conforming_strings = off', '-c', 'SELECT 1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/standard_conforming_strings was set to off; phigate reads statements as UTF-8/);
  });

  it('ends a session that switches to a client encoding that is not ASCII-safe', async () => {
    const c = pgClient(port);
    await c.connect();
    c.on('error', () => {});
    await expect(c.query("SET client_encoding = 'SJIS'")).rejects.toThrow(/client_encoding was set to SJIS/);
    await c.end().catch(() => {});
  });

  it('allows harmless encodings such as LATIN1 and SQL_ASCII', async () => {
    const r = await psql(port, ['-tA', '-c', "SET client_encoding = 'LATIN1'", '-c', "SET client_encoding = 'SQL_ASCII'", '-c', 'SELECT 7']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['SET', 'SET', '7']);
  });
});

describe('pipelined settings changes', () => {
  it('a statement pipelined behind SET standard_conforming_strings = off never reaches the database', async () => {
    await admin.query('DROP TABLE IF EXISTS smuggle_t; CREATE TABLE smuggle_t (id int); GRANT ALL ON smuggle_t TO PUBLIC; INSERT INTO smuggle_t VALUES (1), (2)');
    const c = await rawPg(port);
    const q = (sql: string): Buffer => serialize.query(sql);
    // One write: to a reader with standard_conforming_strings on, the second query is one SELECT.
    c.send(Buffer.concat([q('SET standard_conforming_strings = off'), q("SELECT 'x\\' , $$'; DELETE FROM smuggle_t; -- $$")]));
    await Promise.race([c.closed, new Promise((r) => setTimeout(r, 5000))]);
    c.close();
    const received = c.received();
    expect(received.toString('latin1')).toMatch(/standard_conforming_strings was set to off/);
    expect((await admin.query('SELECT count(*)::int AS n FROM smuggle_t')).rows[0].n).toBe(2);
  });

  it('a Query pipelined after SET standard_conforming_strings = off run by Execute, before its Sync, never reaches the database', async () => {
    await admin.query('DROP TABLE IF EXISTS smuggle_e; CREATE TABLE smuggle_e (id int); GRANT ALL ON smuggle_e TO PUBLIC; INSERT INTO smuggle_e VALUES (1), (2)');
    const c = await rawPg(port);
    // PostgreSQL applies the SET at the Execute but reports it only with the Sync's ReadyForQuery.
    c.send(Buffer.concat([
      serialize.parse({ text: 'SET standard_conforming_strings = off' }), serialize.bind({}), serialize.execute({}),
      serialize.query("SELECT 'x\\' , $$'; DELETE FROM smuggle_e; -- $$"), serialize.sync(),
    ]));
    await c.readyForQuery(2);
    // Refused in place: its error aborts the batch's transaction, so the SET is rolled back too.
    expect(c.received().toString('latin1')).toMatch(/0A000.*must follow its Sync; it was not run/);
    c.send(serialize.query('SHOW standard_conforming_strings'));
    await c.readyForQuery(3);
    c.close();
    expect(c.received().toString('latin1')).toMatch(/D\0\0\0\f\0\x01\0\0\0\x02on/);
    expect((await admin.query('SELECT count(*)::int AS n FROM smuggle_e')).rows[0].n).toBe(2);
  });
});
