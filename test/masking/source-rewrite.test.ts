// The source rewrite against a real PostgreSQL: every reference to a masked relation becomes a
// subquery that computes masked values, and the rewritten text runs and returns only those.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import pg from 'pg';
import { loadCatalog, type CatalogSnapshot } from '../../src/server/catalog.js';
import { initClassifier } from '../../src/policy/classify/index.js';
import { RelationTreatments, type ColumnMasker, type SystemTreatmentFn } from '../../src/masking/source/relations.js';
import { SourceRewriter, type RewriteOutcome } from '../../src/masking/source/rewrite.js';
import type { MaskingConfig } from '../../src/masking/config.js';

const info = inject('pg');
const target = { host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password, database: 'ehr', tls: 'disable' as const };

/** A stand-in for the strategies: a recognisable constant per strategy, of the column's type where it can be. */
const masker: ColumnMasker = {
  mask: (rule, column, type) => ({ sql: `(CASE WHEN ${column} IS NULL THEN NULL ELSE ${type.baseSql === 'date' ? "'1900-01-01'::date" : `'<${rule.strategy}>'::text`} END)` }),
  redact: (type, _column) => ({ sql: type.baseSql === 'text' ? "'***'::text" : `NULL::${type.sql}` }),
};

const system: SystemTreatmentFn = (schema, name, isSystem) => {
  if (!isSystem) return undefined;
  if (name === 'pg_statistic') return { kind: 'refuse', reason: 'phigate: pg_statistic holds column values' };
  if (name === 'pg_stat_activity') return { kind: 'hide', columns: ['query'] };
  if (name === 'pg_stats') return { kind: 'hide', columns: ['most_common_vals', 'histogram_bounds'] };
  return { kind: 'allow' };
};

const rule = (table: string, column: string, strategy: 'partial' | 'redact' | 'tokenize' | 'year_only' | 'null', schema?: string) =>
  ({ ...(schema ? { schema } : {}), table, column, strategy, keepFirst: 0, keepLast: 4, placeholder: '***' });

const config: MaskingConfig = {
  columns: [
    rule('rw_patients', 'ssn', 'partial'), rule('rw_patients', 'full_name', 'redact'), rule('rw_patients', 'dob', 'year_only'),
    rule('rw_parent', 'secret', 'redact'), rule('rw_mv', 'note', 'redact'),
  ],
  detectors: [],
  unmaskedGroups: [],
};

let admin: pg.Client;
let snap: CatalogSnapshot;
let rewriter: SourceRewriter;

