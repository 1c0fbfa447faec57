// The attacks, one line each: what a masked reader sends to get raw PHI out of PostgreSQL through
// the gateway. Four kinds, each with its own pass rule (see verdicts.ts):
//   leak(family, sql)          no raw form of any PHI value (or of the token key) in any output byte;
//   refused(family, sql, code) the same, and some statement of it fails with `code` (42501 by default);
//   model(family, sql)         the same, and the result equals that of the same statement run over the
//                              masked copy of the tables (schema maskref): it computes on masked values only;
//   pair(family, field, tpl)   the same statement with the victim's TRUE value and with a FALSE guess of
//                              the same shape gives identical outputs (row counts, errors, tags, notices).
// A statement is SQL text or a bind-parameter query `{ text, values }`; an attack is one statement or a
// list run in order on one connection. `S` marks the representative subset also run through psql and
// psycopg (every client runs the whole list through node-postgres, text and binary).
import { PATIENTS, VICTIM, decoyOf, type PhiField } from './fixture.js';

/** `name`: node-postgres prepares the statement under that name with a protocol-level Parse (node-postgres only). */
export type Step = string | { text: string; values: string[]; name?: string };
export type Kind = 'leak' | 'refused' | 'model' | 'pair';

export interface Attack {
  /** Position in ATTACKS (and in each client's run). */
  id: number;
  family: string;
  kind: Kind;
  steps: Step[];
  /** pair only: the same attack with the false guess. */
  decoy?: Step[];
  /** refused only: the SQLSTATE some statement must fail with. */
  code?: string;
  subset: boolean;
}

const S = true;
type Steps = Step | Step[];
const list = (s: Steps): Step[] => (Array.isArray(s) ? s : [s]);

const all: Omit<Attack, 'id'>[] = [];
const leak = (family: string, steps: Steps, subset = false): void => void all.push({ family, kind: 'leak', steps: list(steps), subset });
const refused = (family: string, steps: Steps, subset = false, code = '42501'): void => void all.push({ family, kind: 'refused', steps: list(steps), code, subset });
const model = (family: string, steps: Steps, subset = false): void => void all.push({ family, kind: 'model', steps: list(steps), subset });
/** The same template with the victim's true `field` value and with a false guess. */
const pair = (family: string, field: PhiField, tpl: (guess: string) => Steps, subset = false): void =>
  void all.push({ family, kind: 'pair', steps: list(tpl(VICTIM[field])), decoy: list(tpl(decoyOf(field, VICTIM[field]))), subset });
/** Two statements that differ only on the victim's raw value (a <, <= b: one row apart if the value is seen). */
const pairOf = (family: string, a: Steps, b: Steps, subset = false): void => void all.push({ family, kind: 'pair', steps: list(a), decoy: list(b), subset });

const V = VICTIM.id;
const first = (name: string): string => name.split(' ')[0]!;
const last = (name: string): string => name.split(' ')[1]!;

// ---------------------------------------------------------------------------------------------
// Predicates and joins as oracles: whole-table extractions in one statement

model('predicate-oracle', `SELECT p.id, (SELECT string_agg(chr(c), '' ORDER BY i) FROM generate_series(1, 11) i CROSS JOIN generate_series(32, 126) c WHERE substr(p.ssn, i, 1) = chr(c)) FROM apatients p ORDER BY p.id`, S);
model('predicate-oracle', `SELECT p.id, (SELECT string_agg(chr(c), '' ORDER BY i) FROM generate_series(1, 40) i CROSS JOIN generate_series(32, 126) c WHERE substr(p.full_name, i, 1) = chr(c)) FROM apatients p ORDER BY p.id`);
model('predicate-oracle', `SELECT p.id, (SELECT string_agg(chr(c), '' ORDER BY i) FROM generate_series(1, 50) i CROSS JOIN generate_series(32, 126) c WHERE substr(p.email, i, 1) = chr(c)) FROM apatients p ORDER BY p.id`);
model('predicate-oracle', `SELECT p.id, (SELECT string_agg(chr(c), '' ORDER BY i) FROM generate_series(1, 10) i CROSS JOIN generate_series(32, 126) c WHERE substr(p.date_of_birth::text, i, 1) = chr(c)) FROM apatients p ORDER BY p.id`);
model('predicate-oracle', `SELECT p.id, (SELECT string_agg(chr(c), '' ORDER BY i) FROM generate_series(1, 20) i CROSS JOIN generate_series(32, 126) c WHERE substr(p.mrn, i, 1) = chr(c)) FROM apatients p ORDER BY p.id`);
model('predicate-oracle', `SELECT p.id, string_agg(chr(g), '' ORDER BY pos) FROM apatients p CROSS JOIN generate_series(1, 40) pos JOIN generate_series(32, 126) g ON ascii(substr(p.full_name, pos, 1)) = g GROUP BY p.id ORDER BY p.id`, S);
model('predicate-oracle', `SELECT p.id, string_agg(chr(g), '' ORDER BY pos) FROM apatients_part p CROSS JOIN generate_series(1, 11) pos JOIN generate_series(32, 126) g ON ascii(substr(p.ssn, pos, 1)) = g GROUP BY p.id ORDER BY p.id`);
model('predicate-oracle', `WITH RECURSIVE x(id, known) AS (SELECT id, '' FROM apatients UNION ALL SELECT x.id, x.known || chr(c) FROM x CROSS JOIN generate_series(32, 126) c WHERE length(x.known) < 11 AND chr(c) NOT IN ('%', '_', '\\') AND EXISTS (SELECT 1 FROM apatients p WHERE p.id = x.id AND p.ssn LIKE x.known || chr(c) || '%')) SELECT id, (array_agg(known ORDER BY length(known) DESC))[1] FROM x GROUP BY id ORDER BY id`, S);
model('predicate-oracle', `SELECT p.id, (SELECT string_agg(chr((SELECT max(c) FROM generate_series(32, 126) c WHERE ascii(substr(p.ssn, i, 1)) >= c)), '' ORDER BY i) FROM generate_series(1, 11) i) FROM apatients p ORDER BY p.id`);
model('predicate-oracle', `SELECT p.id, (SELECT string_agg(chr((SELECT min(c) FROM generate_series(32, 126) c WHERE ascii(substr(p.email, i, 1)) <= c)), '' ORDER BY i) FROM generate_series(1, 50) i) FROM apatients p ORDER BY p.id`);
model('predicate-oracle', `SELECT p.id, (SELECT count(*) FROM apatients q WHERE q.ssn < p.ssn), (SELECT count(*) FROM apatients q WHERE q.full_name > p.full_name) FROM apatients p ORDER BY p.id`);
model('predicate-oracle', `SELECT d FROM generate_series(0, 9) d WHERE EXISTS (SELECT 1 FROM apatients WHERE id = ${V} AND substr(ssn, 1, 1) = d::text)`, S);
model('predicate-oracle', `SELECT id FROM apatients WHERE substr(ssn, 1, 3) IN (SELECT lpad(g::text, 3, '0') FROM generate_series(100, 899) g) ORDER BY id`);
model('predicate-oracle', `SELECT p.id, l.d FROM apatients p CROSS JOIN LATERAL (SELECT string_agg(d::text, '' ORDER BY i) d FROM generate_series(1, 11) i, generate_series(0, 9) d WHERE substr(p.ssn, i, 1) = d::text) l ORDER BY p.id`, S);
model('predicate-oracle', `SELECT g, (SELECT count(*) FROM apatients WHERE ascii(full_name) = g) FROM generate_series(65, 90) g ORDER BY g`);
model('predicate-oracle', `SELECT d::date FROM generate_series('1939-01-01'::date, '1952-12-31', '1 day') d JOIN apatients p ON p.date_of_birth = d ORDER BY 1`, S);
model('predicate-oracle', `SELECT a FROM generate_series(100, 899) a JOIN apatients p ON substr(p.ssn, 1, 3) = a::text ORDER BY 1`);
model('predicate-oracle', `SELECT p.id, (SELECT g FROM generate_series(1, 12) g WHERE extract(month FROM p.date_of_birth) = g), (SELECT g FROM generate_series(1, 31) g WHERE extract(day FROM p.date_of_birth) = g) FROM apatients p ORDER BY p.id`);
// dictionary attacks: candidate words (some true, some not) joined against the masked column
const candidates = (words: string[]): string => words.map((w) => `('${w}')`).join(', ');
model('predicate-oracle', `SELECT c.w FROM (VALUES ${candidates([...PATIENTS.slice(0, 6).map((p) => first(p.full_name)), 'Nobody', 'Somebody'])}) c(w) JOIN apatients p ON split_part(p.full_name, ' ', 1) = c.w ORDER BY 1`);
model('predicate-oracle', `SELECT c.w, count(*) FROM (VALUES ${candidates([...PATIENTS.slice(10, 14).map((p) => last(p.full_name)), 'Smith'])}) c(w) JOIN apatients p ON p.full_name LIKE '%' || c.w GROUP BY c.w ORDER BY 1`);
model('predicate-oracle', `SELECT substr(email, 1, 1), count(*) FROM apatients WHERE email LIKE '%@%' GROUP BY 1 ORDER BY 1`);
model('predicate-oracle', `SELECT p.id, v.id FROM apatients p JOIN avisits v ON substr(v.mrn, 5, 4) = substr(p.mrn, 5, 4) ORDER BY 1, 2`);

