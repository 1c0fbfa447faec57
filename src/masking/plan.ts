// Decides, once per result description, what happens to each result column: pass, detect (content detectors), or mask with a strategy; compiles that into per-column functions for the row path.
//
// A column's source comes from two places. RowDescription's table OID and attribute number are the
// server's own word, but only for plain column references, and a view reports the view. Lineage
// (lineage.ts) covers everything else. The rules, in order:
//   1. a reader in masking.unmasked_groups: everything passes, no detectors;
//   2. RowDescription names a column with a rule: that rule's strategy;
//   3. RowDescription names a column of a plain table (relkind r/p/f) without a rule: the value is
//      that column's value, nothing masked flows into it;
//   4. lineage for this output: computed from a masked column → its rule's strategy if the output is
//      a plain reference to it, full redaction otherwise; unknown sources → redacted when the
//      statement reads a table with masked columns or calls an opaque function;
//   5. no usable lineage (none given, or its column count differs from RowDescription's): redacted
//      whenever the statement reads a table with masked columns, or, with no lineage at all,
//      whenever any column is masked (fail closed);
//   and every column that is not masked but is text-like gets the content detectors.
// Full redaction is the redact strategy with the default placeholder, which for non-text types is
// NULL (strategies.ts has the table).
import type { FieldDescription } from '../pg/index.js';
import { DEFAULT_PLACEHOLDER, ruleFor, tableHasRules, type ColumnRule, type MaskingConfig, type Strategy } from './config.js';
import { DetectorSet } from './detectors.js';
import { binaryInspectable, scanBinary } from './binary.js';
import type { ColumnSource, OutputLineage, StatementLineage } from './lineage.js';
import { OID, detectable, typeKind } from './pgtypes.js';
import { Tokenizer, partialInto, redactor, tokenizeInto, tokenizesAsText, yearOnlyInto, type ValueType } from './strategies.js';
import { NULL_VALUE, putValue, type ValueOut } from './arena.js';

/** What RowDescription's (table OID, attribute number) resolves to through the catalog. */
export interface ResolvedAttribute {
  schema: string;
  table: string;
  column: string;
  /** pg_class.relkind: 'r' table, 'p' partitioned, 'f' foreign, 'v' view, 'm' materialized view... */
  relkind?: string;
}

export type ResolveAttr = (tableOid: number, attnum: number) => ResolvedAttribute | undefined;

export interface PlanOptions {
  /** The reader belongs to one of masking.unmasked_groups (see isUnmaskedReader). */
  unmasked: boolean;
  /** The server's tokenization key (at least 16 bytes), from its secret store. */
  tokenKey: Buffer;
  /**
   * The statement was rewritten at the source (masking/source): values computed from masked
   * columns are masked values already, so lineage decides nothing; a raw column that still arrives
   * named by RowDescription (a reference the rewrite did not replace) is masked by its rule.
   */
  sourceMasked?: boolean;
}

/**
 * A per-value rewrite of buf[start, end): writes the new bytes at arena.len (arena.room first) and
 * returns their length, or returns NULL_VALUE for SQL NULL or UNCHANGED. Taking a range and
 * writing into shared scratch space saves two allocations per value on the row path.
 */
export type ValueOp = (buf: Buffer, start: number, end: number, arena: ValueOut) => number;

export type ColumnAction = 'pass' | 'detect' | 'mask';

export interface ColumnPlan {
  index: number;
  name: string;
  typeOid: number;
  format: number;
  action: ColumnAction;
  /** For mask: the strategy applied. */
  strategy?: Strategy;
  /**
   * For mask: 'rule' (a plain reference to a masked column), 'derived' (computed from one),
   * 'untraced' (lineage unknown, so treated as derived from everything the statement reads).
   */
  reason?: 'rule' | 'derived' | 'untraced';
  /** For mask: the masked columns involved, as schema.table.column names (never values). */
  from?: string[];
}

export interface MaskPlan {
  columns: readonly ColumnPlan[];
  /** Nothing to do for any column: rows pass untouched. */
  passthrough: boolean;
  /** The result cannot be masked as requested: the session refuses the statement with `message` (SQLSTATE 0A000). */
  refuse?: { column: string; message: string };
  /** Per column, the rewrite to run on non-NULL values (undefined: pass untouched). */
  ops: readonly (ValueOp | undefined)[];
  /** Some column is masked with a strategy: almost every row changes (the row path writes in place). */
  masks?: boolean;
  /** Columns tokenized as text, whose tokens the row path may compute ahead in batches (Tokenizer.prepare). */
  tokens?: { columns: readonly number[]; tokenizer: Tokenizer };
}

// Compiled per policy and per key, so that planning a result is a few map lookups.
const detectorCache = new WeakMap<MaskingConfig, DetectorSet>();
const tokenizerCache = new WeakMap<Buffer, Tokenizer>();

