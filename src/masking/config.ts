// The policy file's `masking:` section (docs/policy.md `masking`): typed column rules, detectors and unmasked groups, with errors that name the line and key.
import { isMap, isScalar, isSeq, type Node } from 'yaml';
import type { Reader } from '../policy/yaml-reader.js';
import { describe } from '../policy/yaml-reader.js';
import { UnsafePatternError, vetPattern } from './regex-safety.js';

export const STRATEGIES = ['redact', 'partial', 'tokenize', 'year_only', 'null'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const BUILTIN_DETECTORS = ['us_ssn', 'email', 'phone', 'date', 'mbi', 'npi'] as const;
export type BuiltinDetector = (typeof BUILTIN_DETECTORS)[number];

export const DEFAULT_PLACEHOLDER = '***';

export interface ColumnRule {
  /** Absent: the rule applies to a table of that name in any schema. */
  schema?: string;
  table: string;
  column: string;
  strategy: Strategy;
  /** partial only (0 otherwise). */
  keepFirst: number;
  keepLast: number;
  /** What redact writes into text-like columns. */
  placeholder: string;
}

export interface CustomDetector {
  kind: 'custom';
  name: string;
  /** As written in the policy. */
  pattern: string;
  /** As compiled: unbounded repetition capped (see regex-safety.ts). */
  source: string;
  /** Global regex, compiled once; callers reset lastIndex (replace/exec loops do). */
  regex: RegExp;
}

export type DetectorSpec = { kind: 'builtin'; name: BuiltinDetector } | CustomDetector;

export interface MaskingConfig {
  columns: readonly ColumnRule[];
  detectors: readonly DetectorSpec[];
  unmaskedGroups: readonly string[];
}

export const EMPTY_MASKING: MaskingConfig = Object.freeze({ columns: [], detectors: [], unmaskedGroups: [] });

const SECTION_KEYS = new Set(['columns', 'detectors', 'unmasked_groups']);
const COLUMN_KEYS = new Set(['column', 'strategy', 'keep_first', 'keep_last', 'placeholder']);
const DETECTOR_KEYS = new Set(['name', 'pattern']);
const DETECTOR_NAME = /^[a-z][a-z0-9_]{0,62}$/;

/**
 * `table.column` or `schema.table.column`; `"Quoted"` parts keep their case, unquoted ones fold to
 * lower case as PostgreSQL folds them.
 */
export function parseColumnName(text: string): { schema?: string; table: string; column: string } | undefined {
  const parts: string[] = [];
  const re = /\s*(?:"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*))\s*(\.|$)/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) return undefined;
    parts.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : (m[2] as string).toLowerCase());
    pos = re.lastIndex;
    if (m[3] === '') break;
    if (pos >= text.length) return undefined;
  }
  if (parts.length === 2) return { table: parts[0] as string, column: parts[1] as string };
  if (parts.length === 3) return { schema: parts[0] as string, table: parts[1] as string, column: parts[2] as string };
  return undefined;
}

function keyOf(schema: string | undefined, table: string, column: string): string {
  return `${schema ?? ''}\u0000${table}\u0000${column}`;
}

function nonNegativeInteger(r: Reader, node: Node | null | undefined, key: string): number {
  if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value) || node.value < 0 || node.value > 10_000) {
    r.fail(node, key, `expected a whole number from 0 to 10000, got ${describe(node)}`);
  }
  return node.value;
}

function lineOf(r: Reader, node: Node | null | undefined): string {
  // Reader does not expose line numbers, so read one through the error it would raise.
  try {
    r.fail(node, '', '');
  } catch (err) {
    const line = (err as { line?: number }).line;
    return line === undefined ? '' : ` (first at line ${line})`;
  }
}

/**
 * Parses the `masking:` section. An absent or null section is no masking at all. Call it from the
 * policy loader as `parseMasking(r, top.get('masking'))`.
 */
