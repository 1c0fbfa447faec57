// Tokens outside the Authorization header, and what a log line may show of a request target.
import { describe, expect, it } from 'vitest';
import { misplacedToken } from '../../src/auth/bearer.js';
import { createLogger, pathOf, scrubTokens } from '../../src/common/log.js';

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLXBhcnQ';

describe('misplacedToken', () => {
  it('finds tokens in query parameters, path segments and token headers; ordinary requests pass', () => {
    expect(misplacedToken(new URL(`http://h/v1/approvals?access_token=x`), {})).toMatch(/query string/);
    expect(misplacedToken(new URL(`http://h/v1/approvals?note=${JWT}`), {})).toMatch(/parameter "note"/);
    expect(misplacedToken(new URL(`http://h/v1/tunnel/${JWT}`), {})).toMatch(/path/);
    expect(misplacedToken(new URL('http://h/v1/connections'), { 'x-access-token': JWT })).toMatch(/x-access-token/);
    expect(misplacedToken(new URL('http://h/v1/audit/search?user=bob&since=24h&all=1'), { authorization: `Bearer ${JWT}` })).toBeUndefined();
  });
});

describe('log lines', () => {
  it('show paths without query strings, and never a JWT whatever field holds it', () => {
    expect(pathOf(`/v1/approvals/apr-1/approve?access_token=${JWT}`)).toBe('/v1/approvals/apr-1/approve');
    expect(pathOf('/x#frag')).toBe('/x');
    expect(scrubTokens(`a ${JWT} b`)).toBe('a <token removed> b');
    for (const format of ['text', 'json'] as const) {
      let out = '';
      createLogger({ format, write: (l) => (out += l) }).warn('refused', { error: `bad ${JWT}` });
      expect(out).toContain('<token removed>');
      expect(out).not.toContain(JWT);
    }
  });
});

describe('session labels', () => {
  it('are trimmed, lose control and format characters, and are bounded', async () => {
    const { normalizeLabel, showLabel, MAX_LABEL_CHARS } = await import('../../src/tunnel/label.js');
    expect(normalizeLabel('  DEV-BOB ')).toBe('DEV-BOB');
    expect(normalizeLabel('a\u001b[31mb\u202ec\u200bd\ne')).toBe('a [31mb c d e');
    expect(normalizeLabel(' \u0000 ')).toBeUndefined();
    expect([...normalizeLabel('é'.repeat(200))!].length).toBe(MAX_LABEL_CHARS);
    expect(showLabel('claude "x"')).toBe('"claude \\"x\\""');
  });
});
