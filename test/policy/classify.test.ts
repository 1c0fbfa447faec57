// SQL classification tests: a table of statements with expected kinds, relations, writes and unrestricted reads, plus huge and hostile input, redaction, cache and parser-fault recovery.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fingerprintSync, loadModule, normalizeSync, parseSync, scanSync } from 'libpg-query';
import {
  ClassifierCache,
  ClassifierNotInitializedError,
  LIMIT_RESTRICTS_UP_TO,
  MAX_NESTING,
  classify,
  initClassifier,
  redactLiterals,
  statementText,
  type Classification,
  type CopyInfo,
  type PredicateColumn,
  type Statement,
  type StatementKind,
  type TableRef,
} from '../../src/policy/classify/index.js';
import { fingerprintOf, normalizedOf, parseTree, parserSettled, parserState } from '../../src/sql/parser.js';
import { sanitizeParserMessage } from '../../src/sql/parser-message.js';
import { literalSpans } from '../../src/policy/classify/redact.js';
import { nestingEstimate } from '../../src/sql/lexer.js';

/** 'schema.name' or 'name', sorted: relation lists are compared as sets. */
function names(refs: readonly TableRef[]): string[] {
  return refs.map((r) => (r.schema === undefined ? r.name : `${r.schema}.${r.name}`)).sort();
}

function statementsOf(sql: string): readonly Statement[] {
  const r = classify(sql);
  if (!r.ok) throw new Error(`expected ${JSON.stringify(sql)} to classify, got: ${r.error}`);
  return r.statements;
}

function only(sql: string): Statement {
  const s = statementsOf(sql);
  expect(s).toHaveLength(1);
  return s[0] as Statement;
}

interface Case {
  sql: string;
  kinds: StatementKind[];
  /** Which statement the remaining checks look at (default 0). */
  at?: number;
  tables?: string[];
  writes?: string[];
  unrestricted?: string[];
  withoutWhere?: boolean;
  modifiesData?: boolean;
  ddlObject?: string;
  copy?: CopyInfo;
  functions?: string[];
  explains?: StatementKind;
  analyze?: boolean;
  prepares?: StatementKind;
  preparedName?: string;
  cursorName?: string;
  setting?: string;
}