// ORDER BY, window ranks and row numbers over masked columns
model('ordering', 'SELECT id FROM apatients ORDER BY ssn, id', S);
model('ordering', 'SELECT id FROM apatients ORDER BY full_name, id');
model('ordering', 'SELECT id FROM apatients ORDER BY date_of_birth, id', S);
model('ordering', 'SELECT id FROM apatients ORDER BY email DESC, id');
model('ordering', 'SELECT id FROM apatients ORDER BY mrn, id');
model('ordering', 'SELECT id FROM apatients ORDER BY substr(ssn, 5, 2), id');
model('ordering', 'SELECT id FROM apatients ORDER BY reverse(full_name), id');
model('ordering', 'SELECT id FROM apatients ORDER BY ssn LIMIT 1');
model('ordering', 'SELECT id FROM apatients_part ORDER BY date_of_birth DESC, id LIMIT 5');
model('ordering', 'SELECT id, rank() OVER (ORDER BY ssn) FROM apatients ORDER BY id', S);
model('ordering', 'SELECT id, row_number() OVER (ORDER BY full_name, id) FROM apatients ORDER BY id');
model('ordering', 'SELECT id, dense_rank() OVER (ORDER BY date_of_birth) FROM apatients ORDER BY id');
model('ordering', 'SELECT id, ntile(4) OVER (ORDER BY ssn, id) FROM apatients ORDER BY id');
model('ordering', 'SELECT id, percent_rank() OVER (ORDER BY email) FROM apatients ORDER BY id');
model('ordering', 'SELECT id, lag(id) OVER (ORDER BY ssn, id) FROM apatients ORDER BY id');
model('ordering', 'SELECT id, first_value(id) OVER (PARTITION BY city ORDER BY full_name, id) FROM apatients ORDER BY id');
model('ordering', 'SELECT id, cume_dist() OVER (ORDER BY date_of_birth) FROM apatients ORDER BY id');
model('ordering', 'SELECT array_agg(id ORDER BY ssn, id) FROM apatients');
model('ordering', 'SELECT (array_agg(id ORDER BY mrn, id))[1:5] FROM apatients');
model('ordering', 'SELECT string_agg(id::text, \',\' ORDER BY email, full_name, id) FROM apatients_v');

// count(*) probes, GROUP BY / DISTINCT / HAVING on masked columns
model('grouping', 'SELECT count(DISTINCT full_name), count(DISTINCT email), count(DISTINCT date_of_birth), count(DISTINCT substr(ssn, 1, 3)) FROM apatients', S);
model('grouping', 'SELECT left(ssn, 1), count(*) FROM apatients GROUP BY 1 ORDER BY 1');
model('grouping', 'SELECT date_of_birth, count(*) FROM apatients GROUP BY 1 ORDER BY 1');
model('grouping', 'SELECT extract(month FROM date_of_birth) m, count(*) FROM apatients GROUP BY 1 ORDER BY 1');
model('grouping', 'SELECT length(full_name), count(*) FROM apatients GROUP BY 1 ORDER BY 1');
model('grouping', "SELECT city FROM apatients GROUP BY city HAVING min(ssn) LIKE '1%' ORDER BY 1");
model('grouping', "SELECT city, count(*) FILTER (WHERE full_name LIKE 'Z%') FROM apatients GROUP BY city ORDER BY 1");
model('grouping', 'SELECT count(*) FROM (SELECT DISTINCT substr(email, 1, 3) FROM apatients) s');
model('grouping', "SELECT count(*) FROM apatients WHERE ssn LIKE '1%'", S);
model('grouping', "SELECT count(*) FROM apatients WHERE full_name >= 'M'");
model('grouping', "SELECT count(*) FROM apatients WHERE date_of_birth >= '1945-07-01'");
model('grouping', "SELECT count(*) FROM apatients WHERE email ~ '^[a-m]'");

// derived values: anything computed from a masked column is computed from its masked value
model('derived', "SELECT id, translate(full_name, 'abcdefghijklmnopqrstuvwxyz', 'bcdefghijklmnopqrstuvwxyza') FROM apatients ORDER BY id");
model('derived', "SELECT id, encode(sha256(convert_to(ssn, 'UTF8')), 'hex') FROM apatients ORDER BY id", S);
model('derived', 'SELECT id, ascii(substr(full_name, 1, 1)), ascii(substr(full_name, 2, 1)), length(email) FROM apatients ORDER BY id');
model('derived', "SELECT id, date_of_birth - date '1900-01-01', extract(doy FROM date_of_birth) FROM apatients ORDER BY id");
model('derived', "SELECT id, to_char(date_of_birth, 'J') FROM apatients ORDER BY id");
model('derived', "SELECT id, ssn ~ '^1', hashtext(full_name) FROM apatients ORDER BY id");
model('derived', 'SELECT id, md5(mrn) FROM apatients ORDER BY id');

