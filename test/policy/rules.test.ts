// Policy rules: parsing with precise errors, and first-match decisions over classified statements.
import { describe, expect, it } from 'vitest';
import { parsePolicyFile } from '../../src/policy/file.js';
import { decideStatements, type ClassifiedStatement, type DecisionInput } from '../../src/policy/decide.js';
import { parseDuration } from '../../src/policy/duration.js';
import { parseTablePattern } from '../../src/policy/rules.js';

const HEADER = `version: 1
connections:
  ehr: { upstream: "postgres://svc@db/ehr", allow_groups: [engineering, ai-agents] }
`;
const RULES = `rules:
  - name: no-ddl
    when: { statement: [drop, truncate, alter, create, grant, revoke] }
    action: block
    message: DDL is not allowed through phigate
  - name: phi-writes
    when: { statement: [insert, update, delete, copy_from], tables: [patients, visits] }
    action: approve
    approvers: [privacy-officers]
    timeout: 15m
  - name: bulk-phi-read
    when: { statement: [select, copy_to], tables: [patients], without_where: true }
    action: approve
    approvers: [privacy-officers]
  - name: no-file-access
    when: { functions: [pg_read_file, lo_export] }
    action: block
  - name: agents-no-guess
    when: { identity_kind: [agent], predicates_on_masked: true }
    action: block
default: allow
`;

const policy = parsePolicyFile(HEADER + RULES, 'p.yaml');
const st = (kind: string, tables: string[] = [], extra: Partial<ClassifiedStatement> = {}): ClassifiedStatement => ({
  kind, tables: tables.map((t) => (t.includes('.') ? { schema: t.split('.')[0]!, name: t.split('.')[1]! } : { name: t })),
  writes: [], modifiesData: false, withoutWhere: false, functions: [], predicateColumns: [], ...extra,
});
const input = (over: Partial<DecisionInput> = {}): DecisionInput => ({
  rules: policy.rules, defaultAction: policy.default, connection: 'ehr',
  identity: { name: 'alice', subject: 'alice', groups: ['engineering'], kind: 'human' },
  maskedColumns: new Set(['patients.ssn']), ...over,
});

describe('rule parsing', () => {
  it('reads the SPEC example rules', () => {
    expect(policy.rules.map((r) => [r.name, r.action])).toEqual([
      ['no-ddl', 'block'], ['phi-writes', 'approve'], ['bulk-phi-read', 'approve'], ['no-file-access', 'block'], ['agents-no-guess', 'block'],
    ]);
    expect(policy.rules[1]).toMatchObject({ approvers: ['privacy-officers'], timeoutMs: 900_000 });
    expect(policy.rules[2]?.timeoutMs).toBe(900_000); // default timeout
  });

  const bad: [string, string, RegExp][] = [
    ['an unknown kind', RULES.replace('[drop, truncate', '[dorp, truncate'), /p\.yaml:6:25: rules\.no-ddl\.when\.statement: unknown statement kind "dorp"/],
    ['an approve rule without approvers', RULES.replace('    approvers: [privacy-officers]\n    timeout: 15m\n', ''), /rules\.phi-writes\.approvers: expected a list of strings, got nothing/],
    ['a bad timeout', RULES.replace('timeout: 15m', 'timeout: soon'), /p\.yaml:13:14: rules\.phi-writes\.timeout: expected a duration/],
    ['approvers on a block rule', RULES.replace('    message: DDL is not allowed through phigate\n', '    approvers: [x]\n'), /rules\.no-ddl\.approvers: only approve rules take approvers/],
    ['a duplicate name', RULES.replace('name: bulk-phi-read', 'name: phi-writes'), /duplicate rule name "phi-writes"/],
    ['an unknown action', RULES.replace('action: block\n    message', 'action: deny\n    message'), /rules\.no-ddl\.action: expected one of allow, block, approve, got "deny"/],
    ['a non-boolean flag', RULES.replace('without_where: true', 'without_where: yes please'), /without_where: expected true or false/],
    ['an unknown condition', RULES.replace('without_where: true', 'with_where: false'), /rules\[2\]\.when\.with_where|when\.with_where: unknown key/],
    ['a bad table name', RULES.replace('tables: [patients]', 'tables: ["a.b.c"]'), /"a\.b\.c" is not a table name/],
  ];
  for (const [name, rules, re] of bad) {
    it(`rejects ${name}`, () => expect(() => parsePolicyFile(HEADER + rules, 'p.yaml')).toThrow(re));
  }

  it('parses table patterns like PostgreSQL folds names', () => {
    expect(parseTablePattern('Patients')).toEqual({ name: 'patients' });
    expect(parseTablePattern('"Patients"')).toEqual({ name: 'Patients' });
    expect(parseTablePattern('"my schema"."T"')).toEqual({ schema: 'my schema', name: 'T' });
    expect(parseTablePattern('public.patients')).toEqual({ schema: 'public', name: 'patients' });
    expect(parseTablePattern('a.b.c')).toBeUndefined();
  });

  it('parses durations', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('0s')).toBeUndefined();
    expect(parseDuration('15')).toBeUndefined();
  });
});