// Expected relation lists are sets; `unrestricted: []` implies withoutWhere false.
const CASES: Case[] = [
  // --- the tricky ones from issue 4 ---
  { sql: 'WITH d AS (DELETE FROM patients RETURNING *) SELECT * FROM d', kinds: ['select'], tables: ['patients'], writes: ['patients'], modifiesData: true, unrestricted: ['patients'] },
  { sql: 'WITH d AS (DELETE FROM patients WHERE id = 1 RETURNING *) SELECT * FROM d', kinds: ['select'], writes: ['patients'], modifiesData: true, unrestricted: [] },
  { sql: 'WITH d AS (DELETE FROM patients RETURNING *) SELECT * FROM d WHERE id = 1', kinds: ['select'], writes: ['patients'], unrestricted: ['patients'] },
  { sql: 'SELECT 1; DROP TABLE x', kinds: ['select', 'drop'], at: 1, tables: ['x'], writes: ['x'], ddlObject: 'table', modifiesData: true },
  { sql: '/* DROP */ SELECT 1', kinds: ['select'], tables: [], writes: [], modifiesData: false },
  { sql: "SELECT 'DROP TABLE x'", kinds: ['select'], tables: [], writes: [] },
  { sql: 'EXPLAIN ANALYZE DELETE FROM patients WHERE id = 1', kinds: ['delete'], explains: 'delete', analyze: true, tables: ['patients'], writes: ['patients'], modifiesData: true, unrestricted: [] },
  { sql: 'EXPLAIN ANALYZE DELETE FROM patients', kinds: ['delete'], explains: 'delete', writes: ['patients'], unrestricted: ['patients'] },
  { sql: 'EXPLAIN DELETE FROM patients', kinds: ['explain'], explains: 'delete', tables: ['patients'], writes: [], modifiesData: false, unrestricted: [] },
  { sql: 'EXPLAIN (ANALYZE false, VERBOSE) DELETE FROM x', kinds: ['explain'], explains: 'delete', writes: [] },
  { sql: 'EXPLAIN (ANALYZE, BUFFERS) UPDATE patients SET a = 1', kinds: ['update'], explains: 'update', writes: ['patients'], unrestricted: ['patients'] },
  { sql: 'EXPLAIN (ANALYZE on) SELECT * FROM patients WHERE id = 1', kinds: ['select'], explains: 'select', unrestricted: [] },
  { sql: 'EXPLAIN (ANALYZE 0) SELECT 1', kinds: ['explain'], explains: 'select' },
  { sql: 'EXPLAIN SELECT * FROM patients', kinds: ['explain'], explains: 'select', tables: ['patients'], unrestricted: [] },
  { sql: 'EXPLAIN ANALYZE CREATE TABLE t AS SELECT * FROM patients WHERE id = 1', kinds: ['create'], explains: 'create', writes: ['t'] },
  { sql: 'EXPLAIN EXECUTE p(1)', kinds: ['explain'], explains: 'execute', preparedName: 'p' },
  { sql: 'CREATE TABLE t AS EXECUTE p(1)', kinds: ['create'], ddlObject: 'table', writes: ['t'], preparedName: 'p' },
  { sql: 'DO $$ BEGIN DELETE FROM patients; END $$', kinds: ['do'], tables: [], writes: [], modifiesData: true },
  { sql: 'DO LANGUAGE plpgsql $body$ BEGIN PERFORM pg_sleep(1); END $body$', kinds: ['do'], functions: [], modifiesData: true },
  { sql: "COPY patients TO PROGRAM 'gzip > /tmp/p.gz'", kinds: ['copy_to'], copy: { direction: 'to', target: 'program' }, tables: ['patients'], writes: [], unrestricted: ['patients'] },
  { sql: "COPY patients FROM PROGRAM 'curl -s https://x'", kinds: ['copy_from'], copy: { direction: 'from', target: 'program' }, writes: ['patients'], unrestricted: [] },
  { sql: "COPY patients TO '/tmp/p.csv'", kinds: ['copy_to'], copy: { direction: 'to', target: 'file' } },
  { sql: "COPY patients FROM '/tmp/p.csv' WITH (FORMAT csv)", kinds: ['copy_from'], copy: { direction: 'from', target: 'file' }, writes: ['patients'] },
  { sql: 'COPY patients TO STDOUT', kinds: ['copy_to'], copy: { direction: 'to', target: 'stdout' }, unrestricted: ['patients'] },
  { sql: 'COPY patients (id, ssn) FROM STDIN WITH (FORMAT csv)', kinds: ['copy_from'], copy: { direction: 'from', target: 'stdin' }, writes: ['patients'], modifiesData: true },
  { sql: 'COPY (SELECT * FROM patients WHERE id = 1) TO STDOUT', kinds: ['copy_to'], tables: ['patients'], writes: [], unrestricted: [] },
  { sql: 'COPY (DELETE FROM patients RETURNING *) TO STDOUT', kinds: ['copy_to'], copy: { direction: 'to', target: 'stdout' }, writes: ['patients'], modifiesData: true, unrestricted: ['patients'] },
  { sql: 'COPY (SELECT p.ssn FROM patients p JOIN visits v ON v.pid = p.id) TO STDOUT WITH CSV', kinds: ['copy_to'], tables: ['patients', 'visits'], unrestricted: ['patients', 'visits'] },
  { sql: 'PREPARE p AS DELETE FROM patients WHERE id = $1', kinds: ['prepare'], prepares: 'delete', preparedName: 'p', tables: ['patients'], writes: ['patients'], modifiesData: true, unrestricted: [] },
  { sql: 'PREPARE q (int) AS SELECT * FROM patients', kinds: ['prepare'], prepares: 'select', preparedName: 'q', writes: [], unrestricted: ['patients'] },
  { sql: 'EXECUTE p(1)', kinds: ['execute'], preparedName: 'p', tables: [] },
  { sql: 'EXECUTE q', kinds: ['execute'], preparedName: 'q' },
  { sql: 'DEALLOCATE p', kinds: ['deallocate'], preparedName: 'p' },
  { sql: 'DEALLOCATE ALL', kinds: ['deallocate'] },
  { sql: 'CREATE TEMP TABLE t AS SELECT * FROM patients', kinds: ['create'], ddlObject: 'table', tables: ['patients', 't'], writes: ['t'], modifiesData: true, unrestricted: ['patients'] },
  { sql: 'CREATE TEMP TABLE t AS SELECT * FROM patients WHERE id = 1', kinds: ['create'], ddlObject: 'table', writes: ['t'], unrestricted: [] },
  { sql: 'CREATE TABLE s.t AS SELECT 1 AS a WITH NO DATA', kinds: ['create'], writes: ['s.t'] },
  { sql: 'SELECT * INTO TEMP t2 FROM patients WHERE id = 1', kinds: ['create'], ddlObject: 'table', tables: ['patients', 't2'], writes: ['t2'], modifiesData: true },
  { sql: 'CREATE MATERIALIZED VIEW mv AS SELECT * FROM visits', kinds: ['create'], ddlObject: 'materialized_view', tables: ['mv', 'visits'], writes: ['mv'], unrestricted: ['visits'] },
  { sql: 'SET ROLE admin', kinds: ['set_role'], setting: 'role' },
  { sql: 'SET LOCAL ROLE NONE', kinds: ['set_role'] },
  { sql: 'SET SESSION AUTHORIZATION bob', kinds: ['set_session_authorization'] },
  { sql: 'SET SESSION AUTHORIZATION DEFAULT', kinds: ['set_session_authorization'] },
  { sql: 'RESET ROLE', kinds: ['reset'], setting: 'role' },

  // --- names: quoted, folded, schema-qualified ---
  { sql: 'SELECT * FROM "Patients" WHERE id = 1', kinds: ['select'], tables: ['Patients'] },
  { sql: 'SELECT * FROM Patients WHERE ID = 1', kinds: ['select'], tables: ['patients'] },
  { sql: 'select * from PATIENTS where Id = 1', kinds: ['select'], tables: ['patients'] },
  { sql: 'SELECT * FROM public.patients WHERE id = 1', kinds: ['select'], tables: ['public.patients'] },
  { sql: 'SELECT * FROM "my schema"."T"', kinds: ['select'], tables: ['my schema.T'], unrestricted: ['my schema.T'] },
  { sql: 'SELECT * FROM PUBLIC."Patients" p WHERE p.id = 1', kinds: ['select'], tables: ['public.Patients'] },
  { sql: 'SELECT * FROM ehr.public.patients LIMIT 1', kinds: ['select'], tables: ['public.patients'], unrestricted: [] },
  { sql: 'UPDATE "my schema"."T" SET a = 1 WHERE id = 2', kinds: ['update'], writes: ['my schema.T'], unrestricted: [] },
  { sql: 'SELECT "DROP TABLE x" FROM t WHERE id = 1', kinds: ['select'], tables: ['t'] },
  { sql: 'SELECT * FROM ONLY patients WHERE id = 1', kinds: ['select'], tables: ['patients'] },

  // --- joins ---
  { sql: 'SELECT * FROM patients p JOIN visits v ON v.patient_id = p.id WHERE p.id = 1', kinds: ['select'], tables: ['patients', 'visits'], unrestricted: [] },
  { sql: 'SELECT * FROM patients p JOIN visits v ON v.patient_id = p.id', kinds: ['select'], unrestricted: ['patients', 'visits'] },
  { sql: 'SELECT * FROM patients p LEFT JOIN visits v USING (id) WHERE v.id = 5', kinds: ['select'], unrestricted: [] },
  { sql: 'SELECT * FROM patients p, visits v WHERE v.id = 5', kinds: ['select'], tables: ['patients', 'visits'], unrestricted: ['patients'] },
  { sql: 'SELECT * FROM patients CROSS JOIN visits WHERE visits.id = 1', kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'SELECT * FROM a NATURAL JOIN b WHERE a.x = 1', kinds: ['select'], tables: ['a', 'b'], unrestricted: [] },
  { sql: 'SELECT * FROM a JOIN b ON true WHERE a.x = 1', kinds: ['select'], unrestricted: ['b'] },
  { sql: 'SELECT * FROM a JOIN b ON a.k = b.k JOIN c ON c.k = b.k WHERE c.id = 1', kinds: ['select'], tables: ['a', 'b', 'c'], unrestricted: [] },
  { sql: 'SELECT * FROM a FULL OUTER JOIN b ON a.k = b.k WHERE k2 = 1', kinds: ['select'], unrestricted: [] },

  // --- subqueries in the select list, WHERE and FROM; LATERAL ---
  { sql: 'SELECT (SELECT ssn FROM patients WHERE id = 1)', kinds: ['select'], tables: ['patients'], unrestricted: [] },
  { sql: 'SELECT (SELECT max(ssn) FROM patients) FROM visits WHERE id = 1', kinds: ['select'], tables: ['patients', 'visits'], unrestricted: ['patients'], functions: ['max'] },
  { sql: "SELECT * FROM visits WHERE patient_id IN (SELECT id FROM patients WHERE mrn = 'x') AND id = 1", kinds: ['select'], tables: ['patients', 'visits'], unrestricted: [] },
  { sql: 'SELECT * FROM visits WHERE pid IN (SELECT id FROM patients)', kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'SELECT * FROM visits v WHERE EXISTS (SELECT 1 FROM patients p WHERE p.id = v.pid)', kinds: ['select'], tables: ['patients', 'visits'], unrestricted: [] },
  { sql: 'SELECT * FROM patients WHERE EXISTS (SELECT 1 FROM visits)', kinds: ['select'], unrestricted: ['patients', 'visits'] },
  { sql: 'SELECT * FROM (SELECT * FROM patients) x', kinds: ['select'], tables: ['patients'], unrestricted: ['patients'] },
  { sql: 'SELECT * FROM (SELECT * FROM patients) x WHERE x.id = 1', kinds: ['select'], unrestricted: [] },
  { sql: 'SELECT * FROM (SELECT * FROM patients) x LIMIT 5', kinds: ['select'], unrestricted: [] },
  { sql: 'SELECT * FROM (SELECT * FROM patients) x, visits v WHERE v.id = 1', kinds: ['select'], unrestricted: ['patients'] },
  { sql: "SELECT * FROM (SELECT string_agg(ssn, ',') s FROM patients) x WHERE x.s <> ''", kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'SELECT count(*) FROM (SELECT * FROM patients) x WHERE x.id = 1', kinds: ['select'], unrestricted: [] },
  { sql: 'SELECT * FROM patients p, LATERAL (SELECT * FROM visits v WHERE v.pid = p.id) x WHERE p.id = 1', kinds: ['select'], tables: ['patients', 'visits'], unrestricted: [] },
  { sql: 'SELECT * FROM patients p CROSS JOIN LATERAL (SELECT count(*) FROM visits v WHERE v.pid = p.id) c', kinds: ['select'], unrestricted: ['patients'] },

  // --- set operations ---
  { sql: 'SELECT id FROM patients UNION SELECT id FROM former_patients', kinds: ['select'], tables: ['former_patients', 'patients'], unrestricted: ['former_patients', 'patients'] },
  { sql: 'SELECT id FROM patients WHERE id = 1 UNION ALL SELECT id FROM former_patients WHERE id = 1', kinds: ['select'], unrestricted: [] },
  { sql: 'SELECT id FROM a INTERSECT SELECT id FROM b WHERE x = 1', kinds: ['select'], unrestricted: ['a'] },
  { sql: 'SELECT id FROM a EXCEPT SELECT id FROM b', kinds: ['select'], unrestricted: ['a', 'b'] },
  { sql: '(SELECT id FROM a UNION SELECT id FROM b) LIMIT 10', kinds: ['select'], unrestricted: [] },

  // --- LIMIT, aggregates and trivially true WHERE ---
  { sql: 'SELECT * FROM patients', kinds: ['select'], unrestricted: ['patients'], withoutWhere: true },
  { sql: 'SELECT * FROM patients LIMIT 10', kinds: ['select'], unrestricted: [], withoutWhere: false },
  { sql: `SELECT * FROM patients LIMIT ${LIMIT_RESTRICTS_UP_TO + 1}`, kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'SELECT * FROM patients LIMIT ALL', kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'SELECT * FROM patients LIMIT $1', kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'SELECT * FROM patients ORDER BY id FETCH FIRST 5 ROWS ONLY', kinds: ['select'], unrestricted: [] },
  { sql: 'SELECT * FROM patients ORDER BY id FETCH FIRST 5 ROWS WITH TIES', kinds: ['select'], unrestricted: ['patients'] },
  { sql: "SELECT string_agg(ssn, ',') FROM patients LIMIT 1", kinds: ['select'], unrestricted: ['patients'], functions: ['string_agg'] },
  { sql: 'SELECT count(*) FROM patients', kinds: ['select'], unrestricted: ['patients'], functions: ['count'] },
  { sql: 'SELECT count(*) FROM patients WHERE id > 100', kinds: ['select'], unrestricted: [] },
  { sql: 'SELECT ssn, count(*) FROM patients GROUP BY ssn LIMIT 5', kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'SELECT ssn, row_number() OVER () FROM patients LIMIT 5', kinds: ['select'], unrestricted: ['patients'], functions: ['row_number'] },
  { sql: 'SELECT * FROM patients WHERE true', kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'SELECT * FROM patients WHERE 1 = 1', kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'SELECT * FROM patients WHERE id = 1 OR 1 = 1', kinds: ['select'], unrestricted: ['patients'] },
  { sql: "SELECT * FROM patients WHERE id = 1 OR mrn = 'x'", kinds: ['select'], unrestricted: [] },
  { sql: 'SELECT * FROM patients WHERE NOT false', kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'SELECT * FROM patients WHERE $1', kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'SELECT * FROM patients WHERE id = $1', kinds: ['select'], unrestricted: [] },
  { sql: 'SELECT * FROM patients FOR UPDATE', kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'SELECT * FROM patients WHERE id = 1 FOR UPDATE SKIP LOCKED', kinds: ['select'], unrestricted: [] },
  { sql: 'SELECT * FROM patients p WHERE p.id = 1 FOR SHARE OF p', kinds: ['select'], tables: ['patients'] },
  { sql: 'TABLE patients', kinds: ['select'], tables: ['patients'], unrestricted: ['patients'] },
  { sql: 'VALUES (1), (2)', kinds: ['select'], tables: [], unrestricted: [] },
  { sql: 'SELECT 1', kinds: ['select'], tables: [], unrestricted: [], modifiesData: false },
  { sql: 'SELECT * FROM patients TABLESAMPLE SYSTEM (10)', kinds: ['select'], tables: ['patients'], unrestricted: ['patients'] },

  // --- functions ---
  { sql: 'SELECT now()', kinds: ['select'], functions: ['now'] },
  { sql: 'SELECT * FROM generate_series(1, 10) g', kinds: ['select'], tables: [], functions: ['generate_series'], unrestricted: [] },
  { sql: 'SELECT * FROM patients p JOIN generate_series(1, 3) g ON g = p.id', kinds: ['select'], tables: ['patients'], functions: ['generate_series'] },
  { sql: "SELECT pg_read_file('/etc/passwd')", kinds: ['select'], functions: ['pg_read_file'] },
  { sql: "SELECT pg_catalog.pg_read_file('x', 0, 100)", kinds: ['select'], functions: ['pg_catalog.pg_read_file'] },
  { sql: "SELECT * FROM dblink('host=x', 'SELECT ssn FROM patients') AS t(ssn text)", kinds: ['select'], tables: [], functions: ['dblink'] },
  { sql: "SELECT lo_export(12345, '/tmp/x')", kinds: ['select'], functions: ['lo_export'] },
  { sql: 'SELECT extract(year FROM now())', kinds: ['select'], functions: ['extract', 'now'] },
  { sql: 'SELECT "Upper"(x) FROM t WHERE id = 1', kinds: ['select'], functions: ['Upper'] },
  { sql: 'SELECT count(*) FILTER (WHERE a > 1) FROM t WHERE id = 1', kinds: ['select'], functions: ['count'] },
  { sql: "SELECT set_config('role', 'admin', false)", kinds: ['select'], functions: ['set_config'] },
  { sql: "SELECT pg_notify('ch', 'x')", kinds: ['select'], functions: ['pg_notify'] },
  { sql: 'SELECT upper(lower(name)) FROM patients WHERE id = coalesce($1, 0)', kinds: ['select'], functions: ['lower', 'upper'] },

  // --- CTEs ---
  { sql: 'WITH x AS (SELECT * FROM patients WHERE id = 1) SELECT * FROM x', kinds: ['select'], tables: ['patients'], unrestricted: [] },
  { sql: 'WITH x AS (SELECT * FROM patients) SELECT * FROM x', kinds: ['select'], tables: ['patients'], unrestricted: ['patients'] },
  { sql: 'WITH x AS (SELECT * FROM patients) SELECT * FROM x LIMIT 5', kinds: ['select'], unrestricted: [] },
  { sql: 'WITH x AS (SELECT * FROM patients) SELECT * FROM x WHERE x.id = 1', kinds: ['select'], unrestricted: [] },
  { sql: 'WITH x AS (SELECT * FROM patients) SELECT * FROM x WHERE id = 1 UNION ALL SELECT * FROM x', kinds: ['select'], unrestricted: ['patients'] },
  { sql: 'WITH x AS (SELECT * FROM patients) SELECT * FROM x JOIN visits v ON v.pid = x.id WHERE v.id = 1', kinds: ['select'], tables: ['patients', 'visits'], unrestricted: [] },
  { sql: 'WITH patients AS (SELECT 1 AS id) SELECT * FROM patients', kinds: ['select'], tables: [], unrestricted: [] },
  { sql: 'WITH patients AS (SELECT * FROM patients WHERE id = 1) SELECT * FROM patients', kinds: ['select'], tables: ['patients'], unrestricted: [] },
  { sql: 'WITH x AS (SELECT 1) SELECT * FROM public.x', kinds: ['select'], tables: ['public.x'], unrestricted: ['public.x'] },
  { sql: 'SELECT * FROM (WITH p AS (SELECT 1) SELECT * FROM p) a, p', kinds: ['select'], tables: ['p'], unrestricted: ['p'] },
  { sql: 'WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 10) SELECT * FROM t', kinds: ['select'], tables: [], unrestricted: [] },
  { sql: 'WITH a AS (SELECT * FROM patients WHERE id = 1), b AS (SELECT * FROM a) SELECT * FROM b', kinds: ['select'], tables: ['patients'], unrestricted: [] },
  { sql: 'WITH u AS (UPDATE visits SET seen = true RETURNING *) SELECT count(*) FROM u', kinds: ['select'], writes: ['visits'], modifiesData: true, unrestricted: ['visits'] },
  { sql: 'WITH ins AS (INSERT INTO audit_log SELECT * FROM patients WHERE id = 1 RETURNING id) SELECT * FROM ins', kinds: ['select'], tables: ['audit_log', 'patients'], writes: ['audit_log'], modifiesData: true, unrestricted: [] },

  // --- INSERT ---
  { sql: "INSERT INTO patients (id, ssn) VALUES (1, '123-45-6789')", kinds: ['insert'], tables: ['patients'], writes: ['patients'], modifiesData: true, unrestricted: [] },
  { sql: 'INSERT INTO archive SELECT * FROM patients', kinds: ['insert'], tables: ['archive', 'patients'], writes: ['archive'], unrestricted: ['patients'] },
  { sql: 'INSERT INTO archive SELECT * FROM patients WHERE discharged', kinds: ['insert'], writes: ['archive'], unrestricted: [] },
  { sql: 'INSERT INTO patients (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET ssn = EXCLUDED.ssn', kinds: ['insert'], writes: ['patients'], unrestricted: [] },
  { sql: 'INSERT INTO patients (id) VALUES (1) ON CONFLICT DO NOTHING', kinds: ['insert'], writes: ['patients'] },
  { sql: 'INSERT INTO patients DEFAULT VALUES RETURNING *', kinds: ['insert'], writes: ['patients'] },
  { sql: 'INSERT INTO s.t SELECT * FROM generate_series(1, 3)', kinds: ['insert'], tables: ['s.t'], writes: ['s.t'], functions: ['generate_series'] },
  { sql: 'WITH src AS (SELECT * FROM staging) INSERT INTO patients SELECT * FROM src', kinds: ['insert'], tables: ['patients', 'staging'], writes: ['patients'], unrestricted: ['staging'] },

  // --- UPDATE ---
  { sql: 'UPDATE patients SET ssn = NULL', kinds: ['update'], writes: ['patients'], unrestricted: ['patients'] },
  { sql: 'UPDATE patients SET ssn = NULL WHERE id = 1', kinds: ['update'], unrestricted: [] },
  { sql: 'UPDATE patients SET ssn = NULL WHERE true', kinds: ['update'], unrestricted: ['patients'] },
  { sql: 'UPDATE patients p SET a = 1 FROM visits v WHERE v.pid = p.id AND v.id = 5', kinds: ['update'], tables: ['patients', 'visits'], writes: ['patients'], unrestricted: [] },
  { sql: 'UPDATE patients p SET a = 1 FROM visits v WHERE v.id = 5', kinds: ['update'], unrestricted: ['patients'] },
  { sql: 'UPDATE patients SET a = (SELECT max(x) FROM visits) WHERE id = 1', kinds: ['update'], writes: ['patients'], unrestricted: ['visits'] },
  { sql: 'UPDATE patients SET a = 1 WHERE CURRENT OF c', kinds: ['update'], unrestricted: [] },
  { sql: 'UPDATE patients SET a = 1 FROM (SELECT * FROM visits) v WHERE v.pid = patients.id AND v.id = 1', kinds: ['update'], tables: ['patients', 'visits'], unrestricted: [] },

  // --- DELETE ---
  { sql: 'DELETE FROM patients', kinds: ['delete'], writes: ['patients'], unrestricted: ['patients'], withoutWhere: true },
  { sql: 'DELETE FROM patients WHERE id = 1', kinds: ['delete'], unrestricted: [], withoutWhere: false },
  { sql: 'DELETE FROM patients WHERE 1 = 1', kinds: ['delete'], unrestricted: ['patients'] },
  { sql: 'DELETE FROM patients USING visits v WHERE v.pid = patients.id AND v.id = 1', kinds: ['delete'], tables: ['patients', 'visits'], writes: ['patients'], unrestricted: [] },
  { sql: 'DELETE FROM patients p USING visits v WHERE v.flag', kinds: ['delete'], unrestricted: ['patients'] },
  { sql: 'DELETE FROM patients WHERE id IN (SELECT pid FROM visits WHERE id = 1) RETURNING *', kinds: ['delete'], tables: ['patients', 'visits'], unrestricted: [] },
  { sql: 'DELETE FROM patients WHERE CURRENT OF c', kinds: ['delete'], unrestricted: [] },

  // --- MERGE ---
  { sql: 'MERGE INTO patients p USING staging s ON p.id = s.id WHEN MATCHED THEN UPDATE SET ssn = s.ssn WHEN NOT MATCHED THEN INSERT (id, ssn) VALUES (s.id, s.ssn)', kinds: ['merge'], tables: ['patients', 'staging'], writes: ['patients'], modifiesData: true, unrestricted: ['patients', 'staging'] },
  { sql: 'MERGE INTO patients p USING (SELECT * FROM staging WHERE id = 1) s ON p.id = s.id WHEN MATCHED THEN DELETE', kinds: ['merge'], tables: ['patients', 'staging'], writes: ['patients'], unrestricted: [] },
  { sql: 'MERGE INTO patients p USING (SELECT * FROM staging WHERE id = 1) s ON p.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE', kinds: ['merge'], unrestricted: ['patients'] },
  { sql: 'WITH s AS (SELECT * FROM staging WHERE id = 1) MERGE INTO patients p USING s ON p.id = s.id WHEN MATCHED THEN DELETE', kinds: ['merge'], tables: ['patients', 'staging'], unrestricted: [] },

  // --- views (by name) ---
  { sql: 'SELECT * FROM patient_summary WHERE id = 1', kinds: ['select'], tables: ['patient_summary'] },
  { sql: 'CREATE VIEW v AS SELECT * FROM patients', kinds: ['create'], ddlObject: 'view', tables: ['patients', 'v'], writes: ['v'], unrestricted: [] },
  { sql: 'CREATE OR REPLACE VIEW public.v AS SELECT ssn FROM patients WHERE id > 0', kinds: ['create'], ddlObject: 'view', writes: ['public.v'] },

  // --- TRUNCATE, GRANT/REVOKE, LOCK ---
  { sql: 'TRUNCATE patients, visits', kinds: ['truncate'], tables: ['patients', 'visits'], writes: ['patients', 'visits'], unrestricted: ['patients', 'visits'], modifiesData: true },
  { sql: 'TRUNCATE TABLE ONLY public.audit RESTART IDENTITY CASCADE', kinds: ['truncate'], writes: ['public.audit'] },
  { sql: 'GRANT SELECT ON patients TO analyst', kinds: ['grant'], tables: ['patients'], writes: [], ddlObject: 'table' },
  { sql: 'GRANT SELECT (id, mrn) ON patients, visits TO analyst', kinds: ['grant'], tables: ['patients', 'visits'] },
  { sql: 'GRANT ALL ON ALL TABLES IN SCHEMA public TO analyst', kinds: ['grant'], tables: [] },
  { sql: 'GRANT analyst TO bob', kinds: ['grant'], ddlObject: 'role' },
  { sql: 'GRANT EXECUTE ON FUNCTION f(int) TO bob', kinds: ['grant'], ddlObject: 'function', tables: [] },
  { sql: 'REVOKE ALL ON patients FROM PUBLIC', kinds: ['revoke'], tables: ['patients'] },
  { sql: 'REVOKE analyst FROM bob', kinds: ['revoke'], ddlObject: 'role' },
  { sql: 'LOCK TABLE patients IN ACCESS EXCLUSIVE MODE', kinds: ['lock'], tables: ['patients'], writes: [] },
  { sql: 'LOCK patients, public.visits', kinds: ['lock'], tables: ['patients', 'public.visits'] },

  // --- cursors ---
  { sql: 'DECLARE c CURSOR FOR SELECT * FROM patients', kinds: ['declare'], cursorName: 'c', tables: ['patients'], unrestricted: ['patients'] },
  { sql: 'DECLARE c2 SCROLL CURSOR WITH HOLD FOR SELECT * FROM patients WHERE id = 1', kinds: ['declare'], cursorName: 'c2', unrestricted: [] },
  { sql: 'FETCH 10 FROM c', kinds: ['fetch'], cursorName: 'c' },
  { sql: 'FETCH ALL IN c', kinds: ['fetch'], cursorName: 'c' },
  { sql: 'MOVE NEXT IN c', kinds: ['move'], cursorName: 'c' },
  { sql: 'CLOSE c', kinds: ['close'], cursorName: 'c' },
  { sql: 'CLOSE ALL', kinds: ['close'] },

  // --- LISTEN/NOTIFY ---
  { sql: 'LISTEN channel', kinds: ['listen'] },
  { sql: "NOTIFY channel, 'payload'", kinds: ['notify'] },
  { sql: 'UNLISTEN *', kinds: ['unlisten'] },

  // --- maintenance ---
  { sql: 'VACUUM', kinds: ['vacuum'], tables: [] },
  { sql: 'VACUUM (FULL, ANALYZE) patients', kinds: ['vacuum'], tables: ['patients'], writes: [] },
  { sql: 'ANALYZE patients', kinds: ['analyze'], tables: ['patients'] },
  { sql: 'REINDEX TABLE patients', kinds: ['reindex'], tables: ['patients'] },
  { sql: 'CLUSTER patients USING patients_pkey', kinds: ['cluster'], tables: ['patients'] },
  { sql: 'REFRESH MATERIALIZED VIEW CONCURRENTLY mv', kinds: ['refresh'], tables: ['mv'], writes: ['mv'], modifiesData: true },
  { sql: 'CHECKPOINT', kinds: ['checkpoint'] },
  { sql: 'DISCARD ALL', kinds: ['discard'] },
  { sql: "LOAD 'auto_explain'", kinds: ['load'] },

  // --- DDL ---
  { sql: 'DROP TABLE patients', kinds: ['drop'], ddlObject: 'table', tables: ['patients'], writes: ['patients'], modifiesData: true },
  { sql: 'DROP TABLE IF EXISTS a, s.b CASCADE', kinds: ['drop'], tables: ['a', 's.b'], writes: ['a', 's.b'] },
  { sql: 'DROP VIEW v', kinds: ['drop'], ddlObject: 'view', writes: ['v'] },
  { sql: 'DROP MATERIALIZED VIEW mv', kinds: ['drop'], ddlObject: 'materialized_view', writes: ['mv'] },
  { sql: 'DROP INDEX s.i', kinds: ['drop'], ddlObject: 'index', tables: ['s.i'], writes: [] },
  { sql: 'DROP TRIGGER trg ON patients', kinds: ['drop'], ddlObject: 'trigger', tables: ['patients'], writes: [] },
  { sql: 'DROP FUNCTION f(int)', kinds: ['drop'], ddlObject: 'function', tables: [] },
  { sql: 'DROP SCHEMA s CASCADE', kinds: ['drop'], ddlObject: 'schema' },
  { sql: 'DROP ROLE bob', kinds: ['drop'], ddlObject: 'role' },
  { sql: 'DROP DATABASE ehr', kinds: ['drop'], ddlObject: 'database' },
  { sql: 'DROP OWNED BY bob', kinds: ['drop'], ddlObject: 'owned' },
  { sql: 'CREATE TABLE t (id int PRIMARY KEY, pid int REFERENCES patients (id))', kinds: ['create'], ddlObject: 'table', tables: ['patients', 't'], writes: ['t'] },
  { sql: 'CREATE TABLE t (LIKE patients INCLUDING ALL)', kinds: ['create'], tables: ['patients', 't'], writes: ['t'] },
  { sql: 'CREATE UNLOGGED TABLE IF NOT EXISTS s.t (a int)', kinds: ['create'], writes: ['s.t'] },
  { sql: 'CREATE INDEX CONCURRENTLY i ON patients (ssn)', kinds: ['create'], ddlObject: 'index', tables: ['patients'], writes: [] },
  { sql: 'CREATE UNIQUE INDEX i ON patients (mrn) WHERE mrn IS NOT NULL', kinds: ['create'], ddlObject: 'index' },
  { sql: 'CREATE SCHEMA audit', kinds: ['create'], ddlObject: 'schema' },
  { sql: "CREATE ROLE agent LOGIN PASSWORD 'secret'", kinds: ['create'], ddlObject: 'role' },
  { sql: 'CREATE USER bob', kinds: ['create'], ddlObject: 'role' },
  { sql: 'CREATE EXTENSION IF NOT EXISTS dblink', kinds: ['create'], ddlObject: 'extension' },
  { sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", kinds: ['create'], ddlObject: 'function' },
  { sql: 'CREATE PROCEDURE purge() LANGUAGE sql BEGIN ATOMIC DELETE FROM patients; END', kinds: ['create'], ddlObject: 'procedure', tables: ['patients'], writes: [], modifiesData: false },
  { sql: 'CREATE TRIGGER trg AFTER INSERT ON patients FOR EACH ROW EXECUTE FUNCTION audit()', kinds: ['create'], ddlObject: 'trigger', tables: ['patients'] },
  { sql: 'CREATE POLICY p ON patients USING (owner = current_user)', kinds: ['create'], ddlObject: 'policy', tables: ['patients'] },
  { sql: 'CREATE SEQUENCE s', kinds: ['create'], ddlObject: 'sequence' },
  { sql: "CREATE TYPE mood AS ENUM ('sad')", kinds: ['create'], ddlObject: 'type' },
  { sql: 'CREATE DATABASE x', kinds: ['create'], ddlObject: 'database' },
  { sql: 'ALTER TABLE patients ADD COLUMN note text', kinds: ['alter'], ddlObject: 'table', tables: ['patients'], writes: ['patients'] },
  { sql: 'ALTER TABLE patients DROP COLUMN ssn', kinds: ['alter'], ddlObject: 'table', writes: ['patients'] },
  { sql: 'ALTER TABLE patients RENAME TO people', kinds: ['alter'], ddlObject: 'table', writes: ['patients'] },
  { sql: 'ALTER TABLE patients RENAME COLUMN ssn TO tax_id', kinds: ['alter'], ddlObject: 'column', writes: ['patients'] },
  { sql: 'ALTER TABLE patients ADD CONSTRAINT fk FOREIGN KEY (pid) REFERENCES people (id)', kinds: ['alter'], tables: ['patients', 'people'], writes: ['patients'] },
  { sql: 'ALTER TABLE patients DISABLE ROW LEVEL SECURITY', kinds: ['alter'], ddlObject: 'table' },
  { sql: 'ALTER TABLE patients SET SCHEMA archive', kinds: ['alter'], ddlObject: 'table', writes: ['patients'] },
  { sql: 'ALTER INDEX i RENAME TO j', kinds: ['alter'], ddlObject: 'index', writes: [] },
  { sql: 'ALTER ROLE bob SUPERUSER', kinds: ['alter'], ddlObject: 'role' },
  { sql: "ALTER SYSTEM SET log_statement = 'none'", kinds: ['alter'], ddlObject: 'system' },
  { sql: 'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob', kinds: ['alter'], ddlObject: 'default_privileges' },
  { sql: 'ALTER FUNCTION f() SECURITY DEFINER', kinds: ['alter'], ddlObject: 'function' },
  { sql: "ALTER DATABASE ehr SET log_statement = 'none'", kinds: ['alter'], ddlObject: 'database' },
  { sql: "COMMENT ON TABLE patients IS 'PHI'", kinds: ['comment'], ddlObject: 'table', tables: ['patients'], writes: [] },
  { sql: "COMMENT ON COLUMN public.patients.ssn IS 'x'", kinds: ['comment'], ddlObject: 'column', tables: ['public.patients'] },
  { sql: "COMMENT ON FUNCTION f() IS 'x'", kinds: ['comment'], ddlObject: 'function', tables: [] },

  // --- settings and transactions ---
  { sql: 'SET search_path = public', kinds: ['set'], setting: 'search_path' },
  { sql: "SET LOCAL statement_timeout = '5s'", kinds: ['set'], setting: 'statement_timeout' },
  { sql: "SET TIME ZONE 'UTC'", kinds: ['set'], setting: 'timezone' },
  { sql: 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', kinds: ['set'] },
  { sql: 'SET CONSTRAINTS ALL DEFERRED', kinds: ['set'] },
  { sql: 'RESET search_path', kinds: ['reset'], setting: 'search_path' },
  { sql: 'RESET ALL', kinds: ['reset'], setting: 'all' },
  { sql: 'SHOW search_path', kinds: ['show'], setting: 'search_path' },
  { sql: 'SHOW ALL', kinds: ['show'], setting: 'all' },
  { sql: 'BEGIN', kinds: ['begin'] },
  { sql: 'BEGIN ISOLATION LEVEL REPEATABLE READ', kinds: ['begin'] },
  { sql: 'START TRANSACTION READ ONLY', kinds: ['begin'] },
  { sql: 'COMMIT', kinds: ['commit'] },
  { sql: 'END', kinds: ['commit'] },
  { sql: 'ROLLBACK', kinds: ['rollback'] },
  { sql: 'ABORT', kinds: ['rollback'] },
  { sql: 'SAVEPOINT s1', kinds: ['savepoint'] },
  { sql: 'RELEASE SAVEPOINT s1', kinds: ['release'] },
  { sql: 'ROLLBACK TO SAVEPOINT s1', kinds: ['rollback'] },
  { sql: "PREPARE TRANSACTION 'tx1'", kinds: ['prepare_transaction'] },
  { sql: "COMMIT PREPARED 'tx1'", kinds: ['commit'] },
  { sql: "ROLLBACK PREPARED 'tx1'", kinds: ['rollback'] },

  // --- CALL ---
  { sql: 'CALL purge_patients(30)', kinds: ['call'], functions: ['purge_patients'], modifiesData: true, tables: [] },
  { sql: 'CALL s.proc(now())', kinds: ['call'], functions: ['now', 's.proc'] },

  // --- several statements, comments and literals that look like SQL ---
  { sql: 'BEGIN; DELETE FROM patients WHERE id = 1; COMMIT', kinds: ['begin', 'delete', 'commit'], at: 1, writes: ['patients'], unrestricted: [] },
  { sql: 'SELECT 1;; SELECT 2;', kinds: ['select', 'select'] },
  { sql: 'SET ROLE admin; SELECT * FROM patients', kinds: ['set_role', 'select'], at: 1, unrestricted: ['patients'] },
  { sql: '/* multi */ SELECT 1; -- trailing\n DROP TABLE x;', kinds: ['select', 'drop'], at: 1, writes: ['x'] },
  { sql: "SELECT 'a;b'; SELECT $$;DROP TABLE x;$$", kinds: ['select', 'select'], at: 1, tables: [] },
  { sql: '', kinds: [] },
  { sql: ';;', kinds: [] },
  { sql: '/* only */ -- comments', kinds: [] },
  { sql: '   \n\t ', kinds: [] },
  { sql: "SELECT E'DROP TABLE x\\';'", kinds: ['select'], tables: [] },
  { sql: 'SELECT $tag$ DELETE FROM patients $tag$', kinds: ['select'], tables: [] },
  { sql: "SELECT U&'\\0044ROP'", kinds: ['select'] },
  { sql: 'SELECT 1 -- ; DROP TABLE x', kinds: ['select'] },
  { sql: 'SELECT 1 /* nested /* comment */ ; DROP TABLE x */', kinds: ['select'] },
];

describe('before initClassifier', () => {
  it('classify throws ClassifierNotInitializedError; after init it works', async () => {
    expect(() => classify('SELECT 1')).toThrow(ClassifierNotInitializedError);
    expect(() => new ClassifierCache().classify('SELECT 1')).toThrow(ClassifierNotInitializedError);
    await initClassifier();
    await initClassifier();
    expect(classify('SELECT 1').ok).toBe(true);
  });
});

describe('classification table', () => {
  it(`has at least 150 statements (${CASES.length})`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(150);
    expect(new Set(CASES.map((c) => c.sql)).size).toBe(CASES.length);
  });

  it.each(CASES)('$sql', async (c) => {
    await initClassifier();
    const statements = statementsOf(c.sql);
    expect(statements.map((s) => s.kind)).toEqual(c.kinds);
    if (statements.length === 0) return;
    const s = statements[c.at ?? 0] as Statement;
    if (c.tables) expect(names(s.tables)).toEqual([...c.tables].sort());
    if (c.writes) expect(names(s.writes)).toEqual([...c.writes].sort());
    if (c.unrestricted) expect(names(s.unrestricted)).toEqual([...c.unrestricted].sort());
    if (c.withoutWhere !== undefined) expect(s.withoutWhere).toBe(c.withoutWhere);
    if (c.modifiesData !== undefined) expect(s.modifiesData).toBe(c.modifiesData);
    if (c.ddlObject !== undefined) expect(s.ddlObject).toBe(c.ddlObject);
    if (c.copy !== undefined) expect(s.copy).toEqual(c.copy);
    if (c.functions !== undefined) expect([...s.functions].sort()).toEqual([...c.functions].sort());
    if (c.explains !== undefined) expect(s.explains).toBe(c.explains);
    if (c.analyze !== undefined) expect(s.analyze).toBe(c.analyze);
    if (c.prepares !== undefined) expect(s.prepares).toBe(c.prepares);
    if ('preparedName' in c) expect(s.preparedName).toBe(c.preparedName);
    if (c.cursorName !== undefined) expect(s.cursorName).toBe(c.cursorName);
    if (c.setting !== undefined) expect(s.setting).toBe(c.setting);
    for (const st of statements) checkInvariants(st);
  });
});

/** Properties every Statement has, whatever the input. */
function checkInvariants(s: Statement): void {
  const tables = new Set(names(s.tables));
  expect(names(s.tables)).toHaveLength(tables.size);
  for (const w of names(s.writes)) expect(tables.has(w)).toBe(true);
  for (const u of names(s.unrestricted)) expect(tables.has(u)).toBe(true);
  expect(s.withoutWhere).toBe(s.unrestricted.length > 0);
  expect(s.modifiesData).toBe(s.writes.length > 0 || s.kind === 'do' || s.kind === 'call');
  expect(s.end).toBeGreaterThanOrEqual(s.start);
}

describe('details', () => {
  it('keeps quoted and schema-qualified names exactly', async () => {
    await initClassifier();
    expect(only('SELECT * FROM "my schema"."T", "Patients", public.visits').tables).toEqual([
      { schema: 'my schema', name: 'T' },
      { name: 'Patients' },
      { schema: 'public', name: 'visits' },
    ]);
  });

  it('names one relation once however often it appears', async () => {
    await initClassifier();
    const s = only('SELECT * FROM patients a JOIN patients b ON a.id = b.pid WHERE a.id IN (SELECT id FROM patients)');
    expect(s.tables).toEqual([{ name: 'patients' }]);
  });

  it('reports predicate columns resolved through aliases', async () => {
    await initClassifier();
    const cols = (sql: string): PredicateColumn[] => only(sql).predicateColumns;
    expect(cols("SELECT name FROM patients p WHERE p.ssn = '1'")).toEqual([{ table: 'patients', column: 'ssn' }]);
    expect(cols("SELECT * FROM patients WHERE ssn LIKE '1%' ORDER BY dob")).toEqual([
      { table: 'patients', column: 'ssn' },
      { table: 'patients', column: 'dob' },
    ]);
    expect(cols('SELECT v.id FROM visits v JOIN patients p ON p.id = v.pid GROUP BY p.zip HAVING count(*) > 1')).toEqual([
      { table: 'patients', column: 'id' },
      { table: 'visits', column: 'pid' },
      { table: 'patients', column: 'zip' },
    ]);
    expect(cols("SELECT * FROM (SELECT * FROM patients) x WHERE x.ssn = '1'")).toEqual([{ table: 'x', column: 'ssn' }]);
    expect(cols('SELECT * FROM a JOIN b USING (k) WHERE c = 1')).toEqual([{ column: 'k' }, { column: 'c' }]);
    expect(cols('SELECT ssn FROM patients')).toEqual([]);
    expect(cols("DELETE FROM public.patients WHERE ssn = '1'")).toEqual([{ schema: 'public', table: 'patients', column: 'ssn' }]);
    expect(cols("SELECT * FROM visits WHERE pid IN (SELECT id FROM patients WHERE ssn = '1')")).toEqual([
      { table: 'visits', column: 'pid' },
      { table: 'patients', column: 'id' },
      { table: 'patients', column: 'ssn' },
    ]);
  });

  it('gives byte spans per statement, and statementText maps them back', async () => {
    await initClassifier();
    const sql = "SELECT 'é'; DELETE FROM patients WHERE id = 1;  SELECT 2";
    const s = statementsOf(sql);
    expect(s.map((x) => [x.start, x.end])).toEqual([
      [0, 11],
      [13, 46],
      [49, 57],
    ]);
    expect(s.map((x) => statementText(sql, x))).toEqual(["SELECT 'é'", 'DELETE FROM patients WHERE id = 1', 'SELECT 2']);
  });

  it('groups statements by fingerprint and exposes a normalized form without literals or comments', async () => {
    await initClassifier();
    const a = classify("SELECT * FROM patients WHERE ssn = '123-45-6789' /* John Smith */");
    const b = classify("SELECT * FROM patients WHERE ssn = '987-65-4321'");
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.normalized).toContain('$1');
    expect(a.normalized).not.toContain('123-45');
    expect(a.normalized).not.toContain('John');
    expect(classify('').ok && (classify('') as Extract<Classification, { ok: true }>).fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it('returns deeply frozen results', async () => {
    await initClassifier();
    const r = classify('SELECT * FROM patients');
    expect(Object.isFrozen(r)).toBe(true);
    if (!r.ok) return;
    expect(Object.isFrozen(r.statements)).toBe(true);
    expect(Object.isFrozen(r.statements[0]?.tables)).toBe(true);
    expect(Object.isFrozen(r.statements[0]?.tables[0])).toBe(true);
  });
});

describe('hostile and huge input', () => {
  const secret = '123-45-6789';

  it.each([
    ['SELEC 1', 'SELEC'],
    ['SELECT * FROM', undefined],
    ['DROP TABLE', undefined],
    [`SELECT * FROM patients WHERE ssn = '${secret}' 'x'`, undefined],
    [`SELECT '${secret}`, undefined],
    [`SELECT $$${secret}`, undefined],
    [`SELECT "${secret}`, undefined],
    [`SELECT 1 /* ${secret}`, undefined],
    [`INSERT INTO t VALUES ('${secret}'`, undefined],
    [`SELECT 1; DROPP TABLE x; SELECT '${secret}'`, 'DROPP'],
    ['SELECT 123456789abc', undefined],
    [`SELECT U&'\\zzzz${secret}'`, undefined],
    [`SELECT * FROM patients WHERE ssn = E'${secret}' || 'x' FROM`, undefined],
  ])('refuses %j without echoing literals', async (sql, echoed) => {
    await initClassifier();
    const r = classify(sql);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).not.toContain(secret);
    expect(r.error).not.toContain('123456789');
    expect(r.error).not.toMatch(/'/);
    if (echoed !== undefined) expect(r.error).toContain(echoed);
    expect(typeof r.position === 'number' || r.position === undefined).toBe(true);
  });

  it('a multi-statement string with one bad statement is refused as a whole', async () => {
    await initClassifier();
    expect(classify('SELECT 1; SELEC 2').ok).toBe(false);
  });

  it('sanitizes parser messages', () => {
    expect(sanitizeParserMessage('syntax error at or near "SELEC"')).toBe('syntax error at or near "SELEC"');
    expect(sanitizeParserMessage('syntax error at or near "="')).toBe('syntax error at or near "="');
    expect(sanitizeParserMessage(`syntax error at or near "'${secret}'"`)).toBe('syntax error at or near a literal (not shown)');
    expect(sanitizeParserMessage('syntax error at or near "42"')).toBe('syntax error at or near a literal (not shown)');
    expect(sanitizeParserMessage(`odd message with '${secret}' inside`)).not.toContain(secret);
    expect(sanitizeParserMessage('syntax error at end of input')).toBe('syntax error at end of input');
  });

  it('refuses NUL characters and lone surrogates, accepts U+FFFD', async () => {
    await initClassifier();
    expect(classify('SELECT 1\0; DROP TABLE x').ok).toBe(false);
    expect(classify('SELECT \uD800 FROM t').ok).toBe(false);
    expect(classify('SELECT 1 \uDC00').ok).toBe(false);
    const r = only("SELECT '\uFFFD' FROM t\uFFFD WHERE id = 1");
    expect(r.tables).toEqual([{ name: 't\uFFFD' }]);
  });

  it('classifies 100 KB statements', async () => {
    await initClassifier();
    const inList = `SELECT * FROM patients WHERE id IN (${Array.from({ length: 19000 }, (_, i) => i).join(',')})`;
    const values = `INSERT INTO patients (id, ssn) VALUES ${Array.from({ length: 7500 }, (_, i) => `(${i}, '${secret}')`).join(',')}`;
    const ors = `SELECT * FROM patients WHERE ${Array.from({ length: 8000 }, (_, i) => `id = ${i}`).join(' OR ')}`;
    const literal = `SELECT '${'x'.repeat(100_000)}' FROM patients LIMIT 1`;
    const comment = `/* ${'DROP TABLE x; '.repeat(8000)} */ SELECT 1`;
    const many = Array.from({ length: 3000 }, (_, i) => `SELECT * FROM t${i} WHERE id = ${i}`).join('; ');
    for (const sql of [inList, values, ors, literal, comment, many]) expect(sql.length).toBeGreaterThan(100_000);

    const started = performance.now();
    expect(only(inList)).toMatchObject({ kind: 'select', tables: [{ name: 'patients' }], withoutWhere: false });
    expect(only(values)).toMatchObject({ kind: 'insert', writes: [{ name: 'patients' }] });
    expect(only(ors)).toMatchObject({ kind: 'select', withoutWhere: false });
    expect(only(literal)).toMatchObject({ kind: 'select', tables: [{ name: 'patients' }] });
    expect(only(comment)).toMatchObject({ kind: 'select', tables: [] });
    const m = statementsOf(many);
    expect(m).toHaveLength(3000);
    expect(m[2999]?.tables).toEqual([{ name: 't2999' }]);
    console.log(`six 100 KB statements classified in ${(performance.now() - started).toFixed(0)} ms`);
  });

  it.each([
    ['operator chain', (n: number) => `SELECT 1${'+1'.repeat(n)}`],
    ['function-call operands', (n: number) => `SELECT f(1)${'+f(1)'.repeat(n)}`],
    ['OPERATOR() chain', (n: number) => `SELECT 1${' OPERATOR(pg_catalog.+) 1'.repeat(n)}`],
    ['concatenation', (n: number) => `SELECT 'a'${"||'a'".repeat(n)}`],
    ['JSON path', (n: number) => `SELECT x${"->'a'".repeat(n)}`],
    ['casts', (n: number) => `SELECT 1${'::int'.repeat(n)}`],
    ['ISNULL chain', (n: number) => `SELECT x${' ISNULL'.repeat(n)}`],
    ['IS NOT NULL chain', (n: number) => `SELECT x${' IS NOT NULL'.repeat(n)}`],
    ['COLLATE chain', (n: number) => `SELECT x${' COLLATE "C"'.repeat(n)}`],
    ['AT TIME ZONE chain', (n: number) => `SELECT now()${" AT TIME ZONE 'UTC'".repeat(n)}`],
    ['subscripts', (n: number) => `SELECT a${'[1]'.repeat(n)}`],
    ['nested subqueries', (n: number) => `SELECT * FROM ${'(SELECT * FROM '.repeat(n)}t${') x'.repeat(n)}`],
    ['nested scalar subqueries', (n: number) => `SELECT ${'(SELECT '.repeat(n)}1${')'.repeat(n)}`],
    ['nested EXISTS', (n: number) => `SELECT ${'EXISTS (SELECT '.repeat(n)}1${')'.repeat(n)}`],
    ['nested function calls', (n: number) => `SELECT ${'f('.repeat(n)}1${')'.repeat(n)}`],
    ['nested ROW()', (n: number) => `SELECT ${'ROW('.repeat(n)}1${')'.repeat(n)}`],
    ['nested CASE', (n: number) => `SELECT ${'CASE WHEN a THEN '.repeat(n)}1${' END'.repeat(n)}`],
    ['nested parentheses', (n: number) => `SELECT ${'('.repeat(n)}1${')'.repeat(n)}`],
    ['NOT chain', (n: number) => `SELECT ${'NOT '.repeat(n)}true`],
    ['unary minus chain', (n: number) => `SELECT ${'- '.repeat(n)}1`],
    ['nested arrays', (n: number) => `SELECT ${'ARRAY['.repeat(n)}1${']'.repeat(n)}`],
    ['AND/OR nesting', (n: number) => `SELECT ${'(a AND (b OR '.repeat(n)}c${'))'.repeat(n)}`],
    ['UNION chain', (n: number) => Array.from({ length: n }, () => 'SELECT 1').join(' UNION ')],
    ['nested LATERAL', (n: number) => `SELECT * FROM t0${', LATERAL (SELECT * FROM t'.repeat(n)}${')'.repeat(n)}`],
    ['nested WITH', (n: number) => `${'WITH a AS ('.repeat(n)}SELECT 1${') SELECT * FROM a'.repeat(n)}`],
    ['JOIN chain', (n: number) => `SELECT * FROM t0${Array.from({ length: n }, (_, i) => ` JOIN t${i + 1} ON true`).join('')}`],
  ])('deep %s: the deepest statement the screen admits classifies, deeper is refused, the parser survives', async (_label, make) => {
    await initClassifier();
    // Largest n the nesting screen admits (the estimate grows with n).
    let lo = 1;
    let hi = 2;
    while (nestingEstimate(make(hi)) <= MAX_NESTING && hi < 40_000) hi *= 2;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (nestingEstimate(make(mid)) <= MAX_NESTING) lo = mid;
      else hi = mid;
    }
    const deepest = classify(make(lo));
    if (!deepest.ok) throw new Error(`admitted at n=${lo} but refused: ${deepest.error}`);
    expect(parserState()).toBe('ready');
    for (const n of [hi, 20_000, 60_000]) {
      const r = classify(make(n));
      if (nestingEstimate(make(n)) > MAX_NESTING) expect(r).toMatchObject({ ok: false, error: expect.stringMatching(/nested too deeply/) });
    }
    expect(parserState()).toBe('ready');
    expect(only('DELETE FROM patients WHERE id = 1')).toMatchObject({ kind: 'delete', withoutWhere: false });
  });

  it('estimates nesting cheaply and refuses above MAX_NESTING', async () => {
    await initClassifier();
    expect(nestingEstimate('SELECT a, b, c FROM t WHERE x = 1 AND y = 2 OR z = 3')).toBeLessThan(10);
    expect(nestingEstimate(`SELECT 1${'+1'.repeat(MAX_NESTING + 1)}`)).toBeGreaterThan(MAX_NESTING);
    const r = classify(`SELECT 1${'+1'.repeat(MAX_NESTING + 1)}`);
    expect(r).toMatchObject({ ok: false });
  });

  it('never throws on arbitrary strings (property)', async () => {
    await initClassifier();
    const loneSurrogates = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: loneSurrogates, maxLength: 50 })), (s) => {
        const r = classify(s);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 1500 },
    );
  });

  it('never throws on SQL-shaped noise, and what parses keeps the invariants (property)', async () => {
    await initClassifier();
    fc.assert(
      fc.property(sqlish, (s) => {
        const r = classify(s);
        if (r.ok) for (const st of r.statements) checkInvariants(st);
      }),
      { numRuns: 1500 },
    );
  });
});

