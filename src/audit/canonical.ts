// The canonical form every audit hash is computed over: RFC 8785 (JSON Canonicalization Scheme) for
// the values audit records contain. Pure; an auditor can recompute it with any JCS implementation.
//
// Canonical form, precisely (so it can be reimplemented in any language):
//   - objects: members sorted by key, comparing keys as sequences of UTF-16 code units; members
//     whose value is undefined are absent; `{`, `:`, `,`, `}` with no whitespace anywhere;
//   - strings: as ECMAScript JSON.stringify writes them (", \ and control characters escaped,
//     \b \f \n \r \t short forms, other controls as \u00XX lowercase hex; everything else literal UTF-8);
//     strings and member names must be well-formed Unicode: RFC 8785 works on I-JSON (RFC 7493), so a
//     lone surrogate is refused (CanonicalFormError, reason 'lone_surrogate'), never escaped;
//   - numbers: ECMAScript Number-to-String (shortest round-trip form; integers without a fraction);
//     NaN and Infinity are not allowed; audit records only ever hold safe integers;
//   - true, false, null; arrays in order.
// The bytes hashed are the UTF-8 encoding of that text. Each log line is exactly this text.
import * as cryptoModule from 'node:crypto';
import { createHash } from 'node:crypto';

/** A value that can appear in an audit record (what JSON can carry, with undefined meaning absent). */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [k: string]: JsonValue | undefined };

/** Why a value has no canonical form. */
export type CanonicalFormReason = 'not_finite' | 'not_json' | 'lone_surrogate';

/** The value has no RFC 8785 form; `path` names where (`$.a[2].b`), never the offending text. */
export class CanonicalFormError extends Error {
  constructor(readonly path: string, readonly reason: CanonicalFormReason, message: string) {
    super(`cannot put ${path} in canonical form: ${message}`);
    this.name = 'CanonicalFormError';
  }
}

const LONE_SURROGATE = 'a string with a lone UTF-16 surrogate is not I-JSON (RFC 7493), which RFC 8785 requires';

function text(s: string, path: string): string {
  if (!s.isWellFormed()) throw new CanonicalFormError(path, 'lone_surrogate', LONE_SURROGATE);
  return JSON.stringify(s);
}

function key(k: string, path: string): string {
  if (!k.isWellFormed()) throw new CanonicalFormError(path, 'lone_surrogate', `a member name: ${LONE_SURROGATE}`);
  return JSON.stringify(k);
}

/** UTF-16 code unit order, which is what JS `<` on strings does (and what RFC 8785 specifies). */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function canonicalJson(value: unknown): string {
  return write(value, '$');
}

function write(value: unknown, path: string): string {
  switch (typeof value) {
    case 'string':
      return text(value, path);
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalFormError(path, 'not_finite', `${value} is not a finite number`);
      // -0 would print as "0" and parse back as 0: the same value, so nothing to do.
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          const v: unknown = value[i];
          // Strings inline: no element path is built unless an element can fail.
          out += typeof v === 'string' && v.isWellFormed() ? JSON.stringify(v) : v === undefined ? 'null' : write(v, `${path}[${i}]`);
        }
        return `${out}]`;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new CanonicalFormError(path, 'not_json', `a ${(value as object).constructor?.name ?? 'non-plain'} object is not JSON data`);
      }
      const o = value as Record<string, unknown>;
      const keys = Object.keys(o).sort(byCodeUnits);
      let out = '{';
      let first = true;
      for (const k of keys) {
        const v = o[k];
        if (v === undefined) continue;
        if (!first) out += ',';
        first = false;
        out += `${key(k, path)}:${write(v, `${path}.${k}`)}`;
      }
      return `${out}}`;
    }
    default:
      throw new CanonicalFormError(path, 'not_json', `a ${typeof value} is not JSON data`);
  }
}

const HEADER_KEYS = new Set(['seq', 'at', 'prev']);

/** Per key set of an event (in the order its object lists them): the merged, sorted member prefixes. */
const shapes = new Map<string, { own: string[]; keys: string[]; prefixes: string[] }>();

/** Same keys in the same order (the check that makes the cheap joined-key lookup exact). */
function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * canonicalJson({ ...event, seq, at, prev }) without building that object: the hot path of every
 * append. Events from one call site share a key set, so the sorted order is computed once per set.
 */
export function canonicalRecord(event: Readonly<Record<string, unknown>>, seq: number, at: string, prev: string): string {
  const own = Object.keys(event);
  // A cheap key (a joined string, no escaping pass) made exact by comparing the keys it stands for.
  const id = own.join('\u0001');
  let shape = shapes.get(id);
  if (!shape || !sameKeys(shape.own, own)) {
    const keys = [...own.filter((k) => !HEADER_KEYS.has(k)), ...HEADER_KEYS].sort(byCodeUnits);
    const made = { own, keys, prefixes: keys.map((k, i) => `${i === 0 ? '' : ','}${key(k, '$')}:`) };
    // Bounded: call sites are few; a caller building key sets dynamically must not grow this forever.
    if (!shape && shapes.size < 1000) shapes.set(id, made);
    shape = made;
  }
  let out = '{';
  let first = true;
  const { keys, prefixes } = shape;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = k === 'seq' ? seq : k === 'at' ? at : k === 'prev' ? prev : event[k];
    if (v === undefined) continue;
    // The stored prefix carries a comma unless it is the first key; adjust when earlier keys were absent.
    const p = prefixes[i]!;
    out += first && i > 0 ? p.slice(1) : p;
    first = false;
    out += typeof v === 'string' ? text(v, `$.${k}`) : typeof v === 'number' && Number.isFinite(v) ? JSON.stringify(v) : write(v, `$.${k}`);
  }
  return `${out}}`;
}

/** crypto.hash (Node >= 20.12) skips the Hash object: a third of the cost for a short line. */
const oneShot = (cryptoModule as { hash?: (alg: string, data: string | Uint8Array, enc: 'hex') => string }).hash;

export function sha256Hex(data: string | Uint8Array): string {
  return oneShot ? oneShot('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');
}

/** The `prev` of the first record of a log: there is no predecessor. */
export const GENESIS_PREV = '0'.repeat(64);