beforeAll(async () => {
  await initClassifier();
  admin = new pg.Client({ ...target, ssl: false });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS rw CASCADE; DROP TABLE IF EXISTS rw_patients, rw_parent, rw_visits CASCADE;
    CREATE TABLE rw_patients (id int PRIMARY KEY, ssn text, full_name text, dob date, city text);
    INSERT INTO rw_patients VALUES (1, '123-45-6789', 'Zorba Quux', '1970-05-06', 'Oslo'), (2, '987-65-4321', 'Ymir Waft', '1980-07-08', 'Bern');
    CREATE TABLE rw_visits (id int, patient_id int, note text);
    INSERT INTO rw_visits VALUES (10, 1, 'flu'), (11, 2, 'cold');
    CREATE VIEW rw_v AS SELECT id, full_name AS who, upper(ssn) AS loud FROM rw_patients;
    CREATE VIEW rw_vv AS SELECT who FROM rw_v;
    CREATE VIEW rw_clean AS SELECT id, city FROM rw_patients;
    CREATE TABLE rw_parent (id int, secret text) PARTITION BY RANGE (id);
    CREATE TABLE rw_child PARTITION OF rw_parent FOR VALUES FROM (0) TO (100);
    INSERT INTO rw_parent VALUES (1, 'Xanadu Secret');
    CREATE MATERIALIZED VIEW rw_mv AS SELECT id, full_name, city, 'n' AS note FROM rw_patients;
    CREATE SCHEMA rw; CREATE TABLE rw.rw_other (id int, ssn text);`);
  snap = await loadCatalog(target);
  rewriter = new SourceRewriter(new RelationTreatments(snap, config, masker, system));
});
afterAll(async () => {
  await admin?.end();
});

function rewritten(sql: string): string {
  const r = rewriter.rewrite(sql);
  if (r.kind !== 'rewritten') throw new Error(`expected a rewrite of ${sql}, got ${JSON.stringify(r)}`);
  return r.sql;
}

async function rows(sql: string): Promise<unknown[][]> {
  return (await admin.query({ text: sql, rowMode: 'array' })).rows as unknown[][];
}

const RAW = ['123-45-6789', '987-65-4321', 'Zorba Quux', 'Ymir Waft', 'ZORBA QUUX', '1970-05-06', 'Xanadu Secret'];

async function noRaw(sql: string): Promise<unknown[][]> {
  const out = await rows(rewritten(sql));
  const text = JSON.stringify(out);
  for (const r of RAW) expect(text, `${sql} → ${text}`).not.toContain(r);
  return out;
}

describe('source rewrite: references', () => {
  // Every statement computes on a masked column somewhere, so every reference must be rewritten
  // (plain output columns alone are left to output masking: see the next describe).
  it.each([
    "SELECT DISTINCT * FROM rw_patients WHERE ssn <> '' OR true",
    "SELECT ssn, full_name FROM rw_patients ORDER BY full_name",
    'SELECT p.ssn FROM rw_patients p WHERE p.ssn LIKE \'1%\'',
    'SELECT upper(ssn) FROM public.rw_patients',
    'SELECT public.rw_patients.ssn FROM public.rw_patients ORDER BY 1',
    'SELECT "ssn" || \'\' FROM "rw_patients"',
    'SELECT DISTINCT * FROM ONLY rw_patients',
    'SELECT DISTINCT * FROM ONLY (rw_patients)',
    'SELECT DISTINCT * FROM rw_patients *',
    'TABLE rw_patients ORDER BY 2',
    'TABLE rw_patients ORDER BY 1',
    'SELECT p FROM rw_patients p',
    'SELECT row_to_json(p) FROM rw_patients p',
    'SELECT (SELECT full_name FROM rw_patients WHERE id = v.patient_id) FROM rw_visits v',
    'SELECT v.note, p.full_name FROM rw_visits v JOIN rw_patients p ON p.id = v.patient_id ORDER BY p.full_name',
    'SELECT * FROM rw_visits v, LATERAL (SELECT ssn FROM rw_patients p WHERE p.id = v.patient_id) x',
    'WITH c AS (SELECT * FROM rw_patients) SELECT full_name FROM c',
    'WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 2) SELECT full_name FROM c, rw_patients',
    "SELECT string_agg(ssn, ',') FROM rw_patients WHERE ssn = '123-45-6789' OR true",
    'SELECT * FROM rw_v',
    'SELECT who, loud FROM rw_v WHERE loud LIKE \'1%\' OR true',
    'SELECT * FROM rw_vv',
    'SELECT DISTINCT * FROM rw_parent',
    'SELECT * FROM rw_child',
    'SELECT * FROM rw_mv',
    'SELECT upper(full_name) FROM rw_patients TABLESAMPLE BERNOULLI (100) REPEATABLE (1)',
    'SELECT upper(full_name) FROM rw_patients AS p TABLESAMPLE SYSTEM (100)',
    'SELECT upper(ssn) FROM rw_patients FOR UPDATE',
    'SELECT upper(ssn) FROM rw_patients p FOR SHARE OF p',
  ])('%s', async (sql) => {
    await noRaw(sql);
  });

  it('keeps counts, filters on unmasked columns and the shape of the result', async () => {
    expect(rewriter.rewrite('SELECT count(*) FROM rw_patients WHERE city = \'Oslo\'')).toEqual({ kind: 'unchanged' });
    expect(await rows(rewritten("SELECT count(*) FROM rw_patients WHERE ssn = '123-45-6789'"))).toEqual([['0']]);
    const r = await admin.query(rewritten('SELECT * FROM rw_patients ORDER BY id, ssn'));
    expect(r.fields.map((f) => f.name)).toEqual(['id', 'ssn', 'full_name', 'dob', 'city']);
    expect(r.rows[0]).toMatchObject({ id: 1, ssn: '<partial>', full_name: '<redact>', city: 'Oslo' });
  });

  it('makes EXPLAIN ANALYZE filter on masked values: a true guess finds no row', async () => {
    const plan = (await rows(rewritten("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM rw_patients WHERE ssn = '123-45-6789'"))).map((r) => r[0]).join('\n');
    expect(plan).toMatch(/rows=0 loops=1/);
    expect(plan).toMatch(/Rows Removed by Filter: 2/);
  });

  it('computes only the masked columns a statement computes on; others are typed NULLs or, returned as they are, left to output masking', async () => {
    expect(rewritten('SELECT id, city FROM rw_patients WHERE full_name > \'\'')).not.toContain('<partial>');
    expect(rewritten('SELECT id, city FROM rw_patients WHERE ssn > \'\'')).toContain('<partial>');
    for (const sql of ['SELECT p FROM rw_patients p', 'SELECT row_to_json(x) FROM rw_patients x', 'SELECT 1 FROM rw_patients NATURAL JOIN rw_visits',
      'COPY rw_patients TO STDOUT', 'SELECT * FROM (SELECT * FROM rw_patients) s', 'SELECT x.ssn FROM (SELECT ssn FROM rw_patients) x',
      'WITH c AS (SELECT 1) SELECT ssn FROM rw_patients', 'SELECT ssn FROM rw_patients UNION SELECT \'a\'', 'SELECT ssn AS s FROM rw_patients ORDER BY s',
      'EXPLAIN SELECT ssn FROM rw_patients', 'PREPARE q AS SELECT ssn FROM rw_patients', 'DECLARE c CURSOR FOR SELECT ssn FROM rw_patients']) {
      expect(rewritten(sql), sql).toContain('<partial>');
    }
    expect(rewritten('COPY rw_patients (id, ssn) TO STDOUT')).toContain('<partial>');
    // Only returned (RowDescription names them, output masking masks them by their rule), or not read:
    for (const sql of ['SELECT * FROM rw_patients', 'SELECT ssn, p.full_name FROM rw_patients p WHERE id = 1 LIMIT 1', 'TABLE rw_patients',
      'SELECT p.* FROM rw_patients p JOIN rw_visits v ON v.patient_id = p.id', 'SELECT city FROM rw_patients']) {
      expect(rewriter.rewrite(sql), sql).toEqual({ kind: 'unchanged' });
    }
    // Names that do not tell: alias column lists rename columns, attribute notation calls a function on the whole row.
    for (const sql of ['SELECT t.i FROM rw_patients t(i, s) WHERE t.s > \'\'', 'SELECT count(*) FROM rw_patients p WHERE p.to_jsonb->>\'ssn\' > \'\'',
      'SELECT p.row_to_json FROM rw_patients p', 'SELECT 1 FROM (rw_patients p JOIN rw_visits v ON v.patient_id = p.id) j(a, b)']) {
      expect(rewritten(sql), sql).toContain('<partial>');
    }
    expect(rewriter.rewrite("UPDATE rw_patients p SET city = 'x' WHERE p.to_jsonb->>'ssn' LIKE '1%'")).toMatchObject({ kind: 'refused', message: expect.stringMatching(/whole rows/) });
    // Without plain outputs (a named prepared statement): every masked column it names is computed.
    expect(rewriter.rewrite('SELECT ssn FROM rw_patients', { plainOutputs: false })).toMatchObject({ kind: 'rewritten', sql: expect.stringContaining('<partial>') });
    // A partition masked by its parent's rules: output masking would not find the rule by its name.
    expect(rewritten('SELECT secret FROM rw_child')).toContain('<redact>');
    // A view's definition feeds the query: everything it returns is computed.
    expect(rewritten('SELECT who FROM rw_v')).toContain('<redact>');
  });

  it('rewrites COPY of a masked table into COPY of a query', () => {
    expect(rewritten('COPY rw_patients (id, ssn) TO STDOUT WITH (FORMAT csv)')).toMatch(/^COPY \(SELECT "id", "ssn" FROM \(SELECT .* FROM "rw_patients" AS "rw_patients"\) AS "rw_patients"\) TO STDOUT WITH \(FORMAT csv\)$/);
    expect(rewritten('COPY rw_patients TO STDOUT')).toMatch(/^COPY \(SELECT \* FROM \(SELECT .*\) AS "rw_patients"\) TO STDOUT$/);
  });

  it('leaves statements that read nothing masked byte-identical (unchanged)', () => {
    for (const sql of ['SELECT 1', 'SELECT * FROM rw_visits', "SELECT * FROM pg_class WHERE relname = 'x'", 'SELECT * FROM pg_catalog.pg_stat_user_tables']) {
      expect(rewriter.rewrite(sql)).toEqual({ kind: 'unchanged' });
    }
  });

  it('expands a view over a masked table even when it shows no masked column (its own WHERE could compute on one)', async () => {
    expect(await rows(rewritten('SELECT id, city FROM rw_clean ORDER BY id'))).toEqual([[1, 'Oslo'], [2, 'Bern']]);
  });

  it('hides catalog columns and refuses catalog relations that hold values', async () => {
    const out = await rows(rewritten('SELECT query FROM pg_stat_activity'));
    expect(out.every((r) => r[0] === null)).toBe(true);
    expect(rewriter.rewrite('SELECT * FROM pg_catalog.pg_statistic')).toMatchObject({ kind: 'refused', code: '42501' });
  });

  it('names relations the catalog does not know, for a refresh, unless told to go on', () => {
    expect(rewriter.rewrite('SELECT * FROM rw_nowhere')).toEqual({ kind: 'unknown', names: ['rw_nowhere'] });
    expect(rewriter.rewrite('SELECT * FROM rw_nowhere', { allowUnknown: true })).toEqual({ kind: 'unchanged' });
  });
});

describe('source rewrite: what it refuses', () => {
  it.each([
    ["UPDATE rw_patients SET city = 'x' WHERE ssn = '123-45-6789'", /WHERE .* masked column ssn/],
    ['DELETE FROM rw_patients WHERE full_name LIKE \'Z%\'', /masked column full_name/],
    ['UPDATE rw_patients SET city = full_name WHERE id = 1', /SET .* masked column full_name/],
    ['DELETE FROM rw_patients WHERE id = 1 RETURNING *', /whole rows/],
    ['UPDATE rw_patients p SET city = \'x\' WHERE id = 1 RETURNING p.ssn', /masked column ssn/],
    ["UPDATE rw_v SET who = 'x' WHERE loud = '1'", /masked column loud/],
    ['MERGE INTO rw_patients p USING rw_visits v ON p.id = v.patient_id WHEN MATCHED THEN DELETE', /MERGE/],
    ['CREATE VIEW rw_leak AS SELECT * FROM rw_patients', /VIEW/],
    ['CREATE INDEX ON rw_patients (ssn)', /INDEX/],
    ['ALTER TABLE rw_patients RENAME TO rw_free', /RENAME/],
    ['CREATE TABLE rw_copy (LIKE rw_patients)', /CREATE/],
    ['REFRESH MATERIALIZED VIEW rw_mv', /REFRESH/],
    ["SELECT * FROM rw_patients WHERE ssn > ''", undefined],
  ])('%s', (sql, why) => {
    const r: RewriteOutcome = rewriter.rewrite(sql);
    if (why === undefined) {
      expect(r.kind).toBe('rewritten');
      return;
    }
    expect(r.kind).toBe('refused');
    if (r.kind === 'refused') expect(r.message).toMatch(why);
  });

  it('allows writes that do not read masked columns, and harmless utility statements', () => {
    for (const sql of ["UPDATE rw_patients SET city = 'x' WHERE id = 1", "INSERT INTO rw_patients (id, ssn) VALUES (9, '000-00-0000')", 'TRUNCATE rw_visits', 'LOCK rw_patients', 'ANALYZE rw_patients']) {
      expect(['unchanged', 'rewritten']).toContain(rewriter.rewrite(sql).kind);
    }
  });

  it('refuses a name that stands for relations masked differently, unless qualified', async () => {
    // A second rw_patients with other columns: a search_path that puts rw first would read it.
    await admin.query('CREATE TABLE rw.rw_patients (id int, ssn text)');
    try {
      const two = new SourceRewriter(new RelationTreatments(await loadCatalog(target), config, masker, system));
      expect(two.rewrite('SELECT DISTINCT * FROM rw_patients')).toMatchObject({ kind: 'refused', message: expect.stringMatching(/schema-qualified/) });
      expect(two.rewrite('SELECT DISTINCT * FROM public.rw_patients').kind).toBe('rewritten');
      expect(two.rewrite('SELECT DISTINCT * FROM rw.rw_patients').kind).toBe('rewritten');
    } finally {
      await admin.query('DROP TABLE rw.rw_patients');
    }
  });
});

describe('source masking cache', () => {
  it('replays a shape\'s rewrite on texts that differ in literals, exactly as a fresh rewrite', async () => {
    const { SourceMasking } = await import('../../src/masking/source/masker.js');
    const sm = new SourceMasking({ config, masker, system });
    const texts = [
      "SELECT p.full_name, v.note FROM rw_patients p JOIN rw_visits v ON v.patient_id = p.id WHERE p.id = 1 AND v.note <> 'a'",
      "SELECT p.full_name, v.note FROM rw_patients p JOIN rw_visits v ON v.patient_id = p.id WHERE p.id = 22222 AND v.note <> 'a much longer literal é ü'",
      'SELECT p.full_name, v.note FROM rw_patients p JOIN rw_visits v ON v.patient_id = p.id WHERE p.id = 3 AND v.note <> $$x$$',
      "SELECT * FROM ONLY rw_patients WHERE ssn = 'a'",
      "SELECT * FROM ONLY rw_patients WHERE ssn = 'bbbbbbbb'",
      'SELECT public.rw_patients.ssn FROM public.rw_patients WHERE id = 1',
      'SELECT public.rw_patients.ssn FROM public.rw_patients WHERE id = 12345',
    ];
    for (const sql of texts) expect(sm.rewrite(sql, snap)).toEqual(rewriter.rewrite(sql));
    expect(sm.hits).toBe(4);
    expect(sm.misses).toBe(3);
    // A TABLESAMPLE clause is copied into the rewrite with its numbers: never replayed by shape.
    const a = sm.rewrite("SELECT count(*) FROM rw_patients TABLESAMPLE BERNOULLI (100) WHERE ssn <> ''", snap);
    const b = sm.rewrite("SELECT count(*) FROM rw_patients TABLESAMPLE BERNOULLI (0) WHERE ssn <> ''", snap);
    expect(a.kind === 'rewritten' && a.sql).toContain('BERNOULLI (100)');
    expect(b.kind === 'rewritten' && b.sql).toContain('BERNOULLI (0)');
    // Refusals are per shape too.
    expect(sm.rewrite("DELETE FROM rw_patients WHERE ssn = 'x'", snap).kind).toBe('refused');
    expect(sm.rewrite("DELETE FROM rw_patients WHERE ssn = 'yyyyy'", snap).kind).toBe('refused');
    expect(sm.hits).toBe(5);
    // The same text without plain outputs is another rewrite, cached apart.
    const plain = sm.rewrite('SELECT ssn FROM rw_patients WHERE id = 1', snap);
    const computed = sm.rewrite('SELECT ssn FROM rw_patients WHERE id = 2', snap, { plainOutputs: false });
    expect(plain.kind).toBe('unchanged');
    expect(computed.kind).toBe('rewritten');
  });

  it('maps an error position in the rewritten text back to the client\'s text', async () => {
    const { originalPosition } = await import('../../src/masking/source/masker.js');
    const sql = "SELECT nope FROM rw_patients WHERE ssn = '1' AND id = 1";
    const r = rewriter.rewrite(sql);
    if (r.kind !== 'rewritten') throw new Error('expected a rewrite');
    const err = await admin.query(r.sql).catch((e: { position?: string }) => e);
    const pos = Number((err as { position?: string }).position);
    expect(originalPosition(r.edits, pos)).toBe(sql.indexOf('nope') + 1);
    const tail = r.sql.indexOf('WHERE ssn') + 1;
    expect(originalPosition(r.edits, tail)).toBe(sql.indexOf('WHERE ssn') + 1);
    // Inside the replaced span: the start of what the client wrote there.
    expect(originalPosition(r.edits, r.sql.indexOf('(SELECT') + 5)).toBe(sql.indexOf('rw_patients') + 1);
  });
});
