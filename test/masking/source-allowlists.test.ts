// The allow-list of built-in functions and the catalog relation treatments, checked against the real PostgreSQL of the test run.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import pg from 'pg';
import {
  ALLOWED_FUNCTIONS, ALLOWED_GROUPS, DENIED_BY_ATTRIBUTE, DENIED_FUNCTIONS, DENIED_GROUPS, SUPPORT_GROUP,
} from '../../src/masking/source/allowed-functions.js';
import { CATALOG_RELATIONS, EXTENSION_RELATIONS, catalogTreatment } from '../../src/masking/source/catalog-relations.js';
import {
  UNTRUSTED_OPERATORS_SQL, USER_FUNCTIONS_SQL, unseenReason, type UnseenContext,
} from '../../src/masking/source/unseen.js';
import { initParser, parseTree } from '../../src/sql/parser.js';
import { scratchDatabase, type ScratchDatabase } from '../support/postgres.js';

const info = inject('pg');
let scratch: ScratchDatabase;
let db: pg.Client;

beforeAll(async () => {
  await initParser();
  scratch = await scratchDatabase(info, 'phigate_allowlists');
  db = new pg.Client({ connectionString: scratch.url });
  await db.connect();
});

afterAll(async () => {
  await db?.end();
  await scratch?.drop();
});

async function column(sql: string, params: unknown[] = []): Promise<string[]> {
  const r = await db.query<{ name: string }>(sql, params);
  return r.rows.map((row) => row.name);
}

const CATALOG_FUNCTIONS_SQL = `SELECT DISTINCT proname AS name FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace`;

