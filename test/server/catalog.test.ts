// The masking catalog reads relations, columns, view definitions and OIDs from a real PostgreSQL.
import { beforeAll, describe, expect, it, inject } from 'vitest';
import pg from 'pg';
import { loadCatalog } from '../../src/server/catalog.js';

const info = inject('pg');
const target = { host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password, database: 'ehr', tls: 'disable' as const };

beforeAll(async () => {
  const c = new pg.Client({ ...target, ssl: false });
  await c.connect();
  await c.query(`DROP VIEW IF EXISTS cat_v; DROP TABLE IF EXISTS cat_t;
    CREATE TABLE cat_t (id int, ssn text, dropped int, name text); ALTER TABLE cat_t DROP COLUMN dropped;
    CREATE VIEW cat_v AS SELECT id, upper(name) AS who FROM cat_t`);
  await c.end();
});

describe('catalog snapshot', () => {
  it('knows tables, views, columns (without dropped ones) and resolves OID + attnum', async () => {
    const snap = await loadCatalog(target);
    expect(snap.columns(undefined, 'cat_t')).toEqual(['id', 'ssn', 'name']);
    expect(snap.columns('public', 'cat_v')).toEqual(['id', 'who']);
    expect(snap.view(undefined, "cat_v")).toMatch(/upper\(name\) AS who\s+FROM public.cat_t/i);
    expect(snap.columns('other', 'cat_t')).toBeUndefined();
    const c = new pg.Client({ ...target, ssl: false });
    await c.connect();
    const r = await c.query({ text: 'SELECT name FROM cat_t', rowMode: 'array' });
    await c.end();
    const f = r.fields[0]!;
    expect(snap.resolveAttr(f.tableID, f.columnID)).toEqual({ schema: 'public', table: 'cat_t', column: 'name', relkind: 'r' });
    expect(snap.resolveAttr(0, 0)).toBeUndefined();
  });
});

describe('catalog snapshot: what masking at the source and write rules need', () => {
  it('knows column types (domains to their base), inheritance, partitions, rules, INSTEAD OF triggers, user functions and operators', async () => {
    const c = new pg.Client({ ...target, ssl: false });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS catx CASCADE; CREATE SCHEMA catx;
      CREATE DOMAIN catx.phone AS varchar(20);
      CREATE TABLE catx.pat (id int, mrn varchar(12), ph catx.phone, born date) PARTITION BY RANGE (id);
      CREATE TABLE catx.pat_1 PARTITION OF catx.pat FOR VALUES FROM (0) TO (100);
      CREATE TABLE catx.base (a int); CREATE TABLE catx.child (b int) INHERITS (catx.base);
      CREATE TABLE catx.log (x int);
      CREATE RULE log_ins AS ON INSERT TO catx.base DO ALSO INSERT INTO catx.log VALUES (NEW.a);
      CREATE VIEW catx.v AS SELECT id FROM catx.pat;
      CREATE FUNCTION catx.trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
      CREATE TRIGGER v_ins INSTEAD OF INSERT ON catx.v FOR EACH ROW EXECUTE FUNCTION catx.trg();
      CREATE FUNCTION catx.eqish(text, text) RETURNS bool LANGUAGE sql AS $$SELECT $1 = $2$$;
      CREATE OPERATOR catx.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = catx.eqish)`);
    await c.end();
    const snap = await loadCatalog(target);
    const pat = snap.relationsNamed('pat').find((r) => r.schema === 'catx')!;
    expect(pat.kind).toBe('p');
    expect(pat.typedColumns.map((col) => [col.name, col.type.sql, col.type.baseSql])).toEqual([
      ['id', 'integer', 'integer'], ['mrn', 'character varying(12)', 'character varying(12)'],
      ['ph', 'catx.phone', 'character varying(20)'], ['born', 'date', 'date'],
    ]);
    const part = snap.relationsNamed('pat_1')[0]!;
    expect(snap.lineage(part.oid).map((r) => r.name)).toEqual(['pat_1', 'pat']);
    const child = snap.relationsNamed('child')[0]!;
    expect(snap.lineage(child.oid).map((r) => r.name)).toEqual(['child', 'base']);
    const base = snap.relationsNamed('base')[0]!;
    expect(base.ruleTargets.map((o) => snap.relation(o)?.name)).toEqual(['log']);
    expect(snap.relationsNamed('v').find((r) => r.schema === 'catx')?.insteadTriggers).toBe(true);
    expect(snap.functions.find((f) => f.name === 'eqish')).toMatchObject({ schema: 'catx', language: 'sql', volatility: 'v', kind: 'f' });
    expect(snap.userFunctionNames.has('trg')).toBe(true);
    expect(snap.untrustedOperators.has('===')).toBe(true);
    // System relations are known by name (for their column lists), never picked for an unqualified name.
    expect(snap.relationsNamed('pg_stats')[0]?.system).toBe(true);
    expect(snap.columns(undefined, 'pg_stats')).toBeUndefined();
    expect(snap.columns('pg_catalog', 'pg_stats')).toContain('most_common_vals');
  });
});
