// The errors for statements, queries and messages over the policy's limits: each names the limit,
// its policy key and SQLSTATE 54000; what evidence keeps of an over-size statement holds no literal.
import { describe, expect, it } from 'vitest';
import { humanBytes, messageSizeError, oversizeEvidence, statementCountError, statementSizeError } from '../../src/server/size-limits.js';

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
