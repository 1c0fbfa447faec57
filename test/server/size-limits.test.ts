// The errors for statements, queries and messages over the policy's limits: each names the limit,
// its policy key and SQLSTATE 54000; what evidence keeps of an over-size statement holds no literal.
import { describe, expect, it } from 'vitest';
import { humanBytes, messageSizeError, oversizeEvidence, statementCountError, statementSizeError } from '../../src/server/size-limits.js';
import { StatementGate } from '../../src/server/gate.js';
import { ShapeClassifierCache } from '../../src/policy/shape-cache.js';
import { initClassifier } from '../../src/policy/classify/index.js';
import { parsePolicyFile } from '../../src/policy/file.js';

describe('size limits', () => {
  it('writes sizes as people read them', () => {
    expect(humanBytes(900)).toBe('900 bytes');
    expect(humanBytes(1024)).toBe('1 KiB');
    expect(humanBytes(1536)).toBe('1.5 KiB');
    expect(humanBytes(Math.round(2.1 * 1024 * 1024))).toBe('2.1 MiB');
  });

  it('counts statement bytes as UTF-8, as the wire carries them', () => {
    const limits = { statementBytes: 1000 };
    expect(statementSizeError('x'.repeat(1000), limits)).toBeUndefined();
    expect(statementSizeError('é'.repeat(500), limits)).toBeUndefined();
    const e = statementSizeError('é'.repeat(501), limits);
    expect(e).toMatchObject({ severity: 'ERROR', code: '54000', message: 'phigate: statement of 1002 bytes exceeds limits.statement_bytes (1000 bytes), so it was not run' });
    expect(e?.hint).toMatch(/limits\.statement_bytes/);
    expect(statementSizeError('x'.repeat(2 * 1024 * 1024 + 100 * 1024), { statementBytes: 1024 * 1024 })?.message)
      .toBe('phigate: statement of 2.1 MiB exceeds limits.statement_bytes (1 MiB), so it was not run');
  });

  it('refuses a query of more statements than the limit, and not one of exactly as many', () => {
    expect(statementCountError(1000, { statementsPerQuery: 1000 })).toBeUndefined();
    expect(statementCountError(1001, { statementsPerQuery: 1000 })?.message)
      .toBe('phigate: query of 1001 statements exceeds limits.statements_per_query (1000), so none of them was run');
  });

  it('ends the connection for a message over limits.message_bytes', () => {
    expect(messageSizeError(65 * 1024 * 1024 + 4, 64 * 1024 * 1024)).toMatchObject({
      severity: 'FATAL', code: '54000', message: 'phigate: message of 65.0 MiB exceeds limits.message_bytes (64 MiB); the connection is closed',
    });
  });

  it('keeps only the redacted start of an over-size statement for evidence, even when a literal is cut', () => {
    const secret = 'Zebulon Quimby 123-45-6789';
    const sql = `SELECT '${'a'.repeat(4000)}', '${secret}' FROM t WHERE x = '${'b'.repeat(2_000_000)}'`;
    const ev = oversizeEvidence(sql);
    expect(ev.length).toBeLessThan(200);
    expect(ev).not.toContain(secret);
    expect(ev).not.toContain('aaaa');
    expect(ev).toMatch(/^SELECT '<redacted>'/);
    expect(ev).toMatch(/more characters not recorded \*\/$/);
    // A surrogate pair straddling the cut is not split.
    const emoji = `${'x'.repeat(4095)}\u{1F600}${'y'.repeat(10)}`;
    expect(oversizeEvidence(emoji)).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
});

describe('statements per query in the gate', () => {
  const policyWith = (limit: number) => parsePolicyFile(`version: 1
connections:
  ehr:
    upstream: postgres://svc@db.internal:5432/ehr
    tls: disable
    allow_groups: [engineering]
limits:
  statements_per_query: ${limit}
default: allow
`, 'limits.yaml');

  it('refuses a Query over the limit whole, reading the limit of the policy in force at each Query', async () => {
    await initClassifier();
    let policy = policyWith(3);
    const gate = new StatementGate({
      policy: () => policy, classifier: new ShapeClassifierCache(), connection: 'ehr',
      identity: { name: 'a', subject: 'a', groups: ['engineering'], kind: 'human' },
    });
    expect(gate.onQuery('select 1; select 2; select 3').action).toBe('allow');
    const v = gate.onQuery('select 1; select 2; select 3; select 4');
    expect(v.action === 'block' && v.error).toMatchObject({ code: '54000', message: expect.stringMatching(/query of 4 statements exceeds limits\.statements_per_query \(3\)/) });
    // A PREPARE in a refused Query is not remembered: executing it is refused as unknown.
    expect(gate.onQuery('prepare p as select 1; select 2; select 3; select 4').action).toBe('block');
    expect(gate.onQuery('execute p').action).toBe('block');
    policy = policyWith(10);
    expect(gate.onQuery('select 1; select 2; select 3; select 4').action).toBe('allow');
  });
});
