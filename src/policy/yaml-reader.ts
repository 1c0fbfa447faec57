// Typed reading of a YAML tree with errors that point at the offending node's file, line and key.
import { isMap, isSeq, isScalar, type LineCounter, type Node } from 'yaml';
import { PolicyFileError } from './errors.js';

/** Cursor over the YAML tree that reports errors at the offending node's line. */
export class Reader {
  constructor(
    private readonly file: string,
    private readonly lines: LineCounter,
  ) {}

  fail(node: Node | null | undefined, key: string, problem: string): never {
    const offset = node?.range?.[0];
    const pos = offset === undefined ? undefined : this.lines.linePos(offset);
    throw new PolicyFileError(this.file, pos?.line, pos?.col, key, problem);
  }

  map(node: Node | null | undefined, key: string, allowed: Set<string>): Map<string, Node | null> {
    if (!isMap(node)) this.fail(node, key, `expected a mapping, got ${describe(node)}`);
    const out = new Map<string, Node | null>();
    for (const pair of node.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (k === undefined) this.fail(pair.key as Node, key, 'keys must be plain strings');
      const path = key ? `${key}.${k}` : k;
      if (allowed.size > 0 && !allowed.has(k)) {
        this.fail(pair.key as Node, path, `unknown key; expected one of ${[...allowed].join(', ')}`);
      }
      if (out.has(k)) this.fail(pair.key as Node, path, 'duplicate key');
      out.set(k, (pair.value as Node | null) ?? null);
    }
    return out;
  }

  string(node: Node | null | undefined, key: string): string {
    if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') {
      this.fail(node, key, `expected a non-empty string, got ${describe(node)}`);
    }
    return node.value;
  }

  oneOf<T extends string>(node: Node | null | undefined, key: string, values: readonly T[]): T {
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'string' || !values.includes(v as T)) {
      this.fail(node, key, `expected one of ${values.join(', ')}, got ${describe(node)}`);
    }
    return v as T;
  }

  boolean(node: Node | null | undefined, key: string): boolean {
    if (!isScalar(node) || typeof node.value !== 'boolean') this.fail(node, key, `expected true or false, got ${describe(node)}`);
    return node.value;
  }

  strings(node: Node | null | undefined, key: string): string[] {
    if (!isSeq(node)) this.fail(node, key, `expected a list of strings, got ${describe(node)}`);
    return node.items.map((item, i) => this.string(item as Node, `${key}[${i}]`));
  }
}

export function describe(node: Node | null | undefined): string {
  if (node === null || node === undefined) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return node.value === null ? 'null' : JSON.stringify(node.value);
  return 'an unsupported value';
}

