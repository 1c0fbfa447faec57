// A policy's version: the SHA-256 of its canonical form (keys sorted, no formatting or comments), so
// re-indenting or commenting a file does not change the version but any semantic change does.
import { createHash } from 'node:crypto';
import { parse } from 'yaml';

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** `sha256:<hex>` of the canonical form of a policy file's text (which must already be valid). */
export function policyVersion(source: string): string {
  return `sha256:${createHash('sha256').update(canonicalJson(parse(source))).digest('hex')}`;
}
