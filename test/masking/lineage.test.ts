// Column lineage over the real PostgreSQL parser: every construction of issue 5's bypass list, views through the catalog, DML RETURNING, COPY, cursors, and fail-closed unknowns.
import { beforeAll, describe, expect, it } from 'vitest';
import { initClassifier } from '../../src/policy/classify/index.js';
import { lineageOf, type Catalog, type OutputLineage, type StatementLineage } from '../../src/masking/index.js';

const TABLES: Record<string, string[]> = {
  patients: ['id', 'mrn', 'ssn', 'full_name', 'date_of_birth', 'email', 'phone'],
  visits: ['id', 'patient_id', 'mrn', 'visit_date', 'note'],
  v_patients: ['id', 'mrn', 'ssn', 'full_name'],
  v_upper: ['id', 'name'],
  v_nested: ['id', 'mrn', 'ssn', 'full_name'],
  v_renamed: ['pid', 'secret'],
};

const VIEWS: Record<string, string> = {
  v_patients: 'SELECT patients.id, patients.mrn, patients.ssn, patients.full_name FROM patients',
  v_upper: 'SELECT p.id, upper(p.full_name) AS name FROM patients p',
  v_nested: 'SELECT * FROM v_patients',
  // CREATE VIEW v_renamed (pid, secret) AS ...: the catalog names the columns, the definition does not.
  v_renamed: 'SELECT id, ssn FROM patients',
  v_cycle_a: 'SELECT * FROM v_cycle_b',
  v_cycle_b: 'SELECT * FROM v_cycle_a',
  v_broken: 'SELECT FROM WHERE',
};

const catalog: Catalog = {
  columns: (schema, table) => (schema === undefined || schema === 'public' ? TABLES[table] : undefined),
  view: (schema, name) => (schema === undefined || schema === 'public' ? VIEWS[name] : undefined),
};

beforeAll(async () => {
  await initClassifier();
});

function one(sql: string, cat: Catalog = catalog): StatementLineage {
  const all = lineageOf(sql, cat);
  expect(all).toHaveLength(1);
  return all[0] as StatementLineage;
}

/** `=t.c` plain reference, `~a,b` derived from (sorted), `const` nothing, `?` unknown. */
function fmt(o: OutputLineage): string {
  if (o.unknown) return '?';
  if (o.plain !== undefined) return `=${o.plain.table}.${o.plain.column}`;
  const all = [...o.sources.map((s) => `${s.table}.${s.column}`), ...o.tables.map((t) => `${t.table}.*`)];
  // View columns are listed as sources too (a rule may name them); the base columns are what matter here.
  const base = all.filter((s) => !s.startsWith('v_'));
  return base.length === 0 ? 'const' : `~${[...new Set(base)].sort().join(',')}`;
}

function outputs(sql: string, cat?: Catalog): string[] | undefined {
  return one(sql, cat).outputs?.map(fmt);
}

const ALL_PATIENTS = '~patients.date_of_birth,patients.email,patients.full_name,patients.id,patients.mrn,patients.phone,patients.ssn';

