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
    expect(snap.view(undefined, "cat_v")).toMatch(/upper\(name\) AS who\s+FROM cat_t/i);
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