/** Strings built from SQL fragments, so that a good share of them parse. */
const sqlish = fc
  .array(
    fc.constantFrom(
      'SELECT', '*', 'FROM', 'patients', 'p', 'visits', 'WHERE', 'id', '=', '1', 'AND', 'OR', 'NOT', 'JOIN', 'ON', 'p.id',
      'WITH', 'x', 'AS', '(', ')', ',', ';', 'DELETE', 'UPDATE', 'SET', 'INSERT', 'INTO', 'VALUES', 'UNION', 'LIMIT', '10',
      'COPY', 'TO', 'STDOUT', 'EXPLAIN', 'ANALYZE', 'RETURNING', 'CASE', 'WHEN', 'THEN', 'END', "'s'", '$1', '$$b$$', '--c\n',
      '/*c*/', 'count(*)', 'now()', 'LATERAL', 'EXISTS', 'IN', 'true', 'public.t', '"Q"', 'ORDER BY', 'GROUP BY', 'TABLE',
    ),
    { maxLength: 25 },
  )
  .map((parts) => parts.join(' '));

describe('redactLiterals', () => {
  it.each([
    ["SELECT * FROM patients WHERE ssn = '123-45-6789'", "SELECT * FROM patients WHERE ssn = '<redacted>'"],
    ['SELECT * FROM patients WHERE id = 42 AND score > 1.5e3', 'SELECT * FROM patients WHERE id = <n> AND score > <n>'],
    ['SELECT * FROM t WHERE a = $1 AND b = $2', 'SELECT * FROM t WHERE a = $1 AND b = $2'],
    ["SELECT E'O\\'Brien', 'it''s'", "SELECT '<redacted>', '<redacted>'"],
    ['SELECT $$John Smith$$, $tag$ x $ y $tag$', "SELECT '<redacted>', '<redacted>'"],
    ["SELECT B'1010', X'1F', b'0', x'ff'", "SELECT '<redacted>', '<redacted>', '<redacted>', '<redacted>'"],
    ["SELECT U&'d\\0061t' UESCAPE '!'", "SELECT '<redacted>' UESCAPE '<redacted>'"],
    ["SELECT N'national'", "SELECT '<redacted>'"],
    ["SELECT DATE '1980-01-02', interval '1 day'", "SELECT DATE '<redacted>', interval '<redacted>'"],
    ['SELECT 0x1F, 0o17, 0b101, 1_000_000, .5, -7', 'SELECT <n>, <n>, <n>, <n>, <n>, -<n>'],
    ['SELECT 1 -- MRN-12345678\nFROM t', 'SELECT <n> -- <redacted>\nFROM t'],
    ['SELECT /* patient John */ 1', 'SELECT /* <redacted> */ <n>'],
    ["SELECT 'first'\n  'continued'", "SELECT '<redacted>'"],
    ['SELECT "Quoted Ident", t.col1 FROM s1.t', 'SELECT "Quoted Ident", t.col1 FROM s1.t'],
    ["SELECT 'unterminated 123-45-6789", "SELECT '<redacted>'"],
    ['SELECT $$never closed John', "SELECT '<redacted>'"],
    ['SELECT "never closed, \'123-45-6789\'', "SELECT '<redacted>'"],
    ['SELECT 1 /* never closed John', 'SELECT <n> /* <redacted> */'],
    ['', ''],
  ])('%j', (input, expected) => {
    expect(redactLiterals(input)).toBe(expected);
  });

  it('redacts what either standard_conforming_strings setting treats as a literal', () => {
    // With standard strings the first literal ends at \'; with backslash escapes it runs on to the second quote.
    const out = redactLiterals("SELECT 'a\\' , 'John Smith' , 'b'");
    expect(out).not.toContain('John');
    expect(out.startsWith('SELECT ')).toBe(true);
  });

  it('never throws and never leaves a literal behind (property)', async () => {
    await loadModule();
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        expect(typeof redactLiterals(s)).toBe('string');
      }),
      { numRuns: 1500 },
    );
  });

  it("covers every literal and comment byte the real scanner finds (property, cross-checked with libpg-query's scanner)", async () => {
    await loadModule();
    // scan.l token types: FCONST 260, SCONST 261, USCONST 262, BCONST 263, XCONST 264, ICONST 266, comments 275/276.
    const LITERAL_TYPES = new Set([260, 261, 262, 263, 264, 266, 275, 276]);
    const fragment = fc.constantFrom(
      "'", "''", '\\', "E'", "e'", "B'", "X'", "U&'", "N'", '$$', '$a$', '$1', '--', '/*', '*/', '\n', ' ', 'a', 'é', '1', '.5',
      '1e5', '0x1F', '"', 'SELECT', ',', ';', '(', ')', 'x', 'E', '&', 'u', '+', '-', '::',
    );
    let checked = 0;
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 30 }).map((a) => a.join('')), (sql) => {
        let tokens;
        try {
          tokens = scanSync(sql).tokens;
        } catch {
          return; // the scanner refuses it; the parser would too
        }
        checked++;
        const spans = literalSpans(sql).map((r) => [Buffer.byteLength(sql.slice(0, r.start)), Buffer.byteLength(sql.slice(0, r.end))]);
        for (const t of tokens) {
          if (!LITERAL_TYPES.has(t.tokenType)) continue;
          const covered = spans.some(([a = 0, b = 0]) => a <= t.start && t.end <= b);
          if (!covered) throw new Error(`literal ${JSON.stringify(t.text)} in ${JSON.stringify(sql)} not redacted`);
        }
      }),
      { numRuns: 3000 },
    );
    expect(checked).toBeGreaterThan(300);
  });
});