describe('lineage of the bypass constructions', () => {
  it.each([
    ['SELECT ssn FROM patients', ['=patients.ssn']],
    ['SELECT p.ssn AS s, ssn x FROM public.patients p', ['=patients.ssn', '=patients.ssn']],
    ['SELECT public.patients.ssn, patients.full_name FROM public.patients', ['=patients.ssn', '=patients.full_name']],
    ['SELECT ssn::text, CAST(ssn AS varchar(3)), ssn COLLATE "C" FROM patients', ['~patients.ssn', '~patients.ssn', '~patients.ssn']],
    ["SELECT ssn || '', 'x' || full_name || mrn FROM patients", ['~patients.ssn', '~patients.full_name,patients.mrn']],
    ['SELECT substr(ssn, 1, 3), upper(full_name), reverse(ssn), lower(email) FROM patients', ['~patients.ssn', '~patients.full_name', '~patients.ssn', '~patients.email']],
    ['SELECT row_to_json(p), to_jsonb(p.*), p FROM patients p', [ALL_PATIENTS, ALL_PATIENTS, ALL_PATIENTS]],
    ["SELECT json_agg(p), array_agg(ssn), string_agg(full_name, ',' ORDER BY id) FROM patients p", [ALL_PATIENTS, '~patients.ssn', '~patients.full_name,patients.id']],
    ["SELECT format('%s', ssn), encode(convert_to(ssn, 'UTF8'), 'base64'), md5(ssn) FROM patients", ['~patients.ssn', '~patients.ssn', '~patients.ssn']],
    ['WITH x AS (SELECT ssn AS a FROM patients) SELECT a, upper(a) FROM x', ['=patients.ssn', '~patients.ssn']],
    ['WITH x(a) AS (SELECT full_name FROM patients), y AS (SELECT a AS b FROM x) SELECT b FROM y', ['=patients.full_name']],
    ['SELECT s FROM (SELECT ssn AS s FROM patients) t', ['=patients.ssn']],
    ['SELECT t.* FROM (SELECT upper(ssn), id FROM patients) t', ['~patients.ssn', '=patients.id']],
    ['SELECT t.upper FROM (SELECT upper(ssn) FROM patients) t', ['~patients.ssn']],
    ['SELECT (SELECT ssn FROM patients LIMIT 1), ARRAY(SELECT mrn FROM patients)', ['~patients.ssn', '~patients.mrn']],
    ["SELECT ssn FROM patients UNION SELECT '000-00-0000'", ['=patients.ssn']],
    ["SELECT ssn FROM patients UNION ALL SELECT x FROM (VALUES ('a'), ('b')) v(x)", ['=patients.ssn']],
    ['SELECT full_name FROM patients UNION SELECT ssn FROM patients', ['~patients.full_name,patients.ssn']],
    ['SELECT id, ssn FROM patients INTERSECT SELECT id, mrn FROM visits', ['~patients.id,visits.id', '~patients.ssn,visits.mrn']],
    ['SELECT ssn, full_name FROM v_patients', ['=patients.ssn', '=patients.full_name']],
    ['SELECT name, upper(id::text) FROM v_upper', ['~patients.full_name', '~patients.id']],
    ['SELECT * FROM v_nested', ['=patients.id', '=patients.mrn', '=patients.ssn', '=patients.full_name']],
    ['SELECT secret FROM v_renamed', ['=patients.ssn']],
    ['SELECT count(ssn), count(*), count(DISTINCT full_name) FROM patients', ['const', 'const', 'const']],
    ["SELECT count(*) FILTER (WHERE ssn LIKE '1%') FROM patients", ['~patients.ssn']],
    ['SELECT rank() OVER (ORDER BY ssn), row_number() OVER w FROM patients WINDOW w AS (PARTITION BY full_name)', ['~patients.ssn', '~patients.full_name']],
    ["SELECT CASE WHEN ssn LIKE '1%' THEN 1 ELSE 0 END, coalesce(ssn, mrn), greatest(ssn, 'a') FROM patients", ['~patients.ssn', '~patients.mrn,patients.ssn', '~patients.ssn']],
    ['SELECT u FROM patients p, unnest(ARRAY[p.ssn]) u', ['~patients.ssn']],
    ['SELECT e.key, e.value FROM patients p, jsonb_each(to_jsonb(p)) e', [ALL_PATIENTS, ALL_PATIENTS]],
    ['SELECT x.a FROM patients p, XMLTABLE(\'/r\' PASSING (p.ssn::xml) COLUMNS a text PATH \'a\') x', ['~patients.ssn']],
    ['SELECT JSON_ARRAY(SELECT ssn FROM patients), JSON_OBJECT(\'k\': full_name) FROM patients', ['~patients.ssn', '~patients.full_name']],
    ['SELECT (SELECT v.note FROM visits v WHERE v.patient_id = p.id LIMIT 1) FROM patients p', ['~visits.note']],
    ['SELECT mrn FROM patients p JOIN visits v ON v.patient_id = p.id', ['~patients.mrn,visits.mrn']],
    ['SELECT p.mrn, v.mrn FROM patients p JOIN visits v ON v.patient_id = p.id', ['=patients.mrn', '=visits.mrn']],
    ['SELECT g FROM generate_series(1, 3) g', ['const']],
    ['SELECT full_name, count(*) FROM patients GROUP BY full_name', ['=patients.full_name', 'const']],
    ["SELECT id FROM patients WHERE ssn LIKE '1%' ORDER BY ssn", ['=patients.id']],
    ['SELECT relname, upper(relname) FROM pg_catalog.pg_class', ['=pg_class.relname', '~pg_class.relname']],
    ['SELECT (p).ssn FROM patients p', [ALL_PATIENTS]],
    ['SELECT ssn, $1::text FROM patients WHERE id = $2', ['=patients.ssn', 'const']],
  ])('%s', (sql, expected) => {
    expect(outputs(sql)).toEqual(expected);
  });

  it('follows WITH RECURSIVE to a fixed point', () => {
    expect(outputs("WITH RECURSIVE t(n, s) AS (SELECT 1, ssn FROM patients UNION ALL SELECT n + 1, s || 'x' FROM t WHERE n < 3) SELECT s, n FROM t")).toEqual([
      '~patients.ssn',
      'const',
    ]);
    expect(outputs('WITH RECURSIVE t(a, b) AS (SELECT full_name, ssn FROM patients UNION ALL SELECT b, a FROM t) SELECT a FROM t')).toEqual(['~patients.full_name,patients.ssn']);
  });

  it('expands * over joins, USING and NATURAL in PostgreSQL order', () => {
    expect(outputs('SELECT * FROM patients')).toEqual(TABLES.patients?.map((c) => `=patients.${c}`));
    expect(outputs('TABLE patients')).toHaveLength(7);
    expect(outputs('SELECT * FROM patients JOIN visits USING (id)')).toEqual([
      '~patients.id,visits.id',
      ...['mrn', 'ssn', 'full_name', 'date_of_birth', 'email', 'phone'].map((c) => `=patients.${c}`),
      ...['patient_id', 'mrn', 'visit_date', 'note'].map((c) => `=visits.${c}`),
    ]);
    expect(outputs('SELECT * FROM patients NATURAL JOIN visits')).toHaveLength(10);
    expect(outputs('SELECT j.* FROM (patients p JOIN visits v ON true) AS j(a, b)')?.slice(0, 2)).toEqual(['=patients.id', '=patients.mrn']);
  });
});