export function detectorsFor(config: MaskingConfig): DetectorSet {
  let d = detectorCache.get(config);
  if (d === undefined) {
    d = new DetectorSet(config.detectors);
    detectorCache.set(config, d);
  }
  return d;
}

function tokenizerFor(key: Buffer): Tokenizer {
  let t = tokenizerCache.get(key);
  if (t === undefined) {
    t = new Tokenizer(key);
    tokenizerCache.set(key, t);
  }
  return t;
}

const FULL_REDACT: ColumnRule = { table: '', column: '', strategy: 'redact', keepFirst: 0, keepLast: 0, placeholder: DEFAULT_PLACEHOLDER };

function qualified(c: { schema?: string; table: string; column: string }): string {
  return c.schema === undefined ? `${c.table}.${c.column}` : `${c.schema}.${c.table}.${c.column}`;
}

const TABLE_RELKINDS = new Set(['r', 'p', 'f']);

interface Decision {
  rule: ColumnRule;
  reason: 'rule' | 'derived' | 'untraced';
  from: string[];
}

function readsMasked(config: MaskingConfig, lineage: StatementLineage): string[] {
  return lineage.reads.filter((t) => tableHasRules(config, { schema: t.schema, name: t.table })).map((t) => (t.schema === undefined ? t.table : `${t.schema}.${t.table}`));
}

function fromLineage(config: MaskingConfig, lineage: StatementLineage, out: OutputLineage): Decision | undefined {
  const rules = new Map<ColumnRule, ColumnSource>();
  for (const s of out.sources) {
    const r = ruleFor(config, s);
    if (r !== undefined) rules.set(r, s);
  }
  const tables = out.tables.filter((t) => tableHasRules(config, { schema: t.schema, name: t.table }));
  if (out.unknown) {
    const reads = readsMasked(config, lineage);
    if (reads.length > 0 || lineage.opaque.length > 0 || rules.size > 0 || tables.length > 0) {
      return { rule: FULL_REDACT, reason: 'untraced', from: [...[...rules.values()].map(qualified), ...reads] };
    }
    return undefined;
  }
  if (rules.size === 0 && tables.length === 0) return undefined;
  const from = [...[...rules.values()].map(qualified), ...tables.map((t) => (t.schema === undefined ? `${t.table}.*` : `${t.schema}.${t.table}.*`))];
  if (out.plain !== undefined && tables.length === 0) {
    const own = ruleFor(config, out.plain);
    if (own !== undefined && rules.size === 1 && rules.has(own)) return { rule: own, reason: 'rule', from };
  }
  return { rule: FULL_REDACT, reason: 'derived', from };
}

function decide(
  f: FieldDescription,
  i: number,
  lineage: StatementLineage | undefined,
  lineageFits: boolean,
  resolveAttr: ResolveAttr,
  config: MaskingConfig,
  sourceMasked = false,
): Decision | undefined {
  if (f.tableOid !== 0 && f.columnAttr > 0) {
    const src = resolveAttr(f.tableOid, f.columnAttr);
    if (src !== undefined) {
      const rule = ruleFor(config, src);
      if (rule !== undefined) return { rule, reason: 'rule', from: [qualified(src)] };
      if (src.relkind !== undefined && TABLE_RELKINDS.has(src.relkind)) return undefined;
    } else if (sourceMasked) {
      // A plain column of a relation the catalog does not know: nothing says it was masked.
      return { rule: FULL_REDACT, reason: 'untraced', from: [] };
    }
  }
  if (sourceMasked) return undefined;
  if (lineage !== undefined && lineageFits) {
    const out = lineage.outputs?.[i];
    if (out !== undefined) return fromLineage(config, lineage, out);
  }
  if (lineage === undefined) return { rule: FULL_REDACT, reason: 'untraced', from: [] };
  const reads = readsMasked(config, lineage);
  if (reads.length > 0 || lineage.opaque.length > 0) return { rule: FULL_REDACT, reason: 'untraced', from: reads };
  return undefined;
}

function valueType(f: FieldDescription): ValueType {
  const t: ValueType = { kind: typeKind(f.typeOid), binary: f.format === 1 };
  if (f.typeOid === OID.bpchar) t.padded = true;
  return t;
}

const nullOp: ValueOp = () => NULL_VALUE;

function maskOp(rule: ColumnRule, t: ValueType, key: Buffer): ValueOp {
  switch (rule.strategy) {
    case 'null':
      return nullOp;
    case 'redact': {
      const r = redactor(rule.placeholder, t)();
      return r === null ? nullOp : (_b, _s, _e, arena) => putValue(arena, r);
    }
    case 'partial':
      return (b, s, e, arena) => partialInto(b, s, e, t, rule.keepFirst, rule.keepLast, arena);
    case 'tokenize': {
      const tok = tokenizerFor(key);
      return (b, s, e, arena) => tokenizeInto(b, s, e, t, tok, arena);
    }
    case 'year_only':
      return (b, s, e, arena) => yearOnlyInto(b, s, e, t, rule.placeholder, arena);
  }
}