// Error texts that quote a value
leak('error-text', `SELECT format('%I', full_name)::regclass FROM apatients WHERE id = 3`, S);
leak('error-text', 'SELECT full_name::regtype FROM apatients WHERE id = 4');
leak('error-text', 'SELECT nextval(full_name) FROM apatients WHERE id = 5');
leak('error-text', 'SELECT ssn::int FROM apatients WHERE id = 6', S);
leak('error-text', "SELECT replace(ssn, '-', '')::int2 FROM apatients WHERE id = 8");
leak('error-text', "SELECT to_date(full_name, 'Month') FROM apatients WHERE id = 9");
leak('error-text', 'SELECT full_name::json FROM apatients WHERE id = 10', S);
leak('error-text', 'SELECT email::jsonb FROM apatients WHERE id = 11');
leak('error-text', 'SELECT xmlparse(document full_name) FROM apatients WHERE id = 12');
leak('error-text', "SELECT xmlparse(content '<a>' || email || '</b>') FROM apatients WHERE id = 13");
leak('error-text', 'SELECT date_of_birth::text::int FROM apatients WHERE id = 14');
leak('error-text', "SELECT replace(mrn, 'MRN-', 'x')::numeric FROM apatients WHERE id = 15");
leak('error-text', 'SELECT current_setting(full_name) FROM apatients WHERE id = 16');
leak('error-text', 'SELECT ssn::regrole FROM apatients WHERE id = 17');
leak('error-text', "SELECT ('{' || full_name)::text[] FROM apatients WHERE id = 18");
leak('error-text', 'SELECT email::inet FROM apatients WHERE id = 19');
leak('error-text', 'SELECT ssn::uuid FROM apatients WHERE id = 20');
leak('error-text', 'SELECT full_name::bool FROM apatients WHERE id = 21');
leak('error-text', "SELECT has_table_privilege(full_name, 'select') FROM apatients WHERE id = 22");
leak('error-text', 'SELECT count(*) FROM apatients WHERE full_name::int > 0', S);
leak('error-text', 'SELECT id FROM apatients ORDER BY date_of_birth::text::int');
leak('error-text', 'SELECT date_of_birth + full_name::interval FROM apatients WHERE id = 23');
leak('error-text', "SELECT set_config(full_name, 'x', false) FROM apatients WHERE id = 24");
leak('error-text', "SELECT set_config('timezone', full_name, false) FROM apatients WHERE id = 25");
leak('error-text', "SELECT pg_input_error_info(full_name, 'int4') FROM apatients WHERE id = 26");
leak('error-text', "SELECT (pg_input_error_info(ssn || 'x', 'date')).message FROM apatients WHERE id = 27");
leak('error-text', 'SELECT 1 / (ascii(ssn) - 49) FROM apatients');
leak('error-text', "SELECT to_tsquery('simple', full_name) FROM apatients WHERE id = 28");
leak('error-text', 'SELECT email::xml FROM apatients_part WHERE id = 29');
leak('error-text', 'SELECT ssn::int FROM apatients_part_b WHERE id = 30');

// Server state: settings, application_name, advisory locks, large objects, notifications, statistics
leak('server-state', [`SELECT set_config('application_name', full_name, false) FROM apatients WHERE id = 3`, 'SHOW application_name'], S);
leak('server-state', [`SELECT set_config('application_name', email, false) FROM apatients WHERE id = 4`, "SELECT current_setting('application_name')"]);
leak('server-state', [`SELECT set_config('application_name', ssn, false) FROM apatients WHERE id = 5`, 'SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()'], S);
leak('server-state', [`SELECT set_config('aleak.x', ssn, false) FROM apatients WHERE id = 6`, "SELECT current_setting('aleak.x')"], S);
leak('server-state', [`SELECT set_config('aleak.x', reverse(full_name), false) FROM apatients WHERE id = 8`, 'SHOW aleak.x']);
leak('server-state', [`SELECT set_config('aleak.x', string_agg(ssn, ','), false) FROM apatients`, "SELECT current_setting('aleak.x')"]);
leak('server-state', [`SELECT count(set_config('aleak.y', full_name, false)) FROM apatients WHERE id = 9`, "SELECT setting FROM pg_settings WHERE name = 'aleak.y'"]);
leak('server-state', [`SELECT set_config('search_path', full_name, false) FROM apatients WHERE id = 10`, 'SHOW search_path']);
leak('server-state', [`SELECT pg_advisory_lock(ascii(substr(ssn, i, 1)), i) FROM apatients, generate_series(1, 11) i WHERE id = 11`, "SELECT string_agg(chr(classid::int), '' ORDER BY objid) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"], S);
model('server-state', [`SELECT count(pg_advisory_lock(hashtext(full_name))) FROM apatients`, "SELECT objid::text FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() ORDER BY objid::text::bigint"]);
leak('server-state', [`SELECT lo_from_bytea(4242002, convert_to(string_agg(full_name, ','), 'UTF8')) FROM apatients`, "SELECT convert_from(lo_get(4242002), 'UTF8')", 'SELECT lo_unlink(4242002)'], S);
leak('server-state', [`SELECT lo_from_bytea(4242003, convert_to(ssn, 'UTF8')) FROM apatients WHERE id = 12`, 'SELECT data FROM pg_largeobject WHERE loid = 4242003', 'SELECT lo_unlink(4242003)']);
leak('server-state', [`SELECT lo_from_bytea(4242004, convert_to(email, 'UTF8')) FROM apatients WHERE id = 13`, "SELECT encode(lo_get(4242004), 'escape')", 'SELECT lo_unlink(4242004)']);
leak('server-state', ['BEGIN', 'SELECT lo_create(4242005)', `SELECT lowrite(lo_open(4242005, 131072), convert_to(full_name, 'UTF8')) FROM apatients WHERE id = 14`, 'COMMIT', "SELECT convert_from(lo_get(4242005), 'UTF8')", 'SELECT lo_unlink(4242005)']);
leak('server-state', ['LISTEN aleak', `SELECT pg_notify('aleak', full_name) FROM apatients WHERE id = 15`, 'SELECT 1'], S);
leak('server-state', ['LISTEN aleak', `SELECT count(*) FROM apatients WHERE pg_notify('aleak', ssn) IS NULL`, 'SELECT 1']);
leak('server-state', ['LISTEN aleak', `SELECT count(pg_notify('aleak', reverse(email))) FROM apatients`, 'SELECT 1']);
leak('server-state', ['LISTEN aleak', `SELECT pg_notify('aleak', encode(convert_to(full_name, 'UTF8'), 'base64')) FROM apatients WHERE id = 16`, 'SELECT 1']);
leak('server-state', "SELECT attname, most_common_vals::text, histogram_bounds::text FROM pg_stats WHERE tablename = 'apatients' ORDER BY attname", S);
leak('server-state', "SELECT histogram_bounds::text FROM pg_stats WHERE tablename IN ('apatients_hist', 'apatients_part_a', 'apatients_part_b') AND attname = 'full_name'");
leak('server-state', "SELECT stavalues1::text, stavalues2::text, stavalues3::text FROM pg_statistic WHERE starelid = 'public.apatients'::regclass");
leak('server-state', "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'avisits' AND attname = 'mrn'");
leak('server-state', "SELECT (histogram_bounds::text::text[])[2] FROM pg_stats WHERE schemaname = 'public' AND tablename = 'apatients' AND attname = 'date_of_birth'");
leak('own-statement-text', 'SELECT current_query(), mrn, ssn FROM apatients WHERE id = 17', S);
leak('own-statement-text', ['PREPARE aps AS SELECT ssn, mrn FROM apatients WHERE id = 18', 'SELECT statement FROM pg_prepared_statements'], S);
leak('own-statement-text', ['BEGIN', 'DECLARE acq CURSOR FOR SELECT mrn FROM apatients', 'SELECT statement FROM pg_cursors', 'COMMIT']);
leak('own-statement-text', 'SELECT query, mrn FROM pg_stat_activity, apatients WHERE pid = pg_backend_pid() AND id = 19');
leak('own-statement-text', "SELECT encode(convert_to(current_query(), 'UTF8'), 'base64'), reverse(current_query()) FROM apatients_v WHERE id = 20");
leak('own-statement-text', 'EXPLAIN (VERBOSE, COSTS OFF) SELECT mrn, email FROM apatients', S);
leak('own-statement-text', "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) SELECT ssn FROM apatients_part WHERE full_name < 'N' AND mrn > ''");

