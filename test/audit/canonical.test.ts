// The canonical JSON every audit hash and policy version is computed over, against an independent
// RFC 8785 implementation (the `canonicalize` package) as an oracle over arbitrary JSON values, and
// the I-JSON rule that JCS needs: strings and member names with a lone surrogate have no canonical form.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createRequire } from 'node:module';
import { CanonicalFormError, canonicalJson, canonicalRecord } from '../../src/audit/canonical.js';

// A CommonJS module whose types declare an ES default export: require it as what it is.
const canonicalize = createRequire(import.meta.url)('canonicalize') as (value: unknown) => string | undefined;

/** Any JSON value with well-formed strings from the whole of Unicode (astral characters included). */
const json = fc.jsonValue({ stringUnit: 'binary', maxDepth: 4 });
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
/** A string that holds at least one lone surrogate somewhere. */
const malformed = fc.tuple(fc.string({ unit: 'binary', maxLength: 5 }), loneSurrogate, fc.string({ unit: 'binary', maxLength: 5 }))
  .map(([a, s, b]) => a + s + b)
  .filter((s) => !s.isWellFormed());

/** Puts `bad` somewhere inside `v`: as a string value, or as a member name. */
function plant(v: unknown, bad: string, asKey: boolean, depth = 0): unknown {
  if (Array.isArray(v) && v.length > 0 && depth < 3) return v.map((x, i) => (i === 0 ? plant(x, bad, asKey, depth + 1) : x));
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && depth < 3) {
    const o = v as Record<string, unknown>;
    const first = Object.keys(o)[0];
    if (first !== undefined) return { ...o, [first]: plant(o[first], bad, asKey, depth + 1) };
  }
  return asKey ? { [bad]: v } : [v, bad];
}

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof CanonicalFormError ? err.reason : `not a CanonicalFormError: ${String(err)}`;
  }
}

describe('canonical JSON (RFC 8785)', () => {
  it('is byte for byte what an independent JCS implementation writes, for any JSON value', () => {
    fc.assert(fc.property(json, (v) => {
      expect(canonicalJson(v)).toBe(canonicalize(v));
    }), { numRuns: 2000 });
  });

  it('numbers: the shortest round-trip form, as the oracle writes them', () => {
    fc.assert(fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (n) => {
      expect(canonicalJson([n])).toBe(canonicalize([n]));
    }), { numRuns: 2000 });
  });

  it('refuses a lone surrogate in any string or member name, with a typed error that names where, not what', () => {
    fc.assert(fc.property(json, malformed, fc.boolean(), (v, bad, asKey) => {
      const planted = plant(v, bad, asKey);
      expect(reasonOf(() => canonicalJson(planted))).toBe('lone_surrogate');
    }), { numRuns: 1000 });
    const err = (() => {
      try {
        canonicalJson({ note: { text: 'ssn 123-45-6789 \uD800' } });
      } catch (e) {
        return e as CanonicalFormError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(CanonicalFormError);
    expect(err).toMatchObject({ reason: 'lone_surrogate', path: '$.note.text' });
    expect(err!.message).not.toContain('123-45-6789');
    // A surrogate pair is one well-formed character, and it is written literally.
    expect(canonicalJson(['\uD83E\uDE7A'])).toBe('["\uD83E\uDE7A"]');
  });

  it('the audit append path refuses them too, in values and in member names', () => {
    const prev = '0'.repeat(64);
    expect(reasonOf(() => canonicalRecord({ type: 'x', reason: 'ok \uDC00' }, 1, '2025-01-01T00:00:00.000Z', prev))).toBe('lone_surrogate');
    expect(reasonOf(() => canonicalRecord({ type: 'x', detail: { a: ['\uD800'] } }, 1, '2025-01-01T00:00:00.000Z', prev))).toBe('lone_surrogate');
    expect(reasonOf(() => canonicalRecord({ type: 'x', '\uDBFFk': 1 }, 1, '2025-01-01T00:00:00.000Z', prev))).toBe('lone_surrogate');
    fc.assert(fc.property(fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), json, { maxKeys: 5 }), (extra) => {
      const event = { type: 'x', ...extra };
      delete (event as Record<string, unknown>)['seq'];
      delete (event as Record<string, unknown>)['at'];
      delete (event as Record<string, unknown>)['prev'];
      expect(canonicalRecord(event, 7, '2025-01-01T00:00:00.000Z', prev)).toBe(canonicalize({ ...event, seq: 7, at: '2025-01-01T00:00:00.000Z', prev }));
    }), { numRuns: 500 });
  });
});
