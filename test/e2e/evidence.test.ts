// The gateway's evidence: every session and statement is in the hash-chained audit log, with
// redacted text only, and the log verifies after the server stops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { run, startGateway, type Gw } from '../support/harness.js';
import { psql } from '../support/clients.js';
import { verifyLog } from '../../src/audit/verify.js';

const RULES = `rules:
  - name: no-ddl
    when: { statement: [drop] }
    action: block
masking:
  detectors: [us_ssn]
default: allow
`;

let gw: Gw;
beforeAll(async () => {
  gw = await startGateway({ policy: RULES });
});
afterAll(async () => gw?.close());

describe('audit log', () => {
  it('records sessions and statements (redacted, with decision, rule and policy version) and verifies', async () => {
    const c = await gw.connect('ehr', await gw.token('alice'));
    await psql(c.port, ['-c', "SELECT '123-45-6789' AS ssn, 42 AS n"]);
    await psql(c.port, ['-c', 'DROP TABLE IF EXISTS nothing_here']);
    await c.stop();
    await gw.server.stop('SIGTERM');
    const auditDir = join(gw.dir, 'data', 'audit');
    const text = readFileSync(join(auditDir, 'audit.jsonl'), 'utf8');
    expect(text).not.toContain('123-45-6789');
    const records = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const types = records.map((r) => r['type']);
    expect(types[0]).toBe('server.start');
    expect(types).toContain('policy.activated');
    expect(types.at(-1)).toBe('server.stop');
    const statements = records.filter((r) => r['type'] === 'statement');
    const select = statements.find((r) => String(r['sql']).includes('AS ssn'));
    expect(select).toMatchObject({ user: 'alice', connection: 'ehr', decision: 'allow', kinds: ['select'], policy: expect.stringMatching(/^sha256:/) });
    expect(select?.['sql']).toBe("SELECT '<redacted>' AS ssn, <n> AS n");
    const result = records.find((r) => r['type'] === 'statement.result' && r['statement'] === select?.['seq']);
    expect(result).toMatchObject({ user: 'alice', rows: 1, tag: 'SELECT 1', duration_ms: expect.any(Number) });
    const drop = statements.find((r) => String(r['sql']).startsWith('DROP'));
    expect(drop).toMatchObject({ decision: 'block', rule: 'no-ddl', tables: ['nothing_here'] });
    const starts = records.filter((r) => r['type'] === 'session.start');
    const ends = records.filter((r) => r['type'] === 'session.end');
    expect(starts.length).toBeGreaterThanOrEqual(2);
    expect(ends.length).toBe(starts.length);
    expect(starts[0]).toMatchObject({ user: 'alice', kind: 'service', connection: 'ehr', client_user: 'alice', application_name: 'psql' });
    const report = await verifyLog(auditDir);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    // the key auditors pin is the one the log's checkpoints are signed with
    const p = run(['server', '--print-public-key', '--data-dir', join(gw.dir, 'data')]);
    expect((await p.exited).code).toBe(0);
    expect(p.stdout()).toContain(readFileSync(join(auditDir, 'public-key.pem'), 'utf8').trim());
    expect(p.stdout()).toMatch(/# fingerprint ed25519:[0-9a-f]+/);
  });

  it('seals each session recording in its session.end record; the recording shows masked rows only', async () => {
    const text = readFileSync(join(gw.dir, 'data', 'audit', 'audit.jsonl'), 'utf8');
    const ends = text.trim().split('\n').map((l) => JSON.parse(l) as { type: string; recording?: { sha256: string; file: string } })
      .filter((r) => r.type === 'session.end' && r.recording);
    expect(ends.length).toBeGreaterThan(0);
    const rec = readFileSync(join(gw.dir, 'data', 'recordings', ends[0]!.recording!.file), 'utf8');
    expect(createHash('sha256').update(rec).digest('hex')).toBe(ends[0]!.recording!.sha256);
    expect(rec).toMatch(/"type":"statement"/);
    // the statement is redacted and the row is recorded as alice saw it: with the SSN detected and masked
    expect(rec).toContain("'<redacted>' AS ssn");
    expect(rec).toContain('***-**-6789');
    expect(rec).not.toContain('123-45-6789');
  });
});