// Functions that run SQL given as text or read tables out of sight
refused('sql-text-functions', "SELECT query_to_xml('select * from apatients', true, false, '')", S);
refused('sql-text-functions', "SELECT query_to_xml('select 1', true, false, '')");
refused('sql-text-functions', "SELECT query_to_xml_and_xmlschema('select full_name from public.apatients', true, false, '')");
refused('sql-text-functions', "SELECT table_to_xml('apatients', true, false, '')", S);
refused('sql-text-functions', "SELECT table_to_xml('apatients_part_a'::regclass, true, false, '')");
refused('sql-text-functions', "SELECT table_to_xml_and_xmlschema('apatients_v', true, false, '')");
refused('sql-text-functions', ['BEGIN', 'DECLARE axc CURSOR FOR SELECT * FROM apatients', "SELECT cursor_to_xml('axc', 100, true, false, '')"]);
refused('sql-text-functions', "SELECT database_to_xml(true, false, '')");
refused('sql-text-functions', "SELECT schema_to_xml('public', true, false, '')");
refused('sql-text-functions', "SELECT unnest(xpath('//full_name/text()', table_to_xml('apatients', false, false, '')))::text");
refused('sql-text-functions', "SELECT * FROM ts_stat('SELECT to_tsvector(''simple'', full_name) FROM apatients')", S);
refused('sql-text-functions', "SELECT * FROM ts_stat('SELECT to_tsvector(''simple'', email) FROM apatients_part', 'a')");
refused('sql-text-functions', `SELECT patient_name(${V})`, S);
refused('sql-text-functions', 'SELECT * FROM all_ssns()');
refused('sql-text-functions', "SELECT * FROM run_sql('SELECT full_name FROM apatients')");
refused('sql-text-functions', "SELECT run_sql('SELECT ssn FROM apatients') LIMIT 3");
refused('sql-text-functions', 'CALL say_names()');
refused('sql-text-functions', ["CREATE FUNCTION pg_temp.aleak() RETURNS text LANGUAGE sql AS $f$ SELECT string_agg(full_name, ',') FROM apatients $f$", 'SELECT pg_temp.aleak()']);
refused('sql-text-functions', ['CREATE FUNCTION pg_temp.aleak2(int) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN RETURN (SELECT ssn FROM apatients WHERE id = $1); END $f$', 'SELECT pg_temp.aleak2(21)']);
refused('sql-text-functions', "SELECT * FROM dblink(format('host=127.0.0.1 port=%s dbname=ehr user=phigate_trust', current_setting('port')), 'SELECT full_name FROM apatients') AS t(n text)", S);
refused('sql-text-functions', "SELECT dblink_connect('aconn', format('host=127.0.0.1 port=%s dbname=ehr user=phigate_trust', current_setting('port')))");
refused('sql-text-functions', "SELECT * FROM dblink('dbname=ehr', 'SELECT ssn FROM apatients') AS t(s text)");
leak('sql-text-functions', "DO $$ BEGIN RAISE NOTICE '%', (SELECT string_agg(full_name, ',') FROM apatients); END $$");

// Server programs and files: off for everyone by default
refused('server-programs-files', "COPY apatients TO PROGRAM 'cat > /dev/null'", S);
refused('server-programs-files', "COPY (SELECT 1) TO PROGRAM 'true'");
refused('server-programs-files', "COPY ascratch (note) FROM PROGRAM 'id'", S);
refused('server-programs-files', "COPY ascratch (note) FROM '/etc/hostname'");
refused('server-programs-files', "COPY (SELECT 1) TO '/tmp/phigate-attack-out.txt'");
refused('server-programs-files', "SELECT lo_import('/etc/passwd')", S);
refused('server-programs-files', "SELECT lo_export(lo_from_bytea(0, '\\x41'), '/tmp/phigate-attack-lo')");
refused('server-programs-files', "SELECT pg_read_file('/etc/passwd')", S);
refused('server-programs-files', "SELECT pg_read_binary_file('/etc/passwd')");
refused('server-programs-files', "SELECT pg_ls_dir('.')");
refused('server-programs-files', "SELECT pg_stat_file('postgresql.conf')");
refused('server-programs-files', "ALTER SYSTEM SET work_mem = '5MB'");
refused('server-programs-files', 'CREATE EXTENSION IF NOT EXISTS pg_trgm');
refused('server-programs-files', 'SET ROLE phigate_md5');
refused('server-programs-files', 'SET SESSION AUTHORIZATION phigate_md5');
refused('server-programs-files', "SELECT set_config('role', 'phigate_md5', false)");
refused('server-programs-files', "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''true'''; END $$");

// search_path tricks, quoting, qualification, ONLY, TABLE, inheritance, partitions, aliases, CTE names
leak('search-path', ['SET search_path = evil, public', 'SELECT * FROM apatients']);
leak('search-path', ['SET search_path = evil, public', 'SELECT ssn, full_name, email FROM public.apatients'], S);
leak('search-path', ['SET search_path = evil, public', "SELECT set_config('search_path', 'public', false)", 'SELECT ssn, full_name, email, mrn, date_of_birth FROM apatients'], S);
leak('search-path', ['SET search_path = evil', "SELECT set_config('search_path', 'public', false)", 'TABLE apatients']);
leak('search-path', ['BEGIN', 'SET LOCAL search_path = evil, public', 'SELECT ssn FROM public.apatients', 'ROLLBACK', 'SELECT full_name FROM apatients']);
leak('search-path', ["SELECT set_config('search_path', 'evil, public', false)", 'SELECT ssn, full_name FROM public.apatients_part']);
leak('search-path', 'SELECT ssn, full_name FROM "apatients"');
leak('search-path', 'SELECT "ssn", "full_name", "email" FROM "public"."apatients"');
leak('search-path', 'SELECT ssn, email FROM ehr.public.apatients');
leak('search-path', 'SELECT full_name, date_of_birth FROM ONLY apatients');
leak('search-path', 'TABLE apatients', S);
leak('search-path', 'TABLE ONLY public.apatients');
leak('search-path', 'SELECT * FROM apatients_hist', S);
leak('search-path', 'SELECT ssn, upper(full_name) FROM ONLY apatients_hist');
leak('search-path', 'SELECT * FROM apatients_part', S);
leak('search-path', 'SELECT * FROM apatients_part_a', S);
leak('search-path', 'SELECT ssn, full_name, email, mrn, date_of_birth FROM apatients_part_b');
leak('search-path', 'SELECT * FROM public."apatients_part_a"');
leak('search-path', 'TABLE apatients_part_b');
leak('search-path', "SELECT upper(full_name), ssn || '' FROM apatients_part_a");
leak('search-path', 'SELECT row_to_json(p) FROM apatients_part_b p');
leak('search-path', 'SELECT x.full_name, x.ssn FROM apatients x');
leak('search-path', 'SELECT apatients.ssn, apatients.full_name FROM apatients_part_b AS apatients');
leak('search-path', 'WITH apatients AS (SELECT * FROM public.apatients_part_b) SELECT ssn, full_name FROM apatients');
leak('search-path', 'SELECT ssn FROM (TABLE apatients_part_a) t');
leak('search-path', 'SELECT who, ident FROM apatients_v2');
leak('search-path', 'SELECT * FROM apatients_v WHERE id > 35');