describe('ClassifierCache', () => {
  it('returns the identical result on a hit and counts hits and misses', async () => {
    await initClassifier();
    const cache = new ClassifierCache(10);
    const sql = 'SELECT * FROM patients WHERE id = 1';
    const first = cache.classify(sql);
    const second = cache.classify(sql);
    expect(second).toBe(first);
    expect(second).toEqual(classify(sql));
    expect(cache.stats()).toEqual({ hits: 1, misses: 1, size: 1 });
  });

  it('evicts the least recently used entry', async () => {
    await initClassifier();
    const cache = new ClassifierCache(2);
    cache.classify('SELECT 1');
    cache.classify('SELECT 2');
    cache.classify('SELECT 1');
    cache.classify('SELECT 3');
    expect(cache.stats().size).toBe(2);
    cache.classify('SELECT 1');
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 3 });
    cache.classify('SELECT 2');
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 4 });
  });

  it('caches refusals but not texts over the length limit', async () => {
    await initClassifier();
    const cache = new ClassifierCache(10, 100);
    cache.classify('SELEC 1');
    cache.classify('SELEC 1');
    cache.classify(`SELECT ${'1,'.repeat(100)}1`);
    expect(cache.stats()).toEqual({ hits: 1, misses: 2, size: 1 });
  });

  it('serves repeated statements from the cache (prints hit vs miss; thresholds live in npm run bench)', async () => {
    await initClassifier();
    const typical =
      "SELECT p.id, p.full_name, v.visit_date FROM patients p JOIN visits v ON v.patient_id = p.id WHERE p.mrn = 'MRN-12345678' AND v.visit_date > now() - interval '30 days' ORDER BY v.visit_date DESC LIMIT 50";
    const cache = new ClassifierCache(5000);
    for (let i = 0; i < 300; i++) classify(`${typical} -- warm ${i}`);
    const misses = 2000;
    let t0 = performance.now();
    for (let i = 0; i < misses; i++) cache.classify(`${typical} -- ${i}`);
    const missUs = ((performance.now() - t0) / misses) * 1000;
    const hits = 100_000;
    t0 = performance.now();
    for (let i = 0; i < hits; i++) cache.classify(`${typical} -- ${i % 1000}`);
    const hitUs = ((performance.now() - t0) / hits) * 1000;
    console.log(`classify ${typical.length}-char query: cache miss ${missUs.toFixed(1)} us, cache hit ${hitUs.toFixed(2)} us`);
    expect(cache.stats()).toMatchObject({ misses: misses, hits });
  });
});

