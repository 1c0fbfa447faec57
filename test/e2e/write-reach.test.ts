// Issue 11, deliverables 5 and 6, through the real gateway: writes that reach a protected table
// through a view, a partition, a DO ALSO rule or a volatile function meet the table's approval rule
// (before, they ran without approval: rules matched the names written only); the server-access
// baseline refuses COPY ... PROGRAM and server files for everyone but the groups the policy names;
// and `phigate server` warns about a superuser upstream role, not about a plain one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startGateway, type Gw } from '../support/harness.js';
import { psql, type CmdResult } from '../support/clients.js';

// A 1s approval timeout: a held statement fails with "no approver decided" after a second, and was not run.
const POLICY = `rules:
  - name: phi-writes
    when: { statement: [update, delete], tables: [wr_patients] }
    action: approve
    approvers: [privacy-officers]
    timeout: 1s
functions:
  - { name: public.wr_lookup, read_only: true }
server_access:
  programs: [privacy-officers]
default: allow
`;

const SETUP = `
DROP VIEW IF EXISTS wr_fresh_v, wr_patients_v;
DROP TABLE IF EXISTS wr_patients, wr_inbox CASCADE;
DROP FUNCTION IF EXISTS wr_touch(), wr_lookup();
CREATE TABLE wr_patients (id int, name text) PARTITION BY RANGE (id);
CREATE TABLE wr_patients_low PARTITION OF wr_patients FOR VALUES FROM (0) TO (100);
CREATE TABLE wr_patients_high PARTITION OF wr_patients FOR VALUES FROM (100) TO (1000);
INSERT INTO wr_patients VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Edsger'), (150, 'Barbara');
CREATE VIEW wr_patients_v AS SELECT id, name FROM wr_patients;
CREATE TABLE wr_inbox (id int);
CREATE RULE wr_inbox_forget AS ON INSERT TO wr_inbox DO ALSO DELETE FROM wr_patients WHERE id = NEW.id;
CREATE FUNCTION wr_touch() RETURNS int LANGUAGE sql VOLATILE AS $$ UPDATE wr_patients SET name = 'touched' WHERE id = 3; SELECT 1 $$;
CREATE FUNCTION wr_lookup() RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT count(*)::int FROM wr_patients $$;
`;

let gw: Gw;
let admin: pg.Client;
let alice: number;

beforeAll(async () => {
  const info = (await import('vitest')).inject('pg');
  // The objects exist before the first session, so the gateway's first catalog snapshot knows them.
  admin = new pg.Client({ host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password, database: 'ehr' });
  await admin.connect();
  await admin.query(SETUP);
  gw = await startGateway({ policy: POLICY });
  alice = (await gw.connect('ehr', await gw.token('alice'))).port;
});
afterAll(async () => {
  await admin?.query('DROP VIEW IF EXISTS wr_fresh_v, wr_patients_v; DROP TABLE IF EXISTS wr_patients, wr_inbox CASCADE; DROP FUNCTION IF EXISTS wr_touch(), wr_lookup()').catch(() => {});
  await admin?.end();
  await gw?.close();
});

const rows = async (sql: string): Promise<unknown[]> => (await admin.query(sql)).rows.map((r: Record<string, unknown>) => Object.values(r).join('|'));
const HELD = /ERROR: +phigate: no approver decided within 1s \(rule "phi-writes"/;

describe('writes that reach wr_patients are held like writes to it', () => {
  it('through a view, a partition, a DO ALSO rule, a volatile function, and a view created in the same query string', async () => {
    const attempts: Record<string, string> = {
      view_update: "UPDATE wr_patients_v SET name = 'x' WHERE id = 1",
      view_delete: 'DELETE FROM wr_patients_v WHERE id = 2',
      partition: "UPDATE wr_patients_high SET name = 'x' WHERE id = 150",
      rule: 'INSERT INTO wr_inbox VALUES (3)',
      volatile_fn: 'SELECT wr_touch()',
      fresh_view: "CREATE VIEW wr_fresh_v AS SELECT * FROM wr_patients; UPDATE wr_fresh_v SET name = 'x' WHERE id = 1",
    };
    const results = await Promise.all(Object.values(attempts).map((sql) => psql(alice, ['-c', sql], { timeoutMs: 30_000 })));
    const outcome = (r: CmdResult): string => (HELD.test(r.stderr) ? 'held' : `ran: ${r.stdout.trim()} ${r.stderr.trim()}`);
    expect(Object.fromEntries(Object.keys(attempts).map((k, i) => [k, outcome(results[i]!)]))).toEqual(
      Object.fromEntries(Object.keys(attempts).map((k) => [k, 'held'])),
    );
    // Nothing ran.
    expect(await rows('SELECT id, name FROM wr_patients ORDER BY id')).toEqual(['1|Ada', '2|Grace', '3|Edsger', '150|Barbara']);
    expect(await rows('SELECT count(*) FROM wr_inbox')).toEqual(['0']);
    expect(await rows("SELECT to_regclass('public.wr_fresh_v') IS NULL")).toEqual(['true']);
  });

  it('reads, and a volatile function the policy declares read_only, run without approval', async () => {
    const r = await psql(alice, ['-tA', '-c', 'SELECT name FROM wr_patients_v WHERE id = 1', '-c', 'SELECT wr_lookup()']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['Ada', '4']);
  });
});

describe('the server-access baseline', () => {
  it('refuses COPY FROM PROGRAM and pg_read_file for alice with 42501 naming the baseline; nothing runs', async () => {
    const copy = await psql(alice, ['-v', 'VERBOSITY=verbose', '-c', "COPY wr_inbox FROM PROGRAM 'echo 5'"]);
    expect(copy.stderr).toMatch(/ERROR: +42501: phigate: COPY FROM PROGRAM runs a program on the database server; the server-access baseline allows it only for groups listed under server_access\.programs in the policy/);
    const file = await psql(alice, ['-v', 'VERBOSITY=verbose', '-c', "SELECT length(pg_catalog.pg_read_file('/etc/hostname'))"]);
    expect(file.stderr).toMatch(/ERROR: +42501: phigate: pg_read_file\(\) reaches files on the database server; .* under server_access\.files in the policy/);
    expect(await rows('SELECT count(*) FROM wr_inbox')).toEqual(['0']);
  });

  it('lets a group the policy names (olivia, privacy-officers) run a program', async () => {
    const olivia = (await gw.connect('ehr', await gw.token('olivia'))).port;
    const r = await psql(olivia, ['-c', "COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'"]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('COPY 1');
  });
});

describe('the upstream role check at start', () => {
  it('warns once for the superuser upstream (ehr) and not for the plain role (ehr-md5)', async () => {
    const log = (): string => gw.server.stderr();
    const until = Date.now() + 15_000;
    while (Date.now() < until && !(/connection=ehr role=phigate_scram holds=superuser/.test(log()) && /connection=ehr-md5 role=phigate_md5/.test(log()))) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const lines = log().split('\n');
    const warnings = lines.filter((l) => / WARN +upstream role can run programs or reach files on the database server/.test(l));
    expect(warnings.filter((l) => / connection=ehr /.test(l))).toHaveLength(1);
    expect(warnings.find((l) => / connection=ehr /.test(l))).toMatch(/role=phigate_scram holds=superuser fix=".*Least-privilege upstream role.*docs\/operator\.md"/);
    expect(warnings.filter((l) => /connection=ehr-md5/.test(l))).toEqual([]);
    expect(lines.filter((l) => / INFO +upstream role holds no server-access privileges connection=ehr-md5 role=phigate_md5/.test(l))).toHaveLength(1);
  });
});