// Temp tables and other copies inside the database
refused('temp-tables', 'CREATE TEMP TABLE at1 AS SELECT * FROM apatients', S);
refused('temp-tables', 'SELECT * INTO TEMP at2 FROM apatients');
refused('temp-tables', 'CREATE TEMP TABLE at3 AS SELECT upper(full_name) u, reverse(ssn) r FROM apatients');
refused('temp-tables', ['CREATE TEMP TABLE at4 AS SELECT * FROM apatients_part_a', 'SELECT * FROM at4']);
refused('temp-tables', ['CREATE MATERIALIZED VIEW amv AS SELECT * FROM apatients', 'SELECT * FROM amv']);
refused('temp-tables', ['CREATE TABLE at_leak AS SELECT * FROM apatients_hist', 'TABLE at_leak']);
leak('temp-tables', ['CREATE TEMP VIEW atv AS SELECT * FROM apatients', 'SELECT ssn, full_name, upper(email) FROM atv']);
leak('temp-tables', ["CREATE TEMP VIEW atv2 AS SELECT id, full_name AS n, ssn AS s FROM apatients_part", "SELECT n || '', s || '' FROM atv2"]);

// Cursors, WITH HOLD
leak('cursors', ['BEGIN', 'DECLARE ac1 CURSOR WITH HOLD FOR SELECT * FROM apatients ORDER BY ssn', 'COMMIT', 'FETCH ALL FROM ac1', 'CLOSE ac1'], S);
leak('cursors', ['BEGIN', 'DECLARE ac2 SCROLL CURSOR WITH HOLD FOR SELECT upper(full_name), reverse(ssn) FROM apatients', 'COMMIT', 'FETCH LAST FROM ac2', 'FETCH ABSOLUTE 3 FROM ac2', 'MOVE FIRST IN ac2', 'FETCH NEXT FROM ac2']);
model('cursors', ['BEGIN', 'DECLARE ac3 CURSOR FOR SELECT id FROM apatients ORDER BY full_name, id', 'FETCH 48 FROM ac3', 'COMMIT']);
leak('cursors', ['BEGIN', 'DECLARE ac4 BINARY CURSOR FOR SELECT ssn, full_name, date_of_birth FROM apatients', 'FETCH ALL FROM ac4', 'COMMIT']);
leak('cursors', ['BEGIN', 'DECLARE ac5 CURSOR WITH HOLD FOR SELECT p FROM apatients p', 'COMMIT', 'FETCH ALL FROM ac5']);
leak('cursors', ['BEGIN', 'DECLARE ac6 CURSOR FOR SELECT * FROM apatients_part_b', 'FETCH ALL FROM ac6', 'COMMIT']);
model('cursors', ['BEGIN', "DECLARE ac7 CURSOR WITH HOLD FOR SELECT id FROM apatients WHERE ssn LIKE '1%' ORDER BY id", 'COMMIT', 'FETCH ALL FROM ac7'], S);

// Whole-row references
leak('whole-row', 'SELECT p FROM apatients p', S);
leak('whole-row', 'SELECT row_to_json(p) FROM apatients p');
leak('whole-row', 'SELECT p::text FROM apatients p');
leak('whole-row', 'SELECT (p).* FROM apatients p');
leak('whole-row', "SELECT to_jsonb(p) - 'id' FROM apatients_part p");
leak('whole-row', 'SELECT array_agg(p)::text FROM apatients_v p');
leak('whole-row', `SELECT jsonb_each_text(to_jsonb(p)) FROM apatients p WHERE id = 22`);
leak('whole-row', "SELECT string_agg(p::text, ';') FROM apatients_part_a p");
leak('whole-row', 'SELECT (SELECT p FROM apatients p WHERE id = 23)::text');
model('whole-row', "SELECT count(*) FROM apatients p WHERE p::text LIKE '%Zeph%'");

// COPY to the client
leak('copy', 'COPY apatients TO STDOUT', S);
leak('copy', 'COPY apatients TO STDOUT (FORMAT csv, HEADER)');
leak('copy', 'COPY (SELECT upper(full_name), reverse(ssn), date_of_birth::text FROM apatients) TO STDOUT', S);
leak('copy', 'COPY apatients_part_a TO STDOUT');
leak('copy', 'COPY apatients_hist TO STDOUT');
leak('copy', 'COPY (SELECT * FROM apatients_v) TO STDOUT (FORMAT binary)');
leak('copy', 'COPY (SELECT p FROM apatients p) TO STDOUT');
leak('copy', "COPY apatients (ssn, full_name, email) TO STDOUT WITH (FORMAT text, DELIMITER '|')");