describe('WASM binding', () => {
  it("gives the same trees, fingerprints, normalized text and errors as libpg-query's own API", async () => {
    await initClassifier();
    await loadModule();
    const corpus = [
      ...CASES.map((c) => c.sql).filter((sql) => sql.length > 0),
      'SELEC 1',
      "SELECT 'unterminated",
      "SELECT * FROM p WHERE a = 'x' 'y'",
      'SELECT 1; DROPP TABLE x',
      "SELECT 'é', \"ü\" FROM t WHERE x = 'naïve' AND y = $1",
      'CREATE TABLE t (',
    ];
    for (const sql of corpus) {
      const mine = parseTree(sql);
      let theirs: unknown;
      try {
        theirs = { ok: true, value: parseSync(sql) };
      } catch (err) {
        const e = err as Error & { sqlDetails?: { cursorPosition?: number } };
        theirs = { ok: false, reason: 'syntax', message: e.message, position: e.sqlDetails?.cursorPosition };
      }
      expect(mine, sql).toEqual(theirs);
      if (!mine.ok) continue;
      expect(fingerprintOf(sql), sql).toEqual({ ok: true, value: fingerprintSync(sql) });
      expect(normalizedOf(sql), sql).toEqual({ ok: true, value: normalizeSync(sql) });
    }
  });
});

