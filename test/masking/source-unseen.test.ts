// unseenReason refuses, for masked readers, functions, operators, statements and settings that the source rewrite cannot see into, wherever they sit in the tree.
import { beforeAll, describe, expect, it } from 'vitest';
import { initParser, parseTree } from '../../src/sql/parser.js';
import { functionReason, unseenReason, type UnseenContext } from '../../src/masking/source/unseen.js';

beforeAll(async () => {
  await initParser();
});

/** The one statement of `sql`, as the lead hands it over (a RawStmt's stmt). */
function stmtOf(sql: string): unknown {
  const parsed = parseTree(sql);
  if (!parsed.ok) throw new Error(`does not parse: ${sql}: ${parsed.message}`);
  const stmts = (parsed.value as { stmts: Array<{ stmt: unknown }> }).stmts;
  expect(stmts).toHaveLength(1);
  return stmts[0]!.stmt;
}

const CTX: UnseenContext = {
  userFunctions: new Set(['get_ssn', 'my_proc', 'safe_fmt', 'mask_name', 'lower', 'dblink', 'f', 'h']),
  allowedUserFunctions: new Set(['public.safe_fmt', 'mask_name']),
  untrustedOperators: new Set(['===', '@@@']),
};

/** A database where `=`, `<` and `<=` have SQL-backed definitions outside pg_catalog (for a user type). */
const EQ_CTX: UnseenContext = { ...CTX, untrustedOperators: new Set(['=', '<', '<=']) };

const ALLOWED: Array<[string, UnseenContext?]> = [
  ['SELECT 1'],
  ['SELECT upper(full_name), length(ssn), pg_catalog.lower(full_name) FROM patients'],
  ["SELECT count(*), date_trunc('year', date_of_birth) FROM patients GROUP BY 2 HAVING count(*) > 1"],
  ["SELECT string_agg(full_name, ',' ORDER BY id) FILTER (WHERE id > 1) FROM patients"],
  ['SELECT row_number() OVER (PARTITION BY clinic ORDER BY id), rank() OVER w FROM patients WINDOW w AS (ORDER BY id)'],
  ['SELECT g FROM generate_series(1, 10) AS g, unnest(ARRAY[1, 2]) AS u'],
  ["SELECT jsonb_build_object('a', 1), to_jsonb(p), jsonb_path_query(doc, '$.a') FROM patients p"],
  [
    "SELECT EXTRACT(year FROM date_of_birth), date_of_birth AT TIME ZONE 'UTC', substring(ssn FROM 1 FOR 3), " +
      "trim(both ' ' from ssn), position('-' in ssn), overlay(ssn placing 'x' from 1), ssn SIMILAR TO '[0-9]+' FROM patients",
  ],
  ["SELECT md5(ssn), sha256(convert_to(ssn, 'UTF8')), encode(decode('00', 'hex'), 'base64') FROM patients"],
  ["SELECT has_table_privilege('patients', 'SELECT'), pg_get_viewdef('v'), pg_size_pretty(pg_total_relation_size('patients'))"],
  ["SELECT set_config('application_name', 'x', false), current_setting('search_path')"],
  ["SELECT pg_advisory_lock(42), pg_notify('ch', 'x'), pg_sleep(0), pg_current_xact_id(), version(), now()"],
  ['SELECT public.safe_fmt(ssn) FROM patients'],
  ['SELECT mask_name(full_name), other.mask_name(full_name) FROM patients'],
  ["INSERT INTO notes (body) VALUES (initcap('X')) RETURNING upper(body)"],
  ['UPDATE notes SET body = btrim(body) WHERE id IN (SELECT id FROM patients)'],
  ["INSERT INTO notes (id, body) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET body = concat(excluded.body, 'x')"],
  ['WITH x AS (SELECT abs(-1) AS v) SELECT v FROM x'],
  ["SELECT * FROM notes WHERE body LIKE 'x%' AND id BETWEEN 1 AND 2 AND id IN (1, 2) AND body IS DISTINCT FROM 'y'"],
  ["SELECT * FROM JSON_TABLE('[1]'::jsonb, '$[*]' COLUMNS (a int PATH '$')) AS jt"],
  ["SELECT xmlelement(name a, 'x'), xpath('/a', '<a/>'::xml)"],
  ['SET client_min_messages = warning'],
  ['SET debug_print_plan = off'],
  ['RESET client_min_messages'],
  ["CREATE TABLE t2 (id int DEFAULT nextval('s'), c text CHECK (length(c) < 10))"],
  ['CREATE VIEW v2 AS SELECT initcap(full_name) FROM patients'],
  ['CREATE TYPE fr AS RANGE (subtype = float8, subtype_diff = float8mi)'],
  ['CREATE TYPE shell_only'],
  ['SELECT a OPERATOR(pg_catalog.=) b, CASE WHEN a THEN 1 END FROM t', EQ_CTX],
  ['SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u) AND a = ANY (SELECT b OPERATOR(pg_catalog.=) 1 FROM u)', { ...CTX, untrustedOperators: new Set(['<']) }],
  ['EXPLAIN SELECT count(*) FROM patients'],
  ['COPY (SELECT initcap(full_name) FROM patients) TO STDOUT'],
  ['PREPARE q AS SELECT upper($1::text)'],
  ['SELECT a === b FROM t', { ...CTX, untrustedOperators: new Set() }],
  ['DROP FUNCTION get_ssn(int)'],
  ["COMMENT ON FUNCTION get_ssn(int) IS 'reads ssn'"],
  ['SELECT p.ssn, p.full_name, (p.address).city, public.patients.id, p.* FROM patients p'],
  ['SELECT p.to_jsonb, p.mask_name FROM patients p'],
  // system is the TABLESAMPLE handler: it takes internal, so t.system can only be a column.
  ['SELECT t.system FROM t TABLESAMPLE SYSTEM (10)'],
];