describe('built-in function lists', () => {
  it('name every pg_catalog function exactly once, on one side', async () => {
    const catalog = new Set(await column(CATALOG_FUNCTIONS_SQL));
    expect(catalog.size).toBeGreaterThan(2500);
    const seen = new Map<string, string>();
    for (const g of [...ALLOWED_GROUPS, ...DENIED_GROUPS]) {
      for (const n of g.names) {
        expect(seen.get(n), `${n} is in groups ${seen.get(n)} and ${g.group}`).toBeUndefined();
        seen.set(n, g.group);
      }
    }
    const unreviewed = [...catalog].filter((n) => !ALLOWED_FUNCTIONS.has(n) && !DENIED_FUNCTIONS.has(n));
    expect(unreviewed, 'pg_catalog functions in neither list: review them').toEqual([]);
    const stale = [...ALLOWED_FUNCTIONS, ...DENIED_FUNCTIONS.keys()].filter((n) => !catalog.has(n));
    expect(stale, 'listed names that pg_catalog does not have').toEqual([]);
    expect([...ALLOWED_FUNCTIONS].filter((n) => DENIED_FUNCTIONS.has(n))).toEqual([]);
    expect(ALLOWED_FUNCTIONS.size + DENIED_FUNCTIONS.size).toBe(catalog.size);
  });

  it('deny every function that runs SQL text, reads large objects or files, or shows statement text', () => {
    for (const n of [
      'query_to_xml', 'table_to_xml', 'cursor_to_xml', 'database_to_xml', 'schema_to_xml', 'ts_stat', 'ts_rewrite',
      'current_query', 'pg_stat_get_activity', 'pg_stat_get_backend_activity', 'pg_cursor', 'pg_prepared_statement',
      'pg_get_backend_memory_contexts', 'lo_get', 'loread', 'lo_export', 'lo_import', 'lo_from_bytea', 'pg_read_file',
      'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file', 'pg_logical_slot_get_changes', 'pg_mcv_list_items',
    ]) {
      expect(DENIED_FUNCTIONS.has(n), n).toBe(true);
    }
  });

  it('deny every pg_catalog function that takes or returns internal, or is a trigger or handler', async () => {
    const machinery = await column(`SELECT DISTINCT proname AS name FROM pg_proc
      WHERE pronamespace = 'pg_catalog'::regnamespace
        AND ('internal'::regtype = ANY (proargtypes::oid[]) OR prorettype IN ('internal'::regtype, 'trigger'::regtype,
             'event_trigger'::regtype, 'language_handler'::regtype, 'fdw_handler'::regtype, 'index_am_handler'::regtype,
             'table_am_handler'::regtype, 'tsm_handler'::regtype))`);
    expect(machinery.length).toBeGreaterThan(400);
    expect(machinery.filter((n) => ALLOWED_FUNCTIONS.has(n))).toEqual([]);
  });

  it('leave out of attribute-notation checks only functions that take no ordinary argument', async () => {
    const support = DENIED_GROUPS.find((g) => g.group === SUPPORT_GROUP)?.names ?? [];
    expect(support.length).toBeGreaterThan(400);
    const callable = await column(`SELECT DISTINCT proname AS name FROM pg_proc
      WHERE pronamespace = 'pg_catalog'::regnamespace AND proname = ANY ($1::text[])
        AND pronargs > 0 AND NOT ('internal'::regtype = ANY (proargtypes::oid[]))`, [support]);
    expect(callable).toEqual([]);
    expect(DENIED_BY_ATTRIBUTE.size).toBe(DENIED_FUNCTIONS.size - support.length);
    expect(DENIED_BY_ATTRIBUTE.has('lo_get')).toBe(true);
  });

  it('allow SQL-language built-ins only when they read no relation, or only catalog relations open to masked readers', async () => {
    const bodies = (await db.query<{ name: string; body: string }>(`SELECT proname AS name,
        coalesce(nullif(prosrc, ''), pg_get_function_sqlbody(oid)) AS body FROM pg_proc
      WHERE pronamespace = 'pg_catalog'::regnamespace AND prolang = (SELECT oid FROM pg_language WHERE lanname = 'sql')`)).rows
      .filter((r) => ALLOWED_FUNCTIONS.has(r.name));
    expect(bodies.length).toBeGreaterThan(30);
    // A relation follows FROM or JOIN and is not called; EXTRACT(epoch FROM $1) and FROM f(...) are not relations.
    const read = new Set<string>();
    for (const r of bodies) for (const m of r.body.matchAll(/\b(?:from|join)\s+([a-z_][a-z0-9_.]*)\b(?!\s*\()/gi)) read.add(m[1]!);
    expect(read).toEqual(new Set(['pg_class', 'pg_description', 'pg_shdescription', 'pg_ts_config', 'pg_ts_config_map']));
    for (const relation of read) expect(catalogTreatment('pg_catalog', relation), relation).toEqual({ kind: 'allow' });
  });
});

describe('catalog relation treatments', () => {
  it('cover every relation of pg_catalog and information_schema, and name only relations that exist', async () => {
    const rows = (await db.query<{ schema: string; name: string }>(`SELECT n.nspname AS schema, c.relname AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname IN ('pg_catalog', 'information_schema') AND c.relkind IN ('r', 'v', 'm', 'f', 'p')`)).rows;
    expect(rows.length).toBeGreaterThan(200);
    const missing = rows.filter((r) => CATALOG_RELATIONS.get(r.schema)?.has(r.name) !== true).map((r) => `${r.schema}.${r.name}`);
    expect(missing).toEqual([]);
    const present = new Set(rows.map((r) => `${r.schema}.${r.name}`));
    const stale: string[] = [];
    for (const [schema, relations] of CATALOG_RELATIONS) for (const name of relations.keys()) if (!present.has(`${schema}.${name}`)) stale.push(`${schema}.${name}`);
    expect(stale).toEqual([]);
  });

  it('hide only columns that exist, and NULLs of their types replace them in a working query', async () => {
    let hidden = 0;
    for (const [schema, relations] of CATALOG_RELATIONS) {
      for (const [name, treatment] of relations) {
        if (treatment.kind !== 'hide') continue;
        const cols = (await db.query<{ attname: string; type: string }>(
          `SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute
            WHERE attrelid = format('%I.%I', $1::text, $2::text)::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
          [schema, name],
        )).rows;
        const names = new Set(cols.map((c) => c.attname));
        for (const c of treatment.columns) expect(names.has(c), `${schema}.${name}.${c}`).toBe(true);
        // What the rewriter will send: every column in order, the hidden ones as typed NULLs.
        const list = cols.map((c) => (treatment.columns.includes(c.attname) ? `NULL::${c.type} AS "${c.attname}"` : `"${c.attname}"`));
        const r = await db.query(`SELECT * FROM (SELECT ${list.join(', ')} FROM ${schema}.${name}) AS x LIMIT 1`);
        expect(r.fields.map((f) => f.name)).toEqual(cols.map((c) => c.attname));
        hidden += treatment.columns.length;
      }
    }
    expect(hidden).toBeGreaterThan(20);
  });

  it('refuse the value and file holders, hide statement text and secrets, and refuse what was not reviewed', () => {
    for (const name of ['pg_statistic', 'pg_statistic_ext_data', 'pg_largeobject', 'pg_file_settings', 'pg_hba_file_rules']) {
      expect(catalogTreatment('pg_catalog', name)?.kind, name).toBe('refuse');
    }
    expect(catalogTreatment('pg_catalog', 'pg_stat_activity')).toMatchObject({ kind: 'hide', columns: expect.arrayContaining(['query']) });
    expect(catalogTreatment('pg_catalog', 'pg_stats')).toMatchObject({ kind: 'hide', columns: expect.arrayContaining(['most_common_vals', 'histogram_bounds']) });
    expect(catalogTreatment('pg_catalog', 'pg_prepared_statements')).toMatchObject({ kind: 'hide', columns: ['statement'] });
    expect(catalogTreatment('pg_catalog', 'pg_cursors')).toMatchObject({ kind: 'hide', columns: ['statement'] });
    expect(catalogTreatment('pg_catalog', 'pg_authid')).toMatchObject({ kind: 'hide', columns: ['rolpassword'] });
    expect(catalogTreatment('pg_catalog', 'pg_class')).toEqual({ kind: 'allow' });
    expect(catalogTreatment('information_schema', 'columns')).toEqual({ kind: 'allow' });
    expect(catalogTreatment('pg_catalog', 'pg_stat_something_new')).toMatchObject({ kind: 'refuse', reason: expect.stringContaining('not reviewed') });
    expect(catalogTreatment('information_schema', 'constructor')?.kind).toBe('refuse');
    expect(catalogTreatment('pg_toast', 'pg_toast_16384')?.kind).toBe('refuse');
    expect(catalogTreatment('pg_toast_temp_3', 'pg_toast_16390')?.kind).toBe('refuse');
    expect(catalogTreatment('public', 'patients')).toBeUndefined();
    expect(catalogTreatment('pg_temp_3', 'scratch')).toBeUndefined();
  });

  it('hide the statement text of pg_stat_statements in whatever schema the extension lives', async () => {
    await db.query('CREATE SCHEMA ext; CREATE EXTENSION pg_stat_statements SCHEMA ext');
    const rels = (await db.query<{ name: string }>(`SELECT c.relname AS name FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
      WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
        AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_stat_statements')`)).rows.map((r) => r.name);
    expect(new Set(rels)).toEqual(new Set(EXTENSION_RELATIONS.keys()));
    const cols = await column(`SELECT attname AS name FROM pg_attribute WHERE attrelid = 'ext.pg_stat_statements'::regclass AND attnum > 0`);
    expect(cols).toContain('query');
    expect(catalogTreatment('ext', 'pg_stat_statements')).toMatchObject({ kind: 'hide', columns: ['query'] });
    expect(catalogTreatment('pg_catalog', 'pg_stat_statements')).toMatchObject({ kind: 'hide', columns: ['query'] });
  });
});

describe('the unseen checker over a real database', () => {
  let ctx: UnseenContext;

  beforeAll(async () => {
    await db.query(`CREATE EXTENSION IF NOT EXISTS dblink;
      CREATE FUNCTION public.get_ssn(int) RETURNS text LANGUAGE sql AS 'SELECT ''123-45-6789''';
      CREATE FUNCTION public.masked_initials(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT left($1, 1)';
      CREATE FUNCTION public.int_eqish(int, int) RETURNS bool LANGUAGE sql AS 'SELECT $1 = $2';
      CREATE OPERATOR public.=== (leftarg = int, rightarg = int, function = public.int_eqish);
      CREATE OPERATOR public.##= (leftarg = int, rightarg = int, function = pg_catalog.int4eq);`);
    ctx = {
      userFunctions: new Set(await column(USER_FUNCTIONS_SQL)),
      allowedUserFunctions: new Set(['public.masked_initials']),
      untrustedOperators: new Set(await column(UNTRUSTED_OPERATORS_SQL)),
    };
  });

  function reason(sql: string): string | undefined {
    const parsed = parseTree(sql);
    if (!parsed.ok) throw new Error(parsed.message);
    return unseenReason((parsed.value as { stmts: Array<{ stmt: unknown }> }).stmts[0]!.stmt, ctx)?.message;
  }

  it('builds its context from the catalog: extension and SQL functions, SQL-backed operators only', () => {
    expect(ctx.userFunctions.has('dblink')).toBe(true);
    expect(ctx.userFunctions.has('pg_stat_statements_reset')).toBe(true);
    expect(ctx.userFunctions.has('get_ssn')).toBe(true);
    expect(ctx.userFunctions.has('upper')).toBe(false);
    expect([...ctx.untrustedOperators]).toEqual(['===']);
  });

  it('refuses extension and unlisted user functions, allows listed ones and built-ins', () => {
    expect(reason("SELECT * FROM dblink('dbname=x', 'SELECT ssn FROM patients') AS t(ssn text)")).toContain('user-defined function dblink');
    expect(reason('SELECT ext.pg_stat_statements_reset()')).toContain('user-defined function ext.pg_stat_statements_reset');
    expect(reason('SELECT get_ssn(1)')).toContain('user-defined function get_ssn');
    expect(reason("SELECT public.masked_initials('Ada'), upper('x'), pg_size_pretty(1024::bigint)")).toBeUndefined();
    expect(reason("SELECT masked_initials('Ada')")).toContain('masked_initials');
    expect(reason('SELECT 1 === 1')).toContain('operator ===');
    expect(reason('SELECT 1 ##= 1, 1 OPERATOR(public.##=) 2')).toBeUndefined();
  });

  it('refuses attribute notation, which the server does resolve as a call', async () => {
    const r = await db.query<{ a: string; b: string }>("SELECT (1).get_ssn AS a, ('x'::text).md5 AS b");
    expect(r.rows[0]).toEqual({ a: '123-45-6789', b: '9dd4e461268c8034f5c8564e155c67a6' });
    expect(reason('SELECT (1).get_ssn')).toContain('user-defined function get_ssn');
    expect(reason("SELECT ('x'::text).md5")).toBeUndefined();
    expect(reason('SELECT (1::oid).lo_get')).toContain('lo_get');
  });

  it('refuses the settings that make the server echo statement text, which it does', async () => {
    const notices: string[] = [];
    const probe = new pg.Client({ connectionString: scratch.url });
    probe.on('notice', (n) => notices.push(n.message ?? ''));
    await probe.connect();
    try {
      await probe.query("SET log_statement = 'all'");
      await probe.query('SET client_min_messages = log');
      await probe.query("SELECT 'pad-3636363636' AS x");
    } finally {
      await probe.end();
    }
    expect(notices.some((m) => m.includes("'pad-3636363636'"))).toBe(true);
    expect(reason('SET client_min_messages = log')).toContain('client_min_messages');
  });
});
