// Counts read as English wherever the CLI prints them: "1 statement", "2 statements", never "1 statements".
import { describe, expect, it } from 'vitest';
import { recordDetail } from '../../src/audit/format.js';
import { formatVerifyReport } from '../../src/audit/verify.js';
import type { StoredRecord } from '../../src/audit/events.js';
import { plural } from '../../src/ui/plural.js';

const rec = (over: Record<string, unknown>): StoredRecord => ({ seq: 1, at: '2026-01-01T00:00:00.000Z', prev: '0'.repeat(64), ...over }) as unknown as StoredRecord;

describe('counts in words', () => {
  it('plural', () => {
    expect([plural(0, 'row'), plural(1, 'row'), plural(1000, 'row'), plural(2, 'policy', 'policies')]).toEqual(['0 rows', '1 row', '1,000 rows', '2 policies']);
  });

  it('audit search details: a session of 1 statement, a search of 1 result, an export of 1 record', () => {
    expect(recordDetail(rec({ type: 'session.end', session: 's1', duration_ms: 2000, statements: 1 }))).toBe('after 2s, 1 statement session s1');
    expect(recordDetail(rec({ type: 'session.end', session: 's1', duration_ms: 1500, statements: 2 }))).toMatch(/, 2 statements session s1$/);
    expect(recordDetail(rec({ type: 'audit.search', filters: { user: 'a' }, results: 1 }))).toBe('searched user=a: 1 result');
    expect(recordDetail(rec({ type: 'audit.export', records: 1 }))).toBe('exported 1 record');
  });

  it('audit verify: 1 record, 1 signed checkpoint', () => {
    const out = formatVerifyReport({
      ok: true, file: 'x', records: 1, checkpoints: 1, unanchored: 0, problems: [], warnings: [],
    } as unknown as Parameters<typeof formatVerifyReport>[0]);
    expect(out).toMatch(/^audit log intact: 1 record, 1 signed checkpoint\n/);
    expect(out).not.toMatch(/\b1 (records|checkpoints)\b/);
  });
});