describe('lineage of statements that return rows other ways', () => {
  it('COPY (query) TO and COPY table TO', () => {
    expect(outputs('COPY (SELECT ssn, upper(full_name) FROM patients) TO STDOUT')).toEqual(['=patients.ssn', '~patients.full_name']);
    expect(outputs('COPY patients (ssn, id) TO STDOUT WITH (FORMAT csv)')).toEqual(['=patients.ssn', '=patients.id']);
    expect(outputs('COPY patients TO STDOUT')).toHaveLength(7);
    expect(outputs('COPY patients FROM STDIN')).toEqual([]);
  });

  it('RETURNING carries what was written into a column', () => {
    expect(outputs('UPDATE patients SET full_name = ssn WHERE id = 1 RETURNING full_name, id, upper(email)')).toEqual([
      '~patients.full_name,patients.ssn',
      '=patients.id',
      '~patients.email',
    ]);
    expect(outputs('UPDATE visits v SET note = p.ssn FROM patients p WHERE p.id = v.patient_id RETURNING v.note, old.note, new.note')).toEqual([
      '~patients.ssn,visits.note',
      '=visits.note',
      '~patients.ssn,visits.note',
    ]);
    expect(outputs('INSERT INTO visits (patient_id, note) SELECT id, ssn FROM patients RETURNING note, id')).toEqual(['~patients.ssn,visits.note', '=visits.id']);
    expect(outputs("INSERT INTO visits (id, note) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET note = excluded.note || visits.mrn RETURNING note")).toEqual([
      '~visits.mrn,visits.note',
    ]);
    expect(outputs('DELETE FROM patients WHERE id = 1 RETURNING *')).toEqual(TABLES.patients?.map((c) => `=patients.${c}`));
    expect(outputs('MERGE INTO visits v USING patients p ON v.patient_id = p.id WHEN MATCHED THEN UPDATE SET note = p.ssn RETURNING v.note')?.[0]).toMatch(/patients\.ssn/);
    expect(outputs('WITH u AS (UPDATE patients SET ssn = ssn RETURNING ssn) SELECT * FROM u')).toEqual(['~patients.ssn']);
    expect(outputs('INSERT INTO visits (note) VALUES ($1)')).toEqual([]);
  });

  it('keeps the lineage of DECLARE and PREPARE for FETCH and EXECUTE', () => {
    const d = one('DECLARE c CURSOR FOR SELECT ssn, upper(mrn) FROM patients');
    expect(d.outputs).toEqual([]);
    expect(d.deferred?.outputs?.map(fmt)).toEqual(['=patients.ssn', '~patients.mrn']);
    expect(one('PREPARE q (int) AS SELECT full_name FROM patients WHERE id = $1').deferred?.outputs?.map(fmt)).toEqual(['=patients.full_name']);
    for (const sql of ['FETCH ALL FROM c', 'EXECUTE q(1)']) {
      const l = one(sql);
      expect(l.outputs).toBeUndefined();
      expect(l.unknown).toBe(true);
      expect(l.opaque.length).toBeGreaterThan(0);
      expect(l.reason).toMatch(/lineage kept from its (DECLARE|PREPARE)/);
    }
  });

  it('gives EXPLAIN, SHOW and utility statements no sources', () => {
    expect(one('EXPLAIN SELECT ssn FROM patients').outputs?.map((o) => [o.name, fmt(o)])).toEqual([['QUERY PLAN', 'const']]);
    expect(outputs('SHOW search_path')).toEqual(['const']);
    expect(outputs('SET search_path = public')).toEqual([]);
    expect(outputs('SELECT ssn INTO TEMP t FROM patients')).toEqual([]);
    expect(outputs('CREATE TABLE t2 AS SELECT ssn FROM patients')).toEqual([]);
  });

  it('splits multi-statement strings', () => {
    expect(lineageOf('SELECT 1; SELECT ssn FROM patients', catalog).map((l) => l.outputs?.map(fmt))).toEqual([['const'], ['=patients.ssn']]);
  });
});

