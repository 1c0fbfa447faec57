// The policy file's `functions:` section: what the operator asserts about user-defined functions
// that phigate cannot see into. `read_only`: calls are not writes (a volatile function otherwise
// counts as a write to every table). `masked_readers`: readers who see masked values may call it.
// phigate cannot check either claim: a function body is invisible to it.
import { isSeq, type Node } from 'yaml';
import type { Reader } from './yaml-reader.js';
import { describe } from './yaml-reader.js';
import { parseTablePattern } from './rules.js';

export interface FunctionPolicy {
  /** Absent: the function of that name in any schema. */
  schema?: string;
  name: string;
  readOnly: boolean;
  maskedReaders: boolean;
}

const FUNCTION_KEYS = new Set(['name', 'read_only', 'masked_readers']);

/** `name` or `schema.name` (quoted parts keep their case); `*` is not a function name. */
export function parseFunctionName(text: string): { schema?: string; name: string } | undefined {
  const p = parseTablePattern(text);
  if (p === undefined || p.name === '*' || p.schema === '*') return undefined;
  return p;
}

export function parseFunctions(r: Reader, node: Node | null | undefined): FunctionPolicy[] {
  if (node === undefined || node === null) return [];
  if (!isSeq(node)) r.fail(node, 'functions', `expected a list of functions, got ${describe(node)}`);
  const seen = new Set<string>();
  return node.items.map((item, i) => {
    const key = `functions[${i}]`;
    const m = r.map(item as Node, key, FUNCTION_KEYS);
    if (!m.has('name')) r.fail(item as Node, `${key}.name`, 'missing: name the function as name or schema.name');
    const text = r.string(m.get('name'), `${key}.name`);
    const name = parseFunctionName(text);
    if (name === undefined) r.fail(m.get('name'), `${key}.name`, `"${text}" is not a function name; expected name or schema.name (no arguments: the entry covers every overload)`);
    const k = `${name.schema ?? ''}\u0000${name.name}`;
    if (seen.has(k)) r.fail(m.get('name'), `${key}.name`, `duplicate entry for function ${text}`);
    seen.add(k);
    const entry: FunctionPolicy = {
      ...name,
      readOnly: m.has('read_only') ? r.boolean(m.get('read_only'), `${key}.read_only`) : false,
      maskedReaders: m.has('masked_readers') ? r.boolean(m.get('masked_readers'), `${key}.masked_readers`) : false,
    };
    if (!entry.readOnly && !entry.maskedReaders) {
      r.fail(item as Node, key, 'declares nothing: set read_only: true and/or masked_readers: true (or leave the function out)');
    }
    return entry;
  });
}

/** The entries that apply to function `schema.name` (an entry without a schema applies in every schema). */
export function functionEntries(policy: readonly FunctionPolicy[], schema: string, name: string): FunctionPolicy[] {
  return policy.filter((f) => f.name === name && (f.schema === undefined || f.schema === schema));
}
