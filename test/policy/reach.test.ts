// What writes (and reads) reach beyond the names they contain, decided through the StatementGate
// with a catalog snapshot read from the real PostgreSQL: views (and views of views), partitions and
// inheritance, DO ALSO rules, INSTEAD OF triggers, volatile functions and procedures, the session's
// own DDL, and relations the snapshot does not know yet.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import pg from 'pg';
import { initClassifier } from '../../src/policy/classify/index.js';
import { parsePolicyFile } from '../../src/policy/file.js';
import { ShapeClassifierCache } from '../../src/policy/shape-cache.js';
import { StatementGate, type Verdict } from '../../src/server/gate.js';
import { loadCatalog, type CatalogSnapshot } from '../../src/server/catalog.js';

const info = inject('pg');
const target = { host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password, database: 'ehr', tls: 'disable' as const };

const POLICY = parsePolicyFile(`version: 1
connections:
  ehr: { upstream: "postgres://svc@db/ehr" }
rules:
  - name: phi-writes
    when: { statement: [update, delete], tables: [rch.patients] }
    action: approve
    approvers: [privacy-officers]
  - name: people-read-only
    when: { statement: [insert], tables: [people] }
    action: block
  - name: bulk-phi-read
    when: { statement: [select], tables: [rch.patients], without_where: true }
    action: approve
    approvers: [privacy-officers]
functions:
  - { name: rch.ro, read_only: true }
default: allow
`);

const SETUP = `DROP SCHEMA IF EXISTS rch CASCADE; CREATE SCHEMA rch;
CREATE TABLE rch.patients (id int, name text) PARTITION BY RANGE (id);
CREATE TABLE rch.patients_p1 PARTITION OF rch.patients FOR VALUES FROM (0) TO (100);
CREATE TABLE rch.visits (id int, patient_id int);
CREATE TABLE rch.people (id int); CREATE TABLE rch.vips (tier int) INHERITS (rch.people);
CREATE VIEW rch.pv AS SELECT id, name FROM rch.patients;
CREATE VIEW rch.pv2 AS SELECT id, name FROM rch.pv WHERE id > 0;
CREATE VIEW rch.joinv AS SELECT v.id, p.name FROM rch.visits v JOIN rch.patients p ON p.id = v.patient_id;
CREATE FUNCTION rch.trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER joinv_upd INSTEAD OF UPDATE ON rch.joinv FOR EACH ROW EXECUTE FUNCTION rch.trg();
CREATE TABLE rch.inbox (id int);
CREATE RULE inbox_forget AS ON INSERT TO rch.inbox DO ALSO DELETE FROM rch.patients WHERE id = NEW.id;
CREATE MATERIALIZED VIEW rch.mv AS SELECT id FROM rch.patients;
CREATE FUNCTION rch.touch() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1';
CREATE FUNCTION rch.peek() RETURNS int LANGUAGE sql STABLE AS 'SELECT 1';
CREATE FUNCTION rch.ro() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1';
CREATE PROCEDURE rch.proc() LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION rch.uuid() RETURNS uuid LANGUAGE internal VOLATILE AS 'gen_random_uuid';
CREATE VIEW rch.fv AS SELECT rch.touch() AS x;
CREATE VIEW rch.filev AS SELECT pg_read_file('postgresql.conf') AS x;`;

let admin: pg.Client;
let snapshot: CatalogSnapshot;

beforeAll(async () => {
  await initClassifier();
  admin = new pg.Client({ ...target, ssl: false });
  await admin.connect();
  await admin.query(SETUP);
  snapshot = await loadCatalog(target);
});
afterAll(async () => {
  await admin?.query('DROP SCHEMA IF EXISTS rch CASCADE').catch(() => {});
  await admin?.end();
});

function gate(catalog?: () => CatalogSnapshot | undefined): StatementGate {
  return new StatementGate({
    policy: () => POLICY, classifier: new ShapeClassifierCache(), connection: 'ehr',
    identity: { name: 'alice', subject: 'alice', groups: ['engineering'], kind: 'human' },
    ...(catalog ? { catalog } : {}),
  });
}