/** [statement, text the message must contain (naming the function, operator or statement)]. */
const REFUSED: Array<[string, string, UnseenContext?]> = [
  ["SELECT query_to_xml('select * from patients', true, false, '')", 'function query_to_xml is not allowed for readers who see masked values: it runs SQL given as text'],
  ["SELECT * FROM ts_stat('select tsv from docs')", 'function ts_stat is not allowed'],
  ["SELECT ts_rewrite('a'::tsquery, 'select q, s from aliases')", 'function ts_rewrite is not allowed'],
  ["SELECT table_to_xml('patients', true, false, '')", 'function table_to_xml is not allowed'],
  ["SELECT cursor_to_xml('c', 10, false, false, '')", 'function cursor_to_xml is not allowed'],
  ["SELECT database_to_xml(true, false, '')", 'function database_to_xml is not allowed'],
  ["SELECT schema_to_xml('public', true, false, '')", 'function schema_to_xml is not allowed'],
  ["SELECT query_to_xmlschema('select ssn from patients', true, false, '')", 'function query_to_xmlschema is not allowed'],
  ['SELECT current_query()', 'function current_query is not allowed for readers who see masked values: it shows statement text'],
  ['SELECT * FROM pg_stat_get_activity(NULL)', 'function pg_stat_get_activity is not allowed'],
  ['SELECT pg_stat_get_backend_activity(1)', 'function pg_stat_get_backend_activity is not allowed'],
  ['SELECT * FROM pg_cursor()', 'function pg_cursor is not allowed'],
  ['SELECT * FROM pg_get_backend_memory_contexts()', 'function pg_get_backend_memory_contexts is not allowed'],
  ['SELECT lo_get(123)', 'function lo_get is not allowed for readers who see masked values: large objects'],
  ["SELECT lo_from_bytea(0, convert_to(ssn, 'UTF8')) FROM patients", 'function lo_from_bytea is not allowed'],
  ['SELECT loread(lo_open(1, 262144), 10)', 'function loread is not allowed'],
  ["SELECT lo_export(1, '/tmp/x')", 'function lo_export is not allowed'],
  ["SELECT lo_import('/etc/passwd')", 'function lo_import is not allowed'],
  ["SELECT pg_read_file('postgresql.conf')", 'function pg_read_file is not allowed for readers who see masked values: it reads server files'],
  ["SELECT * FROM pg_ls_dir('.')", 'function pg_ls_dir is not allowed'],
  ['SELECT pg_mcv_list_items(stxdmcv) FROM pg_statistic_ext_data', 'function pg_mcv_list_items is not allowed'],
  ['SELECT pg_terminate_backend(1)', 'function pg_terminate_backend is not allowed'],
  ["SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)", 'function pg_logical_slot_get_changes is not allowed'],
  ["SELECT * FROM dblink('host=x', 'select ssn from patients') AS t(ssn text)", 'user-defined function dblink is not listed under functions in the policy'],
  ['SELECT public.get_ssn(1)', 'user-defined function public.get_ssn is not listed under functions in the policy: phigate cannot see what it reads'],
  ['SELECT get_ssn(1)', 'user-defined function get_ssn is not listed'],
  ['SELECT safe_fmt(ssn) FROM patients', 'user-defined function safe_fmt is not listed'],
  ['SELECT lower(full_name) FROM patients', 'function lower is not allowed for readers who see masked values when called without a schema'],
  ['CALL my_proc()', 'user-defined function my_proc is not listed'],
  ['CALL public.my_proc(1)', 'user-defined function public.my_proc is not listed'],
  ['SELECT * FROM patients p WHERE EXISTS (SELECT get_ssn(p.id))', 'get_ssn'],
  ['SELECT * FROM ROWS FROM (generate_series(1, 2), get_ssn(1)) AS r', 'get_ssn'],
  ['SELECT * FROM patients, LATERAL get_ssn(patients.id) AS s', 'get_ssn'],
  ['WITH c AS (SELECT get_ssn(1)) SELECT * FROM c', 'get_ssn'],
  ['WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT get_ssn(n) FROM c) SELECT * FROM c', 'get_ssn'],
  ['SELECT count(*) FILTER (WHERE get_ssn(id) IS NOT NULL) FROM patients', 'get_ssn'],
  ["SELECT string_agg(ssn, ',' ORDER BY get_ssn(id)) FROM patients", 'get_ssn'],
  ['SELECT sum(id) OVER (ORDER BY get_ssn(id)) FROM patients', 'get_ssn'],
  ['SELECT id FROM patients GROUP BY id HAVING max(get_ssn(id)) IS NULL', 'get_ssn'],
  ['SELECT (SELECT get_ssn(1)), ARRAY(SELECT get_ssn(2))', 'get_ssn'],
  ['SELECT * FROM patients ORDER BY get_ssn(id) LIMIT 1', 'get_ssn'],
  ['INSERT INTO notes VALUES (get_ssn(1))', 'get_ssn'],
  ['INSERT INTO notes SELECT 1 RETURNING get_ssn(id)', 'get_ssn'],
  ['INSERT INTO notes VALUES (1) ON CONFLICT (id) DO UPDATE SET body = get_ssn(1)', 'get_ssn'],
  ["UPDATE notes SET body = 'x' WHERE get_ssn(id) = 'y'", 'get_ssn'],
  ['DELETE FROM notes USING patients p WHERE p.id = get_ssn(notes.id)', 'get_ssn'],
  ['MERGE INTO notes n USING patients p ON n.id = p.id WHEN MATCHED THEN UPDATE SET body = get_ssn(1)', 'get_ssn'],
  ['CREATE TABLE t3 (a text DEFAULT get_ssn(1))', 'get_ssn'],
  ['CREATE TABLE t4 (a text CHECK (get_ssn(1) IS NOT NULL))', 'get_ssn'],
  ['ALTER TABLE notes ALTER COLUMN body SET DEFAULT get_ssn(1)', 'get_ssn'],
  ['CREATE INDEX ON notes (get_ssn(id))', 'get_ssn'],
  ['CREATE DOMAIN d AS text CHECK (get_ssn(1) IS NOT NULL)', 'get_ssn'],
  ["SELECT * FROM JSON_TABLE(get_ssn(1)::jsonb, '$' COLUMNS (a int PATH '$')) AS jt", 'get_ssn'],
  ["SELECT * FROM XMLTABLE('/a' PASSING get_ssn(1) COLUMNS a int) AS x", 'get_ssn'],
  ['SELECT x FROM (VALUES (get_ssn(1))) AS v(x)', 'get_ssn'],
  ['EXPLAIN ANALYZE SELECT get_ssn(1)', 'get_ssn'],
  ['PREPARE q AS SELECT get_ssn($1)', 'get_ssn'],
  ['DECLARE c CURSOR WITH HOLD FOR SELECT get_ssn(1)', 'get_ssn'],
  ['CREATE VIEW v3 AS SELECT get_ssn(1)', 'get_ssn'],
  ['CREATE MATERIALIZED VIEW mv AS SELECT get_ssn(1)', 'get_ssn'],
  ['CREATE TEMP TABLE tt AS SELECT get_ssn(1)', 'get_ssn'],
  ['COPY (SELECT get_ssn(1)) TO STDOUT', 'get_ssn'],
  ['CREATE SCHEMA s CREATE TABLE t (a text DEFAULT get_ssn(1))', 'get_ssn'],
  ["SELECT (SELECT query_to_xml(q, true, false, '') FROM queries LIMIT 1)", 'query_to_xml'],
  ["SELECT pg_catalog.query_to_xml('select 1', true, false, '')", 'function pg_catalog.query_to_xml is not allowed'],
  ['SELECT pg_catalog.no_such_function()', "function pg_catalog.no_such_function is not allowed for readers who see masked values: it is neither on phigate's list"],
  ['SELECT information_schema._pg_expandarray(ARRAY[1])', 'function information_schema._pg_expandarray is not allowed'],
  ['SELECT not_defined_anywhere(1)', "function not_defined_anywhere is not allowed for readers who see masked values: it is neither on phigate's list"],
  ['SELECT "LOWER"(ssn) FROM patients', 'function LOWER'],
  ['SELECT "Upper"(ssn) FROM patients', "function Upper is not allowed for readers who see masked values: it is neither on phigate's list"],
  ['SELECT (1::oid).lo_get', 'function lo_get (called as .lo_get) is not allowed for readers who see masked values: large objects'],
  ["SELECT ('postgresql.conf'::text).pg_read_file", 'function pg_read_file (called as .pg_read_file) is not allowed'],
  ["SELECT ('select ssn from patients'::text).ts_stat", 'function ts_stat (called as .ts_stat) is not allowed'],
  ['SELECT p.get_ssn FROM patients p', '.get_ssn is not allowed for readers who see masked values: it may call the user-defined function get_ssn'],
  ['SELECT public.patients.get_ssn FROM patients', '.get_ssn is not allowed'],
  ['SELECT (p.id).get_ssn FROM patients p', '.get_ssn is not allowed'],
  ['SELECT (p.*).get_ssn FROM patients p', '.get_ssn is not allowed'],
  ['SELECT (p.address).city.get_ssn FROM patients p', '.get_ssn is not allowed'],
  ['SELECT * FROM patients p WHERE p.get_ssn LIKE $1', '.get_ssn is not allowed'],
  ['SELECT p.safe_fmt FROM patients p', '.safe_fmt is not allowed'],
  ['DO $$ BEGIN PERFORM 1; END $$', 'a DO block is not allowed for readers who see masked values'],
  ["CREATE FUNCTION f2() RETURNS int LANGUAGE sql AS 'select 1'", 'CREATE FUNCTION is not allowed'],
  ["CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS 'select 1'", 'CREATE OR REPLACE PROCEDURE is not allowed'],
  ['CREATE AGGREGATE a(int) (sfunc = int4pl, stype = int)', 'CREATE AGGREGATE is not allowed'],
  ['CREATE OPERATOR ==== (leftarg = int, rightarg = int, function = int4eq)', 'CREATE OPERATOR is not allowed'],
  ['CREATE CAST (int AS text) WITH FUNCTION f(int)', 'CREATE CAST is not allowed'],
  ['CREATE TRIGGER tr BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION f()', 'CREATE TRIGGER is not allowed'],
  ['CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()', 'CREATE EVENT TRIGGER is not allowed'],
  ['CREATE RULE r AS ON INSERT TO notes DO ALSO INSERT INTO log VALUES (1)', 'CREATE RULE is not allowed'],
  ['CREATE POLICY p ON notes USING (true)', 'CREATE POLICY is not allowed'],
  ['ALTER POLICY p ON notes USING (false)', 'ALTER POLICY is not allowed'],
  ['CREATE LANGUAGE plfoo HANDLER h', 'CREATE LANGUAGE is not allowed'],
  ['CREATE TRANSFORM FOR int LANGUAGE sql (FROM SQL WITH FUNCTION f(internal))', 'CREATE TRANSFORM is not allowed'],
  ['CREATE FOREIGN TABLE ft (a int) SERVER s', 'CREATE FOREIGN TABLE is not allowed'],
  ['ALTER FOREIGN TABLE ft ADD COLUMN b int', 'ALTER FOREIGN TABLE is not allowed'],
  ['ALTER FOREIGN TABLE ft RENAME COLUMN a TO b', 'ALTER FOREIGN TABLE ... RENAME is not allowed'],
  ['CREATE SERVER s FOREIGN DATA WRAPPER w', 'CREATE SERVER is not allowed'],
  ["CREATE USER MAPPING FOR u SERVER s OPTIONS (password 'x')", 'CREATE USER MAPPING is not allowed'],
  ['CREATE FOREIGN DATA WRAPPER w', 'CREATE FOREIGN DATA WRAPPER is not allowed'],
  ['IMPORT FOREIGN SCHEMA x FROM SERVER s INTO y', 'IMPORT FOREIGN SCHEMA is not allowed'],
  ['CREATE PUBLICATION p FOR ALL TABLES', 'CREATE PUBLICATION is not allowed'],
  ["CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", 'CREATE SUBSCRIPTION is not allowed'],
  ['CREATE ACCESS METHOD m TYPE TABLE HANDLER h', 'CREATE ACCESS METHOD is not allowed'],
  ['CREATE OPERATOR CLASS oc FOR TYPE int USING btree AS OPERATOR 1 <', 'CREATE OPERATOR CLASS is not allowed'],
  ['ALTER FUNCTION f(int) SECURITY DEFINER', 'ALTER FUNCTION is not allowed'],
  ['ALTER FUNCTION f(int) RENAME TO lower', 'ALTER FUNCTION ... RENAME is not allowed'],
  ['ALTER FUNCTION f(int) OWNER TO admin', 'ALTER FUNCTION ... OWNER TO is not allowed'],
  ['ALTER AGGREGATE a(int) SET SCHEMA pg_temp', 'ALTER AGGREGATE ... SET SCHEMA is not allowed'],
  ['CREATE TYPE z (input = f, output = h)', 'CREATE TYPE with support functions is not allowed'],
  ['CREATE TYPE r2 AS RANGE (subtype = float8, subtype_diff = get_ssn)', 'user-defined function get_ssn is not listed'],
  ["LOAD 'auto_explain'", 'LOAD is not allowed'],
  ['CREATE EXTENSION dblink', 'CREATE EXTENSION is not allowed'],
  ['ALTER EXTENSION dblink UPDATE', 'ALTER EXTENSION is not allowed'],
  ['SELECT a === b FROM t', 'operator === is not allowed for readers who see masked values: a user-defined operator === runs a SQL or procedural function'],
  ['SELECT a OPERATOR(public.===) b FROM t', 'operator OPERATOR(public.===) is not allowed'],
  ['SELECT * FROM t WHERE a @@@ ANY (SELECT b FROM u)', 'operator @@@ is not allowed'],
  ['SELECT * FROM t ORDER BY a USING @@@', 'operator @@@ is not allowed'],
  ['CREATE TABLE t5 (c int, EXCLUDE USING gist (c WITH @@@))', 'operator @@@ (implied by EXCLUDE) is not allowed'],
  ['SELECT * FROM t JOIN u USING (id)', 'operator = (implied by JOIN USING) is not allowed', EQ_CTX],
  ['SELECT * FROM t NATURAL JOIN u', 'operator = (implied by JOIN USING) is not allowed', EQ_CTX],
  ['SELECT CASE a WHEN 1 THEN 2 END FROM t', 'operator = (implied by CASE x WHEN) is not allowed', EQ_CTX],
  ['SELECT * FROM t WHERE a IN (1, 2)', 'operator = is not allowed', EQ_CTX],
  ['SELECT * FROM t WHERE a NOT IN (SELECT b FROM u)', 'operator = (implied by IN (SELECT ...)) is not allowed', EQ_CTX],
  ['SELECT * FROM t WHERE (a, b) < (1, 2)', 'operator < is not allowed', EQ_CTX],
  ['SELECT NULLIF(a, b), a IS DISTINCT FROM b FROM t', 'operator = is not allowed', EQ_CTX],
  ['SELECT * FROM t WHERE a BETWEEN 1 AND 2', 'operator <= (implied by BETWEEN) is not allowed', EQ_CTX],
  ['SELECT * FROM t WHERE a = 1', 'write OPERATOR(pg_catalog.=) for the built-in one', EQ_CTX],
  ['SET client_min_messages = log', 'setting client_min_messages to log is not allowed'],
  ['SET LOCAL client_min_messages TO debug1', 'setting client_min_messages to debug1 is not allowed'],
  ['SET debug_print_plan = on', 'setting debug_print_plan is not allowed'],
  ['SET debug_print_parse TO 1', 'setting debug_print_parse is not allowed'],
  ["SELECT set_config('client_min_messages', 'log', false)", 'setting client_min_messages to log is not allowed'],
  ["SELECT pg_catalog.set_config('debug_print_rewritten', 'on'::text, true)", 'setting debug_print_rewritten is not allowed'],
  ["SELECT set_config(name, 'x', false) FROM settings", 'set_config with a computed setting name is not allowed'],
  ['ALTER ROLE alice SET debug_print_parse = true', 'setting debug_print_parse is not allowed'],
  ['ALTER DATABASE ehr SET client_min_messages = log', 'setting client_min_messages to log is not allowed'],
  ['ALTER SYSTEM SET client_min_messages = debug5', 'setting client_min_messages to debug5 is not allowed'],
];