describe('decisions', () => {
  it('blocks DDL by the first matching rule, naming it', () => {
    const d = decideStatements([st('drop', ['patients'])], input());
    expect(d).toMatchObject({ action: 'block', rule: 'no-ddl', reason: 'blocked by rule "no-ddl": DDL is not allowed through phigate' });
  });

  it('holds PHI writes for approvers with the rule timeout', () => {
    const d = decideStatements([st('delete', ['patients'])], input());
    expect(d).toMatchObject({ action: 'approve', rule: 'phi-writes', approvers: ['privacy-officers'], timeoutMs: 900_000, tables: ['patients'] });
  });

  it('treats a data-modifying CTE inside a SELECT as a write', () => {
    const d = decideStatements([st('select', ['patients'], { modifiesData: true, writes: [{ name: 'patients' }] })], input());
    expect(d).toMatchObject({ action: 'approve', rule: 'phi-writes' });
    // ... but an INSERT is not a DELETE
    const p = parsePolicyFile(HEADER + 'rules:\n  - { name: r, when: { statement: [delete] }, action: block }\n');
    expect(decideStatements([st('insert', ['visits'], { modifiesData: true, writes: [{ name: 'visits' }] })], input({ rules: p.rules })).action).toBe('allow');
  });

  it('treats a cursor declaration as the SELECT it reads', () => {
    expect(decideStatements([st('declare', ['patients'], { withoutWhere: true })], input())).toMatchObject({ action: 'approve', rule: 'bulk-phi-read' });
  });

  it('matches bulk reads only without WHERE', () => {
    expect(decideStatements([st('select', ['patients'], { withoutWhere: true })], input())).toMatchObject({ action: 'approve', rule: 'bulk-phi-read' });
    expect(decideStatements([st('select', ['patients'])], input())).toMatchObject({ action: 'allow', reason: 'default: allow' });
  });

  it('takes the most restrictive statement of a multi-statement query', () => {
    const d = decideStatements([st('select'), st('delete', ['visits']), st('drop', ['x'])], input());
    expect(d).toMatchObject({ action: 'block', rule: 'no-ddl', statementIndex: 2, kinds: ['select', 'delete', 'drop'] });
  });

  it('matches functions with or without their schema', () => {
    // pg_read_file is withheld by the server-access baseline before any rule; lifted, the rule decides.
    const lifted = { files: ['engineering'], programs: [], alter_system: [], extensions: [], roles: [], remote: [] };
    expect(decideStatements([st('select', [], { functions: ['pg_catalog.pg_read_file'] })], input())).toMatchObject({ action: 'block', rule: 'server_access.files' });
    expect(decideStatements([st('select', [], { functions: ['pg_catalog.pg_read_file'] })], input({ serverAccess: lifted }))).toMatchObject({ action: 'block', rule: 'no-file-access' });
  });

  it('applies identity conditions and predicates on masked columns', () => {
    const guess = st('select', ['patients'], { predicateColumns: [{ column: 'ssn' }] });
    expect(decideStatements([guess], input())).toMatchObject({ action: 'allow' });
    const agent = input({ identity: { name: 'bot', subject: 'bot', groups: ['ai-agents'], kind: 'agent' } });
    expect(decideStatements([guess], agent)).toMatchObject({ action: 'block', rule: 'agents-no-guess' });
    expect(decideStatements([st('select', ['patients'], { predicateColumns: [{ table: 'patients', column: 'id' }] })], agent)).toMatchObject({ action: 'allow' });
  });

  it('schema-qualified patterns match unqualified names through public only', () => {
    const p = parsePolicyFile(HEADER + 'rules:\n  - { name: r, when: { tables: [public.patients] }, action: block }\n');
    const i = input({ rules: p.rules });
    expect(decideStatements([st('select', ['patients'])], i).action).toBe('block');
    expect(decideStatements([st('select', ['public.patients'])], i).action).toBe('block');
    expect(decideStatements([st('select', ['other.patients'])], i).action).toBe('allow');
  });

  it('falls back to the default, and default block says so', () => {
    const d = decideStatements([st('select', ['visits'])], input({ rules: [], defaultAction: 'block' }));
    expect(d).toEqual(expect.objectContaining({ action: 'block', reason: 'no rule allows this statement (default: block)' }));
    expect(d.rule).toBeUndefined();
  });
});