describe('write lineage', () => {
  const writes = (sql: string): string[] =>
    (one(sql).writes ?? []).flatMap((w) => w.columns.map((c) => `${w.table.table}.${c.name}<-${fmt(c)}`));

  it('records what INSERT, UPDATE, MERGE, CREATE TABLE AS and SELECT INTO store where', () => {
    expect(writes('INSERT INTO visits (patient_id, note) SELECT id, ssn FROM patients')).toEqual(['visits.patient_id<-~patients.id', 'visits.note<-~patients.ssn']);
    expect(writes("UPDATE visits v SET note = upper(p.full_name), mrn = 'x' FROM patients p WHERE p.id = v.patient_id")).toEqual(['visits.note<-~patients.full_name']);
    expect(writes('CREATE TABLE t2 AS SELECT ssn, id + 1 AS n FROM patients')).toEqual(['t2.ssn<-=patients.ssn', 't2.n<-~patients.id']);
    expect(writes('SELECT full_name INTO TEMP t3 FROM patients')).toEqual(['t3.full_name<-=patients.full_name']);
    expect(writes('WITH x AS (INSERT INTO visits (note) SELECT ssn FROM patients RETURNING id) SELECT * FROM x')).toEqual(['visits.note<-~patients.ssn']);
    expect(writes('MERGE INTO visits v USING patients p ON v.patient_id = p.id WHEN MATCHED THEN UPDATE SET note = p.ssn')).toContain(`visits.*<-${ALL_PATIENTS}`);
    expect(writes('INSERT INTO visits (note) VALUES ($1)')).toEqual([]);
    expect(writes("UPDATE visits SET note = 'x' WHERE id = 1")).toEqual([]);
    expect(writes("SELECT set_config('my.x', ssn, false) FROM patients")).toEqual([]);
    expect(one("SELECT current_setting('my.x')").opaque).toEqual(['current_setting']);
  });
});

describe('unknown lineage fails closed', () => {
  it('marks opaque functions, including built-ins that run SQL text', () => {
    for (const sql of ['SELECT my_func(id) FROM patients', "SELECT query_to_xml('select ssn from patients', true, false, '')", "SELECT * FROM ts_stat('select to_tsvector(ssn) from patients')"]) {
      const l = one(sql);
      expect(l.unknown).toBe(true);
      expect(l.opaque.length).toBeGreaterThan(0);
    }
    expect(one('SELECT my_func(id) FROM patients').opaque).toEqual(['my_func']);
  });

  it('treats a relation the catalog does not know (a view created in this session?) as opaque', () => {
    const l = one('SELECT * FROM unknown_table');
    expect(l.outputs).toBeUndefined();
    expect(l.unknown).toBe(true);
    expect(l.reads).toEqual([{ table: 'unknown_table' }]);
    expect(l.opaque).toEqual(['relation unknown_table']);
    const named = one('SELECT ssn, p.id FROM unknown_table u JOIN patients p ON true');
    expect(named.outputs?.map(fmt)).toEqual(['?', '=patients.id']);
    expect(named.opaque).toEqual(['relation unknown_table']);
  });

  it('treats planner statistics, which hold sampled values, as opaque', () => {
    const l = one("SELECT most_common_vals FROM pg_stats WHERE attname = 'ssn'");
    expect(l.outputs?.map(fmt)).toEqual(['?']);
    expect(l.opaque).toEqual(['pg_stats']);
  });

  it('guards against view cycles and broken view definitions', () => {
    for (const v of ['v_cycle_a', 'v_broken']) {
      const l = one(`SELECT * FROM ${v}`);
      expect(l.unknown).toBe(true);
      expect(l.reason).toBeDefined();
    }
  });

  it('reports every table a statement reads, through views', () => {
    expect(one('SELECT 1 FROM v_nested WHERE EXISTS (SELECT 1 FROM visits)').reads.map((t) => t.table).sort()).toEqual(['patients', 'v_nested', 'v_patients', 'visits']);
  });

  it('returns one unknown lineage for SQL the parser rejects', () => {
    const [l] = lineageOf('SELEC ssn FROM patients', catalog);
    expect(l?.unknown).toBe(true);
    expect(l?.opaque).toEqual(['(unparsed)']);
  });

  it('survives deep nesting without throwing', () => {
    const deep = `SELECT ${'('.repeat(300)}ssn${')'.repeat(300)} FROM patients`;
    expect(outputs(deep)).toEqual(['=patients.ssn']);
    const chain = `SELECT ssn${" || 'x'".repeat(3000)} FROM patients`;
    expect(outputs(chain)).toEqual(['~patients.ssn']);
  });
});