export function parseMasking(r: Reader, node: Node | null | undefined): MaskingConfig {
  if (node === undefined || node === null) return EMPTY_MASKING;
  if (isScalar(node) && node.value === null) return EMPTY_MASKING;
  const m = r.map(node, 'masking', SECTION_KEYS);
  const columns = parseColumns(r, m.get('columns'));
  const detectors = parseDetectors(r, m.get('detectors'));
  const unmaskedGroups = m.has('unmasked_groups') && m.get('unmasked_groups') !== null ? r.strings(m.get('unmasked_groups'), 'masking.unmasked_groups') : [];
  return { columns, detectors, unmaskedGroups };
}

function parseColumns(r: Reader, node: Node | null | undefined): ColumnRule[] {
  if (node === undefined || node === null) return [];
  if (!isSeq(node)) r.fail(node, 'masking.columns', `expected a list of column rules, got ${describe(node)}`);
  const seen = new Map<string, Node>();
  return node.items.map((item, i) => {
    const key = `masking.columns[${i}]`;
    const m = r.map(item as Node, key, COLUMN_KEYS);
    if (!m.has('column')) r.fail(item as Node, `${key}.column`, 'missing: name the column as table.column or schema.table.column');
    const text = r.string(m.get('column'), `${key}.column`);
    const name = parseColumnName(text);
    if (name === undefined) r.fail(m.get('column'), `${key}.column`, `"${text}" is not a column name; expected table.column or schema.table.column`);
    const k = keyOf(name.schema, name.table, name.column);
    const first = seen.get(k);
    if (first !== undefined) r.fail(m.get('column'), `${key}.column`, `duplicate masking rule for ${text}${lineOf(r, first)}`);
    seen.set(k, m.get('column') as Node);

    if (!m.has('strategy')) r.fail(item as Node, `${key}.strategy`, `missing: expected one of ${STRATEGIES.join(', ')}`);
    const strategy = r.oneOf(m.get('strategy'), `${key}.strategy`, STRATEGIES);
    const rule: ColumnRule = { ...name, strategy, keepFirst: 0, keepLast: 0, placeholder: DEFAULT_PLACEHOLDER };
    if (name.schema === undefined) delete rule.schema;
    for (const [yamlKey, prop] of [['keep_first', 'keepFirst'], ['keep_last', 'keepLast']] as const) {
      if (!m.has(yamlKey)) continue;
      if (strategy !== 'partial') r.fail(m.get(yamlKey), `${key}.${yamlKey}`, `only the partial strategy takes ${yamlKey}`);
      rule[prop] = nonNegativeInteger(r, m.get(yamlKey), `${key}.${yamlKey}`);
    }
    if (strategy === 'partial' && rule.keepFirst === 0 && rule.keepLast === 0) {
      r.fail(m.get('strategy'), `${key}.strategy`, 'partial needs keep_first or keep_last (a number of characters to keep); use redact to hide the whole value');
    }
    if (m.has('placeholder')) {
      if (strategy !== 'redact') r.fail(m.get('placeholder'), `${key}.placeholder`, 'only the redact strategy takes a placeholder');
      const p = r.string(m.get('placeholder'), `${key}.placeholder`);
      if (p.length > 64 || /[\u0000-\u001f\u007f]/.test(p)) r.fail(m.get('placeholder'), `${key}.placeholder`, 'a placeholder is at most 64 printable characters');
      rule.placeholder = p;
    }
    return rule;
  });
}