describe('parser fault recovery', () => {
  it('replaces a WASM instance after a stack overflow and refuses until the new one is ready', async () => {
    await initClassifier();
    const cache = new ClassifierCache();
    // Bypasses classify's depth screen on purpose: this is the overflow it normally prevents.
    const fault = parseTree(`SELECT 1${'+1'.repeat(200_000)}`);
    expect(fault).toMatchObject({ ok: false, reason: 'unavailable' });
    expect(parserState()).toBe('recovering');
    const during = cache.classify('SELECT * FROM patients');
    expect(during.ok).toBe(false);
    expect(cache.stats().size).toBe(0);
    await parserSettled();
    expect(parserState()).toBe('ready');
    expect(cache.classify('SELECT * FROM patients')).toMatchObject({ ok: true, statements: [{ kind: 'select', withoutWhere: true }] });
    for (let i = 0; i < 200; i++) expect(classify(`SELECT * FROM t${i} WHERE id = ${i}`).ok).toBe(true);
  });

  it('survives many faults in a row without keeping the dropped instances', async () => {
    await initClassifier();
    const deep = `SELECT 1${'+1'.repeat(50_000)}`;
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 25; i++) {
      expect(parseTree(deep)).toMatchObject({ ok: false, reason: 'unavailable' });
      await parserSettled();
      expect(parserState()).toBe('ready');
    }
    // Each instance holds about 10 MB of WASM memory after such a statement; 25 kept alive would show.
    expect(process.memoryUsage().rss - before).toBeLessThan(150 * 1024 * 1024);
    expect(only('SELECT * FROM patients WHERE id = 1')).toMatchObject({ kind: 'select', withoutWhere: false });
  });
});