function detectOp(detectors: DetectorSet, t: ValueType): ValueOp {
  if (t.binary) return (b, s, e, arena) => putValue(arena, scanBinary(b.subarray(s, e), t.kind, detectors));
  const kind = t.kind;
  return (b, s, e, arena) => putValue(arena, detectors.scanRange(b, s, e, kind));
}

/**
 * The plan for one result. `lineage` is the statement's (for FETCH/EXECUTE, the one kept from
 * DECLARE/PREPARE); pass undefined only when there is none, which masks every column not named by
 * RowDescription whenever the policy masks anything.
 */
export function planColumns(
  fields: readonly FieldDescription[],
  lineage: StatementLineage | undefined,
  resolveAttr: ResolveAttr,
  config: MaskingConfig,
  opts: PlanOptions,
): MaskPlan {
  const columns: ColumnPlan[] = [];
  const ops: (ValueOp | undefined)[] = [];
  let refuse: MaskPlan['refuse'];
  if (opts.unmasked || (config.columns.length === 0 && config.detectors.length === 0)) {
    fields.forEach((f, i) => {
      columns.push({ index: i, name: f.name, typeOid: f.typeOid, format: f.format, action: 'pass' });
      ops.push(undefined);
    });
    return { columns, passthrough: true, ops };
  }
  const detectors = detectorsFor(config);
  const lineageFits = lineage?.outputs !== undefined && lineage.outputs.length === fields.length;
  const tokenColumns: number[] = [];
  fields.forEach((f, i) => {
    const t = valueType(f);
    const base = { index: i, name: f.name, typeOid: f.typeOid, format: f.format };
    const d = config.columns.length === 0 ? undefined : decide(f, i, lineage, lineageFits, resolveAttr, config, opts.sourceMasked === true);
    if (d !== undefined) {
      columns.push({ ...base, action: 'mask', strategy: d.rule.strategy, reason: d.reason, from: d.from });
      ops.push(maskOp(d.rule, t, opts.tokenKey));
      if (d.rule.strategy === 'tokenize' && tokenizesAsText(t)) tokenColumns.push(i);
      return;
    }
    if (!detectors.empty && detectable(t.kind)) {
      if (t.binary && !binaryInspectable(t.kind)) {
        refuse ??= {
          column: f.name,
          message: `result column "${f.name}" (type OID ${f.typeOid}) was requested in binary format, which phigate cannot inspect for PHI; request text format for it`,
        };
        columns.push({ ...base, action: 'detect' });
        ops.push(nullOp);
        return;
      }
      columns.push({ ...base, action: 'detect' });
      ops.push(detectOp(detectors, t));
      return;
    }
    columns.push({ ...base, action: 'pass' });
    ops.push(undefined);
  });
  const plan: MaskPlan = { columns, passthrough: ops.every((o) => o === undefined), ops };
  if (refuse !== undefined) plan.refuse = refuse;
  if (columns.some((c) => c.action === 'mask')) plan.masks = true;
  if (tokenColumns.length > 0) plan.tokens = { columns: tokenColumns, tokenizer: tokenizerFor(opts.tokenKey) };
  return plan;
}

export interface MaskedWrite {
  /** schema.table.column (or table.column) of the target; `*` when any column may receive it. */
  target: string;
  /** The masked columns the stored value is computed from (names only). */
  from: string[];
}

/**
 * Target columns that a statement would fill with values computed from masked columns: a later
 * `SELECT` of such a column is a plain read of an unmasked column, so the copy itself is the leak.
 * Empty for unmasked readers' purposes is the caller's call; a target column that is itself masked
 * is not listed. The session can refuse or hold statements for which this is non-empty.
 */
export function maskedWrites(config: MaskingConfig, lineage: StatementLineage | undefined): MaskedWrite[] {
  if (lineage === undefined || config.columns.length === 0) return [];
  const out: MaskedWrite[] = [];
  for (const w of [...(lineage.writes ?? []), ...(lineage.deferred?.writes ?? [])]) {
    for (const c of w.columns) {
      const target = { ...(w.table.schema === undefined ? {} : { schema: w.table.schema }), table: w.table.table, column: c.name };
      if (c.name !== '*' && ruleFor(config, target) !== undefined) continue;
      const d = fromLineage(config, lineage, c);
      if (d !== undefined) out.push({ target: qualified(target), from: d.from });
    }
  }
  return out;
}

/** Result fields for a COPY TO, which has no RowDescription: types unknown (read as text), no table OIDs. */
export function copyFields(count: number): FieldDescription[] {
  return Array.from({ length: count }, (_, i) => ({ name: `column${i + 1}`, tableOid: 0, columnAttr: 0, typeOid: 0, typeSize: -1, typeModifier: -1, format: 0 }));
}