describe('unseenReason', () => {
  it.each(ALLOWED)('allows %s', (sql, ctx) => {
    expect(unseenReason(stmtOf(sql), ctx ?? CTX)).toBeUndefined();
  });

  it.each(REFUSED)('refuses %s', (sql, expected, ctx) => {
    const r = unseenReason(stmtOf(sql), ctx ?? CTX);
    expect(r?.code).toBe('42501');
    expect(r?.message.startsWith('phigate: ')).toBe(true);
    expect(r?.message).toContain(expected);
  });

  it('checks many statements', () => {
    expect(ALLOWED.length + REFUSED.length).toBeGreaterThanOrEqual(60);
  });

  it('refuses a denied built-in even when the policy lists its name', () => {
    const ctx = { ...CTX, allowedUserFunctions: new Set(['query_to_xml', 'public.lo_get']) };
    expect(functionReason(['query_to_xml'], ctx)?.message).toContain('function query_to_xml is not allowed');
    expect(functionReason(['pg_catalog', 'query_to_xml'], ctx)?.message).toContain('pg_catalog.query_to_xml');
    // A user's own public.lo_get, called qualified, is the policy's to allow.
    expect(functionReason(['public', 'lo_get'], ctx)).toBeUndefined();
  });

  it('lets the policy allow an unqualified name that a user function shadows', () => {
    const ctx = { ...CTX, allowedUserFunctions: new Set(['lower']) };
    expect(functionReason(['lower'], ctx)).toBeUndefined();
    expect(functionReason(['lower'], CTX)?.message).toContain('write pg_catalog.lower');
  });

  it('reads a three-part name by its schema', () => {
    expect(functionReason(['ehr', 'pg_catalog', 'upper'], CTX)).toBeUndefined();
    expect(functionReason(['ehr', 'public', 'get_ssn'], CTX)?.message).toContain('public.get_ssn');
  });

  it('finds a refusal deep in a long statement', () => {
    const arms = Array.from({ length: 200 }, (_, i) => `SELECT upper(full_name) FROM patients WHERE id = ${i}`);
    arms.push('SELECT get_ssn(1)');
    expect(unseenReason(stmtOf(arms.join(' UNION ALL ')), CTX)?.message).toContain('get_ssn');
    arms.pop();
    expect(unseenReason(stmtOf(arms.join(' UNION ALL ')), CTX)).toBeUndefined();
  });
});
