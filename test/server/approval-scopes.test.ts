// What each approval scope releases in a session's statement gate (issue 16 finding 3): once
// nothing more, statement the same text, shape any literals, session the rule while its policy stands.
import { beforeAll, describe, expect, it } from 'vitest';
import { StatementGate, type Verdict } from '../../src/server/gate.js';
import { ShapeClassifierCache } from '../../src/policy/shape-cache.js';
import { initClassifier } from '../../src/policy/classify/index.js';
import { parsePolicyFile, type PolicyFile } from '../../src/policy/file.js';
import type { ApprovalScope } from '../../src/approvals/types.js';

const TEXT = `version: 1
connections: { ehr: { upstream: "postgres://u@h/d", allow_groups: [engineering] } }
rules:
  - { name: phi-writes, when: { statement: [delete, update], tables: [visits] }, action: approve, approvers: [privacy-officers] }
  - { name: other, when: { statement: [delete], tables: [notes] }, action: approve, approvers: [privacy-officers] }
`;

beforeAll(async () => initClassifier());

function setup(): { gate: StatementGate; setPolicy: (p: PolicyFile) => void } {
  let policy = parsePolicyFile(TEXT);
  const gate = new StatementGate({
    policy: () => policy, classifier: new ShapeClassifierCache(), connection: 'ehr',
    identity: { name: 'alice', subject: 'alice', groups: ['engineering'], kind: 'human' },
  });
  return { gate, setPolicy: (p) => (policy = p) };
}

/** Holds `sql` and approves it with `scope`. */
function approve(gate: StatementGate, sql: string, scope: ApprovalScope): void {
  const v = gate.onQuery(sql);
  expect(v.action).toBe('approve');
  gate.release(scope, v as Extract<Verdict, { action: 'approve' }>);
}

const held = (gate: StatementGate, sql: string): boolean => gate.onQuery(sql).action === 'approve';

describe('approval scopes in the statement gate', () => {
  it('once releases nothing more', () => {
    const { gate } = setup();
    approve(gate, 'DELETE FROM visits WHERE id = 1', 'once');
    expect(held(gate, 'DELETE FROM visits WHERE id = 1')).toBe(true);
  });

  it('statement releases the exact text only, not another literal', () => {
    const { gate } = setup();
    approve(gate, 'DELETE FROM visits WHERE id = -55555', 'statement');
    expect(held(gate, 'DELETE FROM visits WHERE id = -55555')).toBe(false);
    expect(held(gate, 'DELETE FROM visits WHERE id = -88888')).toBe(true);
  });

  it('shape releases any literals of the same shape, not another shape', () => {
    const { gate } = setup();
    approve(gate, 'DELETE FROM visits WHERE id = -55555', 'shape');
    expect(held(gate, 'DELETE FROM visits WHERE id = 7')).toBe(false);
    expect(held(gate, 'DELETE FROM visits WHERE id > 7')).toBe(true);
  });

  it('session releases every statement of the rule, not other rules, and only under the same policy', () => {
    const { gate, setPolicy } = setup();
    approve(gate, 'DELETE FROM visits WHERE id = 1', 'session');
    expect(held(gate, 'UPDATE visits SET id = 2 WHERE id > 100')).toBe(false);
    expect(held(gate, 'DELETE FROM notes WHERE id = 1')).toBe(true);
    setPolicy(parsePolicyFile(`${TEXT}default: allow\n`));
    expect(held(gate, 'UPDATE visits SET id = 2 WHERE id > 100')).toBe(true);
  });

  it('applies to extended-protocol executions too', () => {
    const { gate } = setup();
    gate.onParse('s1', 'DELETE FROM visits WHERE id = $1');
    gate.onBind('', 's1');
    const v = gate.onExecute('');
    expect(v.action).toBe('approve');
    gate.release('statement', v as Extract<Verdict, { action: 'approve' }>);
    gate.onBind('', 's1');
    expect(gate.onExecute('').action).toBe('allow');
  });
});
