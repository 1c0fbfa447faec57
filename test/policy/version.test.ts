// The policy version is the SHA-256 of the audit log's canonical JSON (one module): versions already
// recorded stay what they were for every valid policy, and a value with no canonical form (a lone
// surrogate from a YAML escape) is a policy error, not a crash or a silently different hash.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { policyVersion } from '../../src/policy/version.js';
import { PolicyFileError } from '../../src/policy/errors.js';
import { sha256Hex } from '../../src/audit/canonical.js';

/**
 * The canonical form policy/version.ts had before it used audit/canonical.ts, kept here only as the
 * reference that recorded versions were computed with.
 */
function previousCanonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(previousCanonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${previousCanonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

describe('policy version', () => {
  it('a version recorded before is unchanged (a policy with non-ASCII text, numbers and nested lists)', () => {
    const text = readFileSync(join(import.meta.dirname, 'recorded-policy.yaml'), 'utf8');
    // Computed by the previous implementation and recorded in evidence as such.
    expect(policyVersion(text)).toBe('sha256:53cc5876b00c0aafe39f354aae61a77931e05a7cd14aef1a845a3d089bff8f72');
  });

  it('is the previous version for any YAML document of JSON values with well-formed text', () => {
    fc.assert(fc.property(fc.jsonValue({ stringUnit: 'binary', maxDepth: 3 }), (v) => {
      const source = stringify(v);
      const previous = `sha256:${sha256Hex(previousCanonicalJson(JSON.parse(JSON.stringify(v))))}`;
      expect(policyVersion(source)).toBe(previous);
    }), { numRuns: 200 });
  });

  it('a lone surrogate from a YAML escape is a PolicyFileError naming the key', () => {
    const source = 'version: 1\nrules:\n  - name: x\n    message: "bad \\uD800 text"\ndefault: allow\n';
    let err: unknown;
    try {
      policyVersion(source, 'p.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyFileError);
    expect((err as Error).message).toMatch(/^p\.yaml: rules\[0\]\.message: a string holds a lone UTF-16 surrogate/);
    // The pair written as two escapes is one character and fine.
    expect(policyVersion('version: 1\nm: "\\uD83E\\uDE7A"\n')).toBe(policyVersion('version: 1\nm: "\u{1FA7A}"\n'));
  });
});