// Paired probes: the victim's true value vs a false guess of the same shape must look the same
pair('count-probe', 'ssn', (g) => `SELECT count(*) FROM apatients WHERE ssn = '${g}'`, S);
pair('count-probe', 'full_name', (g) => `SELECT count(*) FROM apatients WHERE full_name = '${g}'`);
pair('count-probe', 'email', (g) => `SELECT count(*) FROM apatients WHERE email = '${g}'`);
pair('count-probe', 'mrn', (g) => `SELECT count(*) FROM apatients WHERE mrn = '${g}'`);
pair('count-probe', 'date_of_birth', (g) => `SELECT count(*) FROM apatients WHERE date_of_birth = '${g}'`, S);
pair('count-probe', 'ssn', (g) => `SELECT count(*) FROM apatients WHERE ssn LIKE '${g.slice(0, 6)}%'`);
pair('count-probe', 'full_name', (g) => `SELECT count(*) FROM apatients WHERE full_name ILIKE '${first(g)}%'`, S);
pair('count-probe', 'full_name', (g) => `SELECT count(*) FROM apatients WHERE position('${last(g)}' in full_name) > 0`);
pair('count-probe', 'full_name', (g) => `SELECT count(*) FROM apatients WHERE full_name ~ '^${first(g)}'`);
pair('count-probe', 'ssn', (g) => `SELECT count(*) FROM apatients WHERE md5(ssn) = md5('${g}')`);
pair('count-probe', 'ssn', (g) => `SELECT count(*) FILTER (WHERE ssn = '${g}'), sum(CASE WHEN ssn = '${g}' THEN 1 ELSE 0 END) FROM apatients`);
pair('count-probe', 'email', (g) => `SELECT id FROM apatients WHERE id = ${V} AND email = '${g}'`);
pair('count-probe', 'full_name', (g) => `SELECT pg_sleep(0) FROM apatients WHERE full_name = '${g}'`);
pair('count-probe', 'full_name', (g) => `SELECT count(*) FROM apatients p WHERE row_to_json(p)::text LIKE '%${g}%'`);
pair('count-probe', 'ssn', (g) => `SELECT count(*) FROM apatients p WHERE p::text LIKE '%${g}%'`);
pair('count-probe', 'mrn', (g) => `SELECT count(*) FROM avisits WHERE mrn = '${g}'`);
pair('count-probe', 'mrn', (g) => `SELECT count(*) FROM avisits v JOIN apatients p ON p.id = v.patient_id WHERE p.mrn = '${g}'`);
pairOf('range-probe', `SELECT count(*) FROM apatients WHERE ssn < '${VICTIM.ssn}'`, `SELECT count(*) FROM apatients WHERE ssn <= '${VICTIM.ssn}'`, S);
pairOf('range-probe', `SELECT count(*) FROM apatients WHERE full_name > '${VICTIM.full_name}'`, `SELECT count(*) FROM apatients WHERE full_name >= '${VICTIM.full_name}'`);
pairOf('range-probe', `SELECT count(*) FROM apatients WHERE date_of_birth < '${VICTIM.date_of_birth}'`, `SELECT count(*) FROM apatients WHERE date_of_birth <= '${VICTIM.date_of_birth}'`);
pairOf('range-probe', `SELECT count(*) FROM apatients WHERE ssn BETWEEN '${VICTIM.ssn}' AND '${VICTIM.ssn}z'`, `SELECT count(*) FROM apatients WHERE ssn > '${VICTIM.ssn}' AND ssn <= '${VICTIM.ssn}z'`);
pair('exists-in-scalar', 'full_name', (g) => `SELECT EXISTS (SELECT 1 FROM apatients WHERE full_name = '${g}')`, S);
pair('exists-in-scalar', 'ssn', (g) => `SELECT count(*) FROM apatients WHERE ssn IN ('${g}', '000-00-0000', '999-99-9999')`);
pair('exists-in-scalar', 'email', (g) => `SELECT (SELECT id FROM apatients WHERE email = '${g}')`);
pair('exists-in-scalar', 'full_name', (g) => `SELECT x.id FROM (VALUES ('${g}')) c(n) CROSS JOIN LATERAL (SELECT id FROM apatients p WHERE p.full_name = c.n) x`);
pair('exists-in-scalar', 'full_name', (g) => `SELECT c.n FROM (VALUES ('${g}'), ('Nobody Atall')) c(n) JOIN apatients p ON p.full_name = c.n`, S);
pair('exists-in-scalar', 'date_of_birth', (g) => `SELECT count(*) FROM generate_series(date '${g}', date '${g}', '1 day') d JOIN apatients p ON p.date_of_birth = d`);
pair('exists-in-scalar', 'ssn', (g) => `SELECT city FROM apatients GROUP BY city HAVING bool_or(ssn = '${g}') ORDER BY 1`);
pair('exists-in-scalar', 'ssn', (g) => `SELECT count(*) FROM (SELECT ssn FROM apatients INTERSECT SELECT '${g}') s`);
pair('exists-in-scalar', 'full_name', (g) => `SELECT count(*) FROM (SELECT 1 FROM apatients GROUP BY full_name = '${g}') s`);
pair('exists-in-scalar', 'full_name', (g) => `SELECT count(DISTINCT (full_name = '${g}')) FROM apatients`);
pair('exists-in-scalar', 'ssn', (g) => `SELECT id FROM apatients ORDER BY ssn = '${g}' DESC, id LIMIT 1`);
pair('exists-in-scalar', 'ssn', (g) => `SELECT id, CASE WHEN ssn = '${g}' THEN 'yes' ELSE 'no' END FROM apatients WHERE id = ${V}`);
pair('exists-in-scalar', 'ssn', (g) => `SELECT ssn = '${g}' FROM apatients WHERE id = ${V}`);
pair('division-by-zero', 'ssn', (g) => `SELECT 1 / (ascii(ssn) - ascii('${g[0]}')) FROM apatients WHERE id = ${V}`, S);
pair('division-by-zero', 'full_name', (g) => `SELECT 1 / (CASE WHEN full_name = '${g}' THEN 0 ELSE 1 END) FROM apatients WHERE id = ${V}`, S);
pair('division-by-zero', 'date_of_birth', (g) => `SELECT count(*) FROM apatients WHERE id = ${V} AND 1 / (date_of_birth - date '${g}') > -100000`);
pair('error-oracle', 'full_name', (g) => `SELECT CASE WHEN full_name = '${g}' THEN full_name::int ELSE 0 END FROM apatients WHERE id = ${V}`);
pair('explain-analyze', 'ssn', (g) => `EXPLAIN (ANALYZE, VERBOSE) SELECT * FROM apatients WHERE ssn = '${g}'`, S);
pair('explain-analyze', 'full_name', (g) => `EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM apatients WHERE full_name = '${g}'`, S);
pair('explain-analyze', 'date_of_birth', (g) => `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT id FROM apatients WHERE date_of_birth = '${g}'`);
pair('explain-analyze', 'email', (g) => `EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON, TIMING OFF, SUMMARY OFF) SELECT id FROM apatients_part WHERE email = '${g}'`);
pair('explain-analyze', 'mrn', (g) => `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT p.id FROM apatients p JOIN (VALUES ('${g}')) c(m) ON c.m = p.mrn`);
pair('explain-analyze', 'ssn', (g) => `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT id FROM apatients WHERE ssn LIKE '${g.slice(0, 3)}%'`);
pair('prepared', 'full_name', (g) => ['PREPARE apq(text) AS SELECT count(*) FROM apatients WHERE full_name = $1', `EXECUTE apq('${g}')`], S);
pair('prepared', 'ssn', (g) => ({ text: 'SELECT count(*) FROM apatients WHERE ssn = $1', values: [g] }), S);
pair('prepared', 'date_of_birth', (g) => ({ text: 'SELECT id FROM apatients WHERE date_of_birth = $1::date', values: [g] }));
pair('prepared', 'email', (g) => ({ text: 'SELECT EXISTS (SELECT 1 FROM apatients_v WHERE email = $1), $2::text', values: [g, 'x'] }));
pair('prepared', 'mrn', (g) => [{ text: 'SELECT count(*) FROM apatients WHERE mrn = $1', values: ['MRN-00000000'] }, { text: 'SELECT count(*) FROM apatients WHERE mrn = $1', values: [g] }]);
pair('cursors', 'email', (g) => ['BEGIN', `DECLARE apc CURSOR WITH HOLD FOR SELECT id FROM apatients WHERE email = '${g}'`, 'COMMIT', 'FETCH ALL FROM apc', 'CLOSE apc'], S);
pair('copy', 'full_name', (g) => `COPY (SELECT id FROM apatients WHERE full_name = '${g}') TO STDOUT`, S);
pair('server-state', 'ssn', (g) => ['SELECT count(pg_advisory_lock(1, hashtext(ssn))) FROM apatients WHERE id = ' + V, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1 AND objid::text::bigint = (hashtext('${g}')::bigint + 4294967296) % 4294967296`], S);
pair('server-state', 'ssn', (g) => [`SELECT count(set_config('aprobe.v', ssn, false)) FROM apatients WHERE id = ${V}`, `SELECT current_setting('aprobe.v') = '${g}'`], S);
pair('server-state', 'full_name', (g) => [`SELECT count(set_config('application_name', full_name, false)) FROM apatients WHERE id = ${V}`, `SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() AND application_name = '${g}'`]);
pair('server-state', 'email', (g) => [`SELECT count(lo_from_bytea(4242001, convert_to(email, 'UTF8'))) FROM apatients WHERE id = ${V}`, `SELECT convert_from(lo_get(4242001), 'UTF8') = '${g}'`, 'SELECT lo_unlink(4242001)']);
pair('server-state', 'ssn', (g) => `SELECT count(*) FROM pg_stats WHERE tablename = 'apatients' AND attname = 'ssn' AND '${g}' = ANY (histogram_bounds::text::text[])`);
pair('server-state', 'full_name', (g) => ['LISTEN apair', `SELECT count(pg_notify('apair', CASE WHEN full_name = '${g}' THEN 'hit' ELSE 'miss' END)) FROM apatients WHERE id = ${V}`, 'SELECT 1']);
pair('search-path', 'full_name', (g) => ['SET search_path = evil, public', `SELECT count(*) FROM public.apatients WHERE full_name = '${g}'`]);
pair('search-path', 'full_name', (g) => ['SET search_path = evil, public', "SELECT set_config('search_path', 'public', false)", `SELECT count(*) FROM apatients WHERE full_name = '${g}'`], S);
pair('search-path', 'ssn', (g) => `SELECT count(*) FROM ONLY apatients WHERE ssn = '${g}'`);
pair('search-path', 'ssn', (g) => `SELECT count(*) FROM "public"."apatients" WHERE "ssn" = '${g}'`);
pair('search-path', 'ssn', (g) => `SELECT count(*) FROM apatients_part WHERE ssn = '${g}'`);
pair('search-path', 'full_name', (g) => `SELECT count(*) FROM apatients_part_a WHERE full_name = '${g}'`, S);
pair('search-path', 'ssn', (g) => `SELECT count(*) FROM apatients_v WHERE ssn = '${g}'`);
pair('search-path', 'ssn', (g) => `SELECT count(*) FROM apatients_v2 WHERE ident = '${g}'`);

// ---------------------------------------------------------------------------------------------
// Red team, round 2 (issue 11). The column-alias-list, function-attribute-notation, json-table and
// prepared-plain-outputs families with a named Parse leaked when they were written, and the
// tablesample shape replay gave wrong results; all were fixed in the rewrite (columnUse, named Parse).

/** Rebuilds `expr` (text) character by character in a scalar subquery: only predicates see the value. */
const rebuild = (expr: string, n = 40): string =>
  `(SELECT string_agg(chr(x.c), '' ORDER BY y.k) FROM generate_series(1, ${n}) y(k), generate_series(32, 126) x(c) WHERE ascii(substr(${expr}, y.k, 1)) = x.c)`;

// A column alias list renames the masked columns: names alone cannot tell which are computed on.
model('column-alias-list', `SELECT t.i, ${rebuild('t.n')}, ${rebuild('t.s', 11)} FROM apatients t(i, s, m, n) ORDER BY t.i`, S);
model('column-alias-list', 'SELECT t.i FROM apatients AS t(i, s) ORDER BY t.s, t.i');
model('column-alias-list', `SELECT t.a, ${rebuild('t.e', 50)}, ${rebuild('t.d::text', 10)} FROM apatients_part t(a, b, c, n, e, d) ORDER BY t.a`);
model('column-alias-list', `SELECT t.a, ${rebuild('t.n')} FROM apatients_hist t(a, b, c, n) ORDER BY t.a`);
// (ORDER BY makes the star an expression the rewrite counts as reading every column: masked)
model('column-alias-list', `SELECT * FROM apatients t(a, b) WHERE t.b LIKE '1%' ORDER BY 1`);
pair('column-alias-list', 'ssn', (g) => `SELECT * FROM apatients t(a, b) WHERE t.b = '${g}'`);
pair('column-alias-list', 'ssn', (g) => `SELECT count(*) FROM apatients t(i, s) WHERE s = '${g}'`, S);
pair('column-alias-list', 'full_name', (g) => `SELECT count(*) FROM apatients t(i, s, m, n) JOIN (VALUES ('${g}')) v(n) USING (n)`);
pair('column-alias-list', 'date_of_birth', (g) => `SELECT count(*) FROM apatients_part_a t(a, b, c, d, e, f) WHERE f = '${g}'`);
pair('column-alias-list', 'mrn', (g) => `SELECT count(*) FROM avisits v(a, b, m) WHERE m = '${g}'`);
// ... also when an administrator's view has one (the expanded definition keeps `t(i, s, mrn, ...)`)
pair('column-alias-list', 'ssn', (g) => `SELECT count(*) FROM public.apatients_v3 WHERE s = '${g}'`, S);
pair('column-alias-list', 'full_name', (g) => `SELECT count(*) FROM public.apatients_v3 WHERE n = '${g}'`);

// Functions in attribute notation: `p.to_jsonb` is `to_jsonb(p)`, a whole-row reference that names no column.
model('function-attribute-notation', `SELECT p.id, ${rebuild("p.to_jsonb->>'full_name'")}, ${rebuild("p.to_jsonb->>'ssn'", 11)} FROM apatients p ORDER BY p.id`, S);
// (masked by output masking's lineage, which reads the whole row: the second layer holds here)
model('function-attribute-notation', `SELECT p.id, ${rebuild("p.row_to_json->>'email'", 50)} FROM apatients_part p ORDER BY p.id`);
pair('function-attribute-notation', 'email', (g) => `SELECT count(*) FROM apatients_part p WHERE p.row_to_json->>'email' = '${g}'`);
pair('function-attribute-notation', 'date_of_birth', (g) => `SELECT count(*) FROM apatients p WHERE (p.to_json->>'date_of_birth')::date = '${g}'`);
pair('function-attribute-notation', 'ssn', (g) => `SELECT count(*) FROM public.apatients WHERE public.apatients.to_jsonb->>'ssn' = '${g}'`);
model('function-attribute-notation', `SELECT p.id, ${rebuild("p.to_json->>'date_of_birth'", 10)} FROM apatients_hist p ORDER BY p.id`);
model('function-attribute-notation', "SELECT p.id FROM apatients p ORDER BY p.to_jsonb->>'ssn', p.id");
pair('function-attribute-notation', 'full_name', (g) => `SELECT count(*) FROM apatients p WHERE p.row_to_json::text LIKE '%${g}%'`, S);
pair('function-attribute-notation', 'mrn', (g) => `SELECT count(*) FROM avisits v WHERE v.to_jsonb->>'mrn' = '${g}'`);
pair('function-attribute-notation', 'ssn', (g) => `SELECT count(*) FROM public.apatients_v p WHERE p.to_jsonb->>'ssn' = '${g}'`);

// A statement prepared with a protocol-level Parse could leave its plain columns to output masking,
// but CREATE TABLE AS EXECUTE would copy them raw into a table: named statements compute them.
leak('prepared-plain-outputs', [{ name: 'rt_ps1', text: 'SELECT id, ssn, full_name, email, date_of_birth FROM apatients', values: [] },
  'CREATE TEMP TABLE rt_x1 AS EXECUTE rt_ps1', 'SELECT id, full_name, date_of_birth, reverse(ssn), upper(email) FROM rt_x1 ORDER BY id']);
leak('prepared-plain-outputs', [{ name: 'rt_ps2', text: 'SELECT * FROM apatients_part', values: [] },
  'CREATE TEMP TABLE rt_x2 AS EXECUTE rt_ps2', "SELECT full_name, date_of_birth, translate(ssn, '-', '/'), mrn || '' FROM rt_x2"]);
// SQL PREPARE is rewritten in full (it returns nothing itself): the copy holds masked values
leak('prepared-plain-outputs', ['PREPARE rt_ps3 AS SELECT full_name, ssn FROM apatients', 'CREATE TEMP TABLE rt_x3 AS EXECUTE rt_ps3', 'SELECT upper(full_name), reverse(ssn) FROM rt_x3']);
leak('prepared-plain-outputs', [{ name: 'rt_ps4', text: 'SELECT upper(full_name), ssn FROM apatients WHERE ssn IS NOT NULL', values: [] },
  'CREATE TEMP TABLE rt_x4 AS EXECUTE rt_ps4', 'SELECT * FROM rt_x4']);

// Shape-cache replay: TABLESAMPLE's arguments must come from each statement, not the first of its shape.
model('shape-replay-tablesample', ["SELECT count(*) FROM apatients TABLESAMPLE BERNOULLI (100) WHERE ssn <> ''", "SELECT count(*) FROM apatients TABLESAMPLE BERNOULLI (0) WHERE ssn <> ''"]);

// JSON_TABLE, LATERAL, CTE scoping, temp tables named like a masked table
pair('json-table', 'full_name', (g) => `SELECT count(*) FROM apatients p, JSON_TABLE(p.to_jsonb, '$' COLUMNS (v text PATH '$.full_name')) jt WHERE jt.v = '${g}'`);
pair('json-table', 'full_name', (g) => `SELECT count(*) FROM apatients p, JSON_TABLE(jsonb_build_object('n', p.full_name), '$' COLUMNS (v text PATH '$.n')) jt WHERE jt.v = '${g}'`);
pair('lateral', 'full_name', (g) => `SELECT count(*) FROM apatients p CROSS JOIN LATERAL (SELECT p.full_name AS n) l WHERE l.n = '${g}'`);
pair('cte-scoping', 'ssn', (g) => `WITH RECURSIVE apatients(id, ssn) AS (SELECT id, ssn FROM public.apatients UNION ALL SELECT id, ssn FROM apatients WHERE false) SELECT count(*) FROM apatients WHERE ssn = '${g}'`);
pair('cte-scoping', 'ssn', (g) => `SELECT (WITH apatients AS (SELECT 1 AS ssn) SELECT count(*) FROM apatients), count(*) FROM apatients WHERE ssn = '${g}'`);
pair('cte-scoping', 'ssn', (g) => `WITH a AS (SELECT * FROM apatients WHERE ssn = '${g}'), apatients AS (SELECT 1) SELECT count(*) FROM a`);
pair('cte-scoping', 'full_name', (g) => `WITH x AS MATERIALIZED (SELECT id, full_name FROM apatients) SELECT count(*) FROM x WHERE full_name = '${g}'`);
pair('temp-shadow', 'ssn', (g) => ['CREATE TEMP TABLE apatients (id int, ssn text)', 'SET search_path = pg_temp, public', `SELECT count(*) FROM public.apatients WHERE ssn = '${g}'`, `SELECT count(*) FROM apatients_part WHERE ssn = '${g}'`]);

// Names written in every way the grammar allows
pair('identifier-spelling', 'ssn', (g) => `SELECT count(*) FROM U&"\\0061patients" WHERE U&"\\0073sn" = '${g}'`);
pair('identifier-spelling', 'ssn', (g) => `SELECT count(*) FROM public/**/./**/apatients WHERE ssn = '${g}'`);
pair('identifier-spelling', 'full_name', (g) => `SELECT count(*) FROM ONLY/**/(apatients) WHERE full_name = '${g}'`);
pair('identifier-spelling', 'full_name', (g) => `SELECT count(*) FROM apatients * WHERE full_name = '${g}'`);
pair('identifier-spelling', 'ssn', (g) => `SELECT count(*) FROM APatients t TABLESAMPLE SYSTEM (100) REPEATABLE (7) WHERE t."ssn" = '${g}'`);
leak('identifier-spelling', `SELECT full_name || '', ssn || '' FROM U&"!0061patients" UESCAPE '!'`);
leak('identifier-spelling', 'SELECT upper(n), reverse(s) FROM (TABLE apatients) AS t(i, s, m, n)');

// Views named with their schema (the unqualified names are ambiguous with maskref's copies: refused)
pair('views-qualified', 'ssn', (g) => `SELECT count(*) FROM public.apatients_v WHERE ssn = '${g}'`, S);
pair('views-qualified', 'full_name', (g) => `SELECT count(*) FROM public.apatients_v2 WHERE who = '${g}'`);
pair('views-qualified', 'email', (g) => `SELECT count(*) FROM public.apatients_v t(a, b, c, d, e) WHERE e = '${g}'`);
leak('views-qualified', "SELECT upper(full_name), reverse(ssn), email || '' FROM public.apatients_v", S);
leak('views-qualified', 'SELECT p FROM public.apatients_v2 p');

// Plans in every format of a statement computing tokens: no HMAC pad
leak('explain-formats', "EXPLAIN (VERBOSE, FORMAT XML) SELECT mrn || 'x' FROM apatients");
leak('explain-formats', "EXPLAIN (VERBOSE, FORMAT YAML) SELECT p.mrn FROM apatients p JOIN avisits v ON v.mrn = p.mrn");
leak('explain-formats', "EXPLAIN (VERBOSE, GENERIC_PLAN) SELECT mrn || $1 FROM apatients");
leak('explain-formats', ['SET bytea_output = escape', "EXPLAIN (VERBOSE, FORMAT JSON) SELECT count(*) FROM apatients WHERE mrn = 'tok_0000000000000000'"]);

// Red team, round 3. Settings that change how dates are written (output masking reads every DateStyle).
leak('datestyle', ['SET DateStyle = German', 'SELECT id, date_of_birth FROM apatients'], S);
leak('datestyle', ['SET DateStyle = \'SQL, DMY\'', 'SELECT * FROM apatients_part']);
leak('datestyle', "SET DateStyle = 'Postgres, MDY'; SELECT date_of_birth, full_name FROM apatients_hist");
leak('datestyle', "SELECT set_config('datestyle', 'German', false), date_of_birth FROM apatients");
// Plain outputs next to things that are not plain (SRFs, locking, LATERAL, cursors, ONLY)
leak('plain-outputs', 'SELECT full_name, generate_series(1, 2), ssn FROM apatients', S);
leak('plain-outputs', 'SELECT ssn, full_name, date_of_birth FROM apatients FOR UPDATE SKIP LOCKED');
leak('plain-outputs', 'SELECT p.full_name, l.x, p.email FROM apatients p, LATERAL (SELECT p.id + 1 AS x) l');
leak('plain-outputs', 'SELECT ssn, date_of_birth FROM ONLY apatients_hist');
leak('plain-outputs', 'SELECT full_name, row_number() OVER (), mrn FROM apatients LIMIT 5 OFFSET 2');
leak('plain-outputs', ['BEGIN', 'DECLARE rt_c SCROLL CURSOR WITH HOLD FOR SELECT full_name, ssn, date_of_birth FROM apatients', 'COMMIT',
  'FETCH ALL FROM rt_c', 'FETCH BACKWARD 5 FROM rt_c', 'MOVE ABSOLUTE 0 IN rt_c', 'FETCH 3 FROM rt_c']);
pair('plain-outputs', 'full_name', (g) => `SELECT p.full_name FROM apatients p, LATERAL (SELECT 1 WHERE p.full_name = '${g}') l`);
pair('window-frame', 'full_name', (g) => `SELECT count(*) FILTER (WHERE x) FROM (SELECT bool_or(full_name = '${g}') OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) x FROM apatients) s`);
pair('limit-with-ties', 'ssn', (g) => `SELECT id FROM apatients ORDER BY ssn = '${g}' DESC, id FETCH FIRST 1 ROWS WITH TIES`);
pair('distinct-hidden', 'full_name', (g) => `SELECT count(*) FROM (SELECT DISTINCT full_name FROM apatients UNION SELECT '${g}') s`);
pair('srf-target', 'email', (g) => `SELECT count(*) FROM (SELECT regexp_matches(email, '^${g.split('@')[0]}') FROM apatients) s`);

export const ATTACKS: Attack[] = all.map((a, id) => ({ ...a, id }));

/** Statements in the suite (a pair counts twice: it is sent once with each guess). */
export const STATEMENT_COUNT = ATTACKS.reduce((n, a) => n + (a.kind === 'pair' ? 2 : 1), 0);

/** A statement's text (for titles, and to tell the attacker's own literals from what came back). */
export function stepText(s: Step): string {
  return typeof s === 'string' ? s : `${s.text} -- $ = ${JSON.stringify(s.values)}`;
}

export function title(a: Attack): string {
  const t = a.steps.map(stepText).join('; ');
  return `#${a.id} [${a.family}/${a.kind}] ${t.length > 150 ? `${t.slice(0, 147)}...` : t}`;
}