function outcome(v: Verdict): string {
  return `${v.action}${v.decision?.rule ? ` ${v.decision.rule}` : ''}`;
}

// [sql, verdict with the catalog]
const ROWS: [string, string][] = [
  // Auto-updatable views, and a view of a view: writes to the base table.
  ["UPDATE rch.pv SET name = 'x' WHERE id = 1", 'approve phi-writes'],
  ['DELETE FROM rch.pv WHERE id = 1', 'approve phi-writes'],
  ['DELETE FROM rch.pv2 WHERE id = 1', 'approve phi-writes'],
  ["UPDATE pv SET name = 'x' WHERE id = 1", 'approve phi-writes'],
  ["WITH d AS (DELETE FROM rch.pv2 WHERE id = 1 RETURNING id) SELECT id FROM d", 'approve phi-writes'],
  ["MERGE INTO rch.pv t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE", 'approve phi-writes'],
  // A partition's rows are its parent's; an inheritance child's rows are its parent's.
  ["UPDATE rch.patients_p1 SET name = 'x' WHERE id = 1", 'approve phi-writes'],
  ['INSERT INTO rch.vips VALUES (1, 2)', 'block people-read-only'],
  ['INSERT INTO rch.people VALUES (1)', 'block people-read-only'],
  // A DO ALSO rule's action may be any kind of write: an INSERT that deletes from patients.
  ['INSERT INTO rch.inbox VALUES (1)', 'approve phi-writes'],
  // Code phigate cannot see: the strictest rule that applies to alice decides.
  ["UPDATE rch.joinv SET name = 'x' WHERE id = 1", 'block people-read-only'],
  ['SELECT rch.touch()', 'block people-read-only'],
  ['SELECT 1 FROM rch.visits WHERE id = rch.touch()', 'block people-read-only'],
  ['SELECT * FROM rch.fv', 'block people-read-only'],
  ['CALL rch.proc()', 'block people-read-only'],
  ["UPDATE rch.not_there SET x = 1", 'block people-read-only'],
  // Not writes: stable functions, functions declared read_only, plain tables nothing protects.
  ['SELECT rch.peek()', 'allow'],
  ['SELECT rch.ro()', 'allow'],
  // Volatile C/internal functions (extensions: pgcrypto, uuid-ossp) are not the reader's code.
  ['INSERT INTO rch.visits SELECT 1, 1 WHERE rch.uuid() IS NOT NULL', 'allow'],
  ['SELECT count(*) FROM rch.visits WHERE id = rch.ro()', 'allow'],
  ['INSERT INTO rch.visits VALUES (1, 1)', 'allow'],
  ['UPDATE rch.visits SET patient_id = 2 WHERE id = 1', 'allow'],
  // System catalogs are not expanded (the baseline judges pg_settings).
  ['UPDATE pg_catalog.pg_statistic SET stanullfrac = 0 WHERE false', 'allow'],
  // Reads through views and materialized views read the base table too.
  ['SELECT * FROM rch.pv', 'approve bulk-phi-read'],
  ['SELECT * FROM rch.pv2', 'approve bulk-phi-read'],
  ['SELECT * FROM rch.mv', 'approve bulk-phi-read'],
  ['SELECT * FROM rch.patients_p1', 'approve bulk-phi-read'],
  ['SELECT * FROM rch.pv WHERE id = 1', 'allow'],
  // A view that reads server files is refused by the baseline when read.
  ['SELECT * FROM rch.filev', 'block server_access.files'],
  // The session's own DDL, before any snapshot shows it.
  ["CREATE VIEW rch_fresh AS SELECT * FROM rch.patients; DELETE FROM rch_fresh WHERE id = 1", 'approve phi-writes'],
  ["CREATE TABLE rch_fresh_p PARTITION OF rch.patients FOR VALUES FROM (100) TO (200); UPDATE rch_fresh_p SET name = 'x' WHERE id = 150", 'approve phi-writes'],
  ["CREATE TABLE rch_log (id int); CREATE RULE r AS ON INSERT TO rch_log DO ALSO DELETE FROM rch.patients; INSERT INTO rch_log VALUES (1)", 'approve phi-writes'],
  ["CREATE RULE r2 AS ON UPDATE TO rch.visits DO ALSO DELETE FROM rch.patients; UPDATE rch.visits SET id = 2 WHERE id = 1", 'approve phi-writes'],
  ["CREATE TRIGGER t INSTEAD OF UPDATE ON rch.pv FOR EACH ROW EXECUTE FUNCTION rch.trg(); UPDATE rch.visits SET id = 2 WHERE id = 1", 'allow'],
  ["CREATE FUNCTION rch_new() RETURNS int LANGUAGE sql AS 'SELECT 1'; SELECT rch_new()", 'block people-read-only'],
  ["CREATE FUNCTION rch_new2() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1'; SELECT rch_new2()", 'allow'],
  ['CREATE TEMP TABLE rch_tmp (x int); INSERT INTO rch_tmp VALUES (1)', 'allow'],
];