function parseDetectors(r: Reader, node: Node | null | undefined): DetectorSpec[] {
  if (node === undefined || node === null) return [];
  if (!isSeq(node)) r.fail(node, 'masking.detectors', `expected a list of detectors, got ${describe(node)}`);
  const seen = new Set<string>();
  const out: DetectorSpec[] = [];
  node.items.forEach((item, i) => {
    const key = `masking.detectors[${i}]`;
    if (isMap(item)) {
      const m = r.map(item as Node, key, DETECTOR_KEYS);
      if (!m.has('name')) r.fail(item as Node, `${key}.name`, 'missing: a custom detector needs a name and a pattern');
      if (!m.has('pattern')) r.fail(item as Node, `${key}.pattern`, 'missing: a custom detector needs a name and a pattern');
      const name = r.string(m.get('name'), `${key}.name`);
      if (!DETECTOR_NAME.test(name)) r.fail(m.get('name'), `${key}.name`, 'detector names are lower-case letters, digits and "_", starting with a letter');
      if ((BUILTIN_DETECTORS as readonly string[]).includes(name)) {
        r.fail(m.get('name'), `${key}.name`, `"${name}" is a built-in detector; list it by name or choose another name`);
      }
      if (seen.has(name)) r.fail(m.get('name'), `${key}.name`, `duplicate detector "${name}"`);
      seen.add(name);
      const pattern = r.string(m.get('pattern'), `${key}.pattern`);
      let source: string;
      try {
        source = vetPattern(pattern).source;
      } catch (err) {
        if (err instanceof UnsafePatternError) r.fail(m.get('pattern'), `${key}.pattern`, err.problem);
        throw err;
      }
      out.push({ kind: 'custom', name, pattern, source, regex: new RegExp(source, 'g') });
      return;
    }
    const name = r.string(item as Node, key);
    if (!(BUILTIN_DETECTORS as readonly string[]).includes(name)) {
      r.fail(item as Node, key, `unknown detector "${name}"; expected one of ${BUILTIN_DETECTORS.join(', ')} or { name, pattern }`);
    }
    if (seen.has(name)) r.fail(item as Node, key, `duplicate detector "${name}"`);
    seen.add(name);
    out.push({ kind: 'builtin', name: name as BuiltinDetector });
  });
  return out;
}

/** A source column as lineage and the catalog name it. */
export interface ColumnName {
  schema?: string;
  table: string;
  column: string;
}

/**
 * The rule for a column. A rule without a schema matches the table in any schema; a source whose
 * schema is unknown (an unqualified name in SQL) matches rules for any schema, so an ambiguity masks
 * more, never less. A schema-qualified rule wins over an unqualified one.
 */
export function ruleFor(config: MaskingConfig, col: ColumnName): ColumnRule | undefined {
  let fallback: ColumnRule | undefined;
  for (const rule of config.columns) {
    if (rule.table !== col.table || rule.column !== col.column) continue;
    if (rule.schema !== undefined && col.schema !== undefined && rule.schema !== col.schema) continue;
    if (rule.schema !== undefined && col.schema !== undefined) return rule;
    fallback ??= rule;
  }
  return fallback;
}

/** Does any rule mask a column of this table? */
export function tableHasRules(config: MaskingConfig, table: { schema?: string; name: string }): boolean {
  return config.columns.some((r) => r.table === table.name && (r.schema === undefined || table.schema === undefined || r.schema === table.schema));
}

/** Whether a reader with these groups sees raw values. */
export function isUnmaskedReader(config: MaskingConfig, groups: readonly string[]): boolean {
  return config.unmaskedGroups.some((g) => groups.includes(g));
}

/**
 * What the statement gate knows about masking for a reader with `groups`: the policy's masked
 * columns (for predicates_on_masked, whoever reads) and whether this reader's results are masked.
 * The gateway and `phigate policy test` both decide with it, so they cannot disagree.
 */
export function gateMasking(config: MaskingConfig, groups: readonly string[]): { maskedColumns?: ReadonlySet<string>; maskedReader: boolean } {
  if (config.columns.length === 0 && config.detectors.length === 0) return { maskedReader: false };
  return { maskedColumns: maskedColumnKeys(config), maskedReader: !isUnmaskedReader(config, groups) };
}

const columnKeys = new WeakMap<MaskingConfig, ReadonlySet<string>>();

/**
 * `table.column` of every masked column, lower case, as the policy's predicates_on_masked check wants
 * it. One set per policy, shared by its sessions (the gate caches what it derives from it by set).
 */
export function maskedColumnKeys(config: MaskingConfig): ReadonlySet<string> {
  let keys = columnKeys.get(config);
  if (keys === undefined) {
    keys = new Set(config.columns.map((r) => `${r.table}.${r.column}`.toLowerCase()));
    columnKeys.set(config, keys);
  }
  return keys;
}