describe('with the catalog snapshot', () => {
  it.each(ROWS)('%s → %s', (sql, want) => {
    expect(outcome(gate(() => snapshot).onQuery(sql))).toBe(want);
  });

  it('names the base tables in the decision (what an approver sees) and says why code counts as a write', () => {
    const v = gate(() => snapshot).onQuery("UPDATE rch.pv2 SET name = 'x' WHERE id = 1");
    expect(v.decision?.tables).toEqual(expect.arrayContaining(['rch.pv2', 'rch.pv', 'rch.patients', 'rch.patients_p1']));
    const f = gate(() => snapshot).onQuery('SELECT rch.touch()');
    expect(f.action === 'block' && f.error.message).toBe(
      'phigate: blocked by rule "people-read-only" (function rch.touch is volatile and its body is invisible to phigate, so it may write any table (declare it under functions: with read_only: true if it does not), so the strictest applicable rule decides)',
    );
    const t = gate(() => snapshot).onQuery("UPDATE rch.joinv SET name = 'x' WHERE id = 1");
    expect(t.action === 'block' && t.error.message).toMatch(/rch\.joinv has INSTEAD OF triggers, which run code phigate cannot see/);
  });

  it("remembers the session's own definitions for the rest of the session, across query strings", () => {
    const g = gate(() => snapshot);
    expect(outcome(g.onQuery('CREATE VIEW rch_later AS SELECT * FROM rch.pv'))).toBe('allow');
    expect(outcome(g.onQuery('DELETE FROM rch_later WHERE id = 1'))).toBe('approve phi-writes');
    // Extended protocol too: the definition was learnt from a Parse.
    const h = gate(() => snapshot);
    expect(outcome(h.onParse('', 'CREATE TABLE rch_part2 PARTITION OF rch.patients FOR VALUES FROM (300) TO (400)'))).toBe('allow');
    h.onBind('', '');
    expect(outcome(h.onExecute(''))).toBe('allow');
    expect(outcome(h.onQuery("UPDATE rch_part2 SET name = 'x' WHERE id = 301"))).toBe('approve phi-writes');
  });

  it('decides again when the snapshot changes (a cached decision is not reused)', async () => {
    let current = snapshot;
    const g = gate(() => current);
    const sql = "UPDATE rch.made_later SET name = 'x' WHERE id = 1";
    expect(outcome(g.onQuery(sql))).toBe('block people-read-only');
    await admin.query('CREATE VIEW rch.made_later AS SELECT * FROM rch.patients');
    current = await loadCatalog(target);
    expect(outcome(g.onQuery(sql))).toBe('approve phi-writes');
    expect(outcome(g.onQuery('UPDATE rch.visits SET id = 1 WHERE id = 1'))).toBe('allow');
  });
});

describe('without a catalog', () => {
  it('decides on the names written, as before', () => {
    const g = gate();
    expect(outcome(g.onQuery("UPDATE rch.pv SET name = 'x' WHERE id = 1"))).toBe('allow');
    expect(outcome(g.onQuery('SELECT rch.touch()'))).toBe('allow');
    expect(outcome(g.onQuery("UPDATE rch.patients SET name = 'x' WHERE id = 1"))).toBe('approve phi-writes');
  });
});
