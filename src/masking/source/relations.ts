// What the source rewrite does with one relation for a masked reader: nothing, wrap it (masked or
// hidden columns computed in a subquery), expand it (a view that reads masked data: its definition,
// rewritten in turn), or refuse it. Decided per relation OID and cached per catalog snapshot.
import type { CatalogSnapshot, Relation } from './catalog-snapshot.js';
import { ruleFor, type ColumnRule, type MaskingConfig } from '../config.js';
import { lineageOf } from '../lineage.js';
import type { SourceColumnType } from './types.js';
import { quoteIdent } from './text.js';
import { parseTree } from '../../sql/parser.js';
import { ALLOWED_FUNCTIONS, DENIED_FUNCTIONS } from './allowed-functions.js';
import { isObject, list, obj, type JsonObject } from '../../sql/ast.js';

/** Computes masked values in SQL (expressions.ts); injected so the rewrite can be tested alone. */
export interface ColumnMasker {
  /** `type`: the SQL type of the value when it differs from the column's (a token in an enum column is text). */
  mask(rule: ColumnRule, column: string, type: SourceColumnType): { sql: string; type?: string };
  /** Full redaction of a value derived from masked columns (`column` keeps its NULLs NULL). */
  redact(type: SourceColumnType, column: string): { sql: string; type?: string };
}

/** One column of a masking subquery: the column itself, or an expression standing for it. */
export interface WrapItem {
  column: string;
  /** The masked value (or hidden NULL); absent: the column as it is. */
  expr?: string;
  /** A typed NULL of the masked value's type, for a masked column the statement never reads. */
  unread?: string;
  /**
   * The table's own rule masks the column: RowDescription names it, so output masking masks it
   * where the statement only returns it as it is (a plain output column): no need to compute it.
   */
  ownRule?: boolean;
}

/** Which columns a statement computes on, and which it only returns as they are (see rewrite.ts). */
export interface ColumnUse {
  computed: ReadonlySet<string> | 'all';
  plain: ReadonlySet<string> | 'all';
}

const has = (set: ReadonlySet<string> | 'all', name: string): boolean => set === 'all' || set.has(name);

/** How one masked column appears in a subquery for a statement that uses columns so. */
export function itemSql(i: WrapItem, use: ColumnUse): { sql: string; computes: boolean } {
  if (i.expr === undefined) return { sql: quoteIdent(i.column), computes: false };
  if (i.unread === undefined || has(use.computed, i.column)) return { sql: `${i.expr} AS ${quoteIdent(i.column)}`, computes: true };
  if (has(use.plain, i.column)) {
    // Returned as it is: output masking masks it by its rule; otherwise the masked value itself.
    return i.ownRule ? { sql: quoteIdent(i.column), computes: false } : { sql: `${i.expr} AS ${quoteIdent(i.column)}`, computes: true };
  }
  return { sql: `${i.unread} AS ${quoteIdent(i.column)}`, computes: false };
}

/** The select list of a masking subquery; masked columns the statement never names are typed NULLs (cheaper to plan, and nothing to read). */
export function itemsFor(items: readonly WrapItem[], use: ColumnUse): string {
  return items.map((i) => itemSql(i, use).sql).join(', ');
}

/** Does the subquery compute anything for this statement (else the relation can be read as it is)? */
export function computesFor(items: readonly WrapItem[], use: ColumnUse): boolean {
  return items.some((i) => i.expr !== undefined && (i.unread === undefined || itemSql(i, use).computes));
}

const ALL: ColumnUse = { computed: 'all', plain: 'all' };

/** How masked readers may see a relation of pg_catalog or information_schema (catalog-relations.ts). */
export type SystemTreatment =
  | { kind: 'allow' }
  | { kind: 'hide'; columns: readonly string[] }
  | { kind: 'refuse'; reason: string };

/** undefined: not a relation the system treatment knows of (an ordinary user relation). */
export type SystemTreatmentFn = (schema: string, name: string, system: boolean) => SystemTreatment | undefined;

export interface MaskedColumn {
  column: string;
  /** `rule` for a column the policy names (through an ancestor too), `derived` for a materialized view column computed from one, `hidden` for a catalog column. */
  how: 'rule' | 'derived' | 'hidden';
  strategy?: string;
}

export type Treatment =
  | { kind: 'none' }
  | {
      kind: 'wrap';
      rel: Relation;
      /** The subquery's select list: one item per column, in attribute order (see itemsFor). */
      items: readonly WrapItem[];
      /** itemsFor(items, all computed): what tells two treatments apart. */
      key: string;
      masked: MaskedColumn[];
      /** A view that also reads masked data: the wrapper reads its expanded definition. */
      expand?: boolean;
    }
  | { kind: 'expand'; rel: Relation }
  | { kind: 'refuse'; message: string };

const NONE: Treatment = { kind: 'none' };
const TABLE_KINDS = new Set(['r', 'p', 'f']);

function wrap(rel: Relation, items: WrapItem[], masked: MaskedColumn[]): Extract<Treatment, { kind: 'wrap' }> {
  return { kind: 'wrap', rel, items, key: itemsFor(items, ALL), masked };
}

export function refusedRelation(schema: string, name: string, reason: string): string {
  return `reading ${schema}.${name} is not allowed for readers who see masked values: ${reason}`;
}

/** Pseudo-types cannot be cast to: a hidden column of one becomes a NULL of a real type. */
function castable(type: SourceColumnType): string {
  return type.sql === 'anyarray' ? 'text[]' : type.sql === 'anyelement' || type.sql === 'anyenum' ? 'text' : type.sql;
}

function nullOf(type: string): string {
  return `NULL::${type}`;
}

export class RelationTreatments {
  private readonly treatments = new Map<number, Treatment>();
  private readonly reaching = new Map<number, boolean>();

  constructor(
    readonly catalog: CatalogSnapshot,
    private readonly config: MaskingConfig,
    private readonly masker: ColumnMasker,
    readonly system: SystemTreatmentFn,
    /** The statement check (functions, operators): a view whose body fails it is expanded, so the check refuses it there. */
    private readonly check?: (stmt: unknown) => unknown,
  ) {}

  private functionNames?: Set<string>;

  /**
   * Could `name` be a function (built in or in the database)? PostgreSQL reads `t.name` as
   * name(t) when t has no column `name`: a whole-row reference that looks like a column.
   */
  isFunctionName(name: string): boolean {
    this.functionNames ??= new Set([...ALLOWED_FUNCTIONS, ...DENIED_FUNCTIONS.keys(), ...this.catalog.functions.map((f) => f.name)]);
    return this.functionNames.has(name);
  }

  /** The rule masking `column` of `rel`, looking up inheritance and partition ancestors too. */
  ruleOf(rel: Relation, column: string): ColumnRule | undefined {
    for (const a of this.catalog.lineage(rel.oid)) {
      const r = ruleFor(this.config, { schema: a.schema, table: a.name, column });
      if (r !== undefined) return r;
    }
    return undefined;
  }

  treat(rel: Relation): Treatment {
    let t = this.treatments.get(rel.oid);
    if (t === undefined) {
      this.treatments.set(rel.oid, NONE); // a cycle (cannot happen in PostgreSQL) reads as no treatment
      t = this.compute(rel);
      this.treatments.set(rel.oid, t);
    }
    return t;
  }

  /** Column names of `rel` whose values a masked reader may not compute on (write targets). */
  maskedColumnsOf(rel: Relation): Set<string> {
    const out = new Set<string>();
    for (const c of rel.columns) if (this.ruleOf(rel, c) !== undefined) out.add(c);
    if ((rel.kind === 'v' || rel.kind === 'm') && rel.viewSql !== undefined && this.reachesMasked(rel)) {
      for (const m of this.derivedColumns(rel)) out.add(m.column);
    }
    return out;
  }

  private compute(rel: Relation): Treatment {
    const sys = this.system(rel.schema, rel.name, rel.system);
    if (sys !== undefined) {
      if (sys.kind === 'allow') return NONE;
      if (sys.kind === 'refuse') return { kind: 'refuse', message: refusedRelation(rel.schema, rel.name, sys.reason) };
      const hidden = new Set(sys.columns);
      const masked: MaskedColumn[] = [];
      const items = rel.typedColumns.map((c): WrapItem => {
        if (!hidden.has(c.name)) return { column: c.name };
        masked.push({ column: c.name, how: 'hidden' });
        return { column: c.name, expr: nullOf(castable(c.type)) };
      });
      return masked.length === 0 ? NONE : wrap(rel, items, masked);
    }
    if (rel.system) return NONE;
    const masked: MaskedColumn[] = [];
    const typed = (m: { sql: string; type?: string }, c: { type: SourceColumnType }, name: string): WrapItem =>
      ({ column: name, expr: m.sql, unread: nullOf(m.type ?? castable(c.type)) });
    const own = rel.typedColumns.map((c): WrapItem => {
      const rule = this.ruleOf(rel, c.name);
      if (rule === undefined) return { column: c.name };
      masked.push({ column: c.name, how: 'rule', strategy: rule.strategy });
      const item = typed(this.masker.mask(rule, quoteIdent(c.name), c.type), c, c.name);
      // Tables only (a view's column is its definition's): the rule is the relation's own when
      // output masking finds it by the relation's name, not through an ancestor.
      if (TABLE_KINDS.has(rel.kind) && ruleFor(this.config, { schema: rel.schema, table: rel.name, column: c.name }) === rule) item.ownRule = true;
      return item;
    });
    if (rel.kind === 'v') {
      // Every view is read through the definition phigate knows, never by its name: one replaced
      // after the snapshot (CREATE OR REPLACE VIEW outside the gateway) then still reads what was
      // checked. A view whose definition is missing cannot be checked at all.
      if (rel.viewSql === undefined) return { kind: 'refuse', message: `the definition of the view ${rel.schema}.${rel.name} could not be read, so phigate cannot mask what it reads` };
      return masked.length === 0 ? { kind: 'expand', rel } : { ...wrap(rel, own, masked), expand: true };
    }
    if (rel.kind === 'm' && rel.viewSql !== undefined && this.reachesMasked(rel)) {
      // A materialized view holds rows computed from raw values: its columns are masked by where
      // they come from (a plain copy of a masked column keeps that column's strategy).
      const derived = new Map(this.derivedColumns(rel).map((d) => [d.column, d]));
      const items = rel.typedColumns.map((c, i): WrapItem => {
        if (masked.some((m) => m.column === c.name)) return own[i]!;
        const d = derived.get(c.name);
        if (d === undefined) return { column: c.name };
        masked.push(d);
        const rule = d.rule;
        return typed(rule !== undefined ? this.masker.mask(rule, quoteIdent(c.name), c.type) : this.masker.redact(c.type, quoteIdent(c.name)), c, c.name);
      });
      return wrap(rel, items, masked);
    }
    return masked.length === 0 ? NONE : wrap(rel, own, masked);
  }

  /** Columns of a view or materialized view computed from masked columns, by their lineage. */
  private derivedColumns(rel: Relation): (MaskedColumn & { rule?: ColumnRule })[] {
    const lineage = lineageOf(rel.viewSql ?? '', this.catalog)[0];
    const out: (MaskedColumn & { rule?: ColumnRule })[] = [];
    rel.columns.forEach((column, i) => {
      const o = lineage?.outputs?.[i];
      if (o === undefined || o.unknown) {
        out.push({ column, how: 'derived', strategy: 'redact' });
        return;
      }
      const rules = o.sources.map((s) => this.ruleForSource(s)).filter((r): r is ColumnRule => r !== undefined);
      const tables = o.tables.some((t) => this.anyMasked(t.schema, t.table));
      if (rules.length === 0 && !tables) return;
      const plainRule = o.plain !== undefined ? this.ruleForSource(o.plain) : undefined;
      if (plainRule !== undefined && rules.every((r) => r === plainRule) && !tables) out.push({ column, how: 'derived', strategy: plainRule.strategy, rule: plainRule });
      else out.push({ column, how: 'derived', strategy: 'redact' });
    });
    return out;
  }

  private ruleForSource(s: { schema?: string; table: string; column: string }): ColumnRule | undefined {
    const rels = this.catalog.relationsNamed(s.table).filter((r) => s.schema === undefined || r.schema === s.schema);
    for (const r of rels) {
      const rule = this.ruleOf(r, s.column);
      if (rule !== undefined) return rule;
    }
    return ruleFor(this.config, s);
  }

  private anyMasked(schema: string | undefined, table: string): boolean {
    return this.catalog.relationsNamed(table).some((r) => (schema === undefined || r.schema === schema) && this.treat(r).kind !== 'none');
  }

  /** Does a view's definition read (through views too) any relation that needs treatment? */
  reachesMasked(rel: Relation): boolean {
    const known = this.reaching.get(rel.oid);
    if (known !== undefined) return known;
    this.reaching.set(rel.oid, false);
    let reaches = false;
    const parsed = parseTree(rel.viewSql ?? '');
    const refs = parsed.ok ? rangeVarsOf(parsed.value) : undefined;
    // A definition phigate cannot parse, or that calls what the check refuses (a function that runs
    // SQL text), is treated as reading masked data: expanding it then fails closed.
    const stmts = parsed.ok ? list(obj(parsed.value)?.stmts).map((r) => obj(r)?.stmt) : [];
    if (refs === undefined || (this.check !== undefined && stmts.some((st) => this.check!(st) !== undefined))) {
      this.reaching.set(rel.oid, true);
      return true;
    }
    for (const ref of refs) {
      // View texts are read with an empty search_path, so names are qualified (CTE names are not).
      const cands = this.catalog.relationsNamed(ref.name).filter((r) => (ref.schema === undefined ? !r.system || r.schema === 'pg_catalog' : r.schema === ref.schema));
      if (cands.some((r) => r.oid !== rel.oid && this.treat(r).kind !== 'none')) {
        reaches = true;
        break;
      }
    }
    this.reaching.set(rel.oid, reaches);
    return reaches;
  }
}

/** Every RangeVar anywhere under `tree`, wrapped or not (no scoping: an over-approximation). */
export function allRangeVars(tree: unknown): { rv: JsonObject }[] {
  const out: { rv: JsonObject }[] = [];
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
      continue;
    }
    if (!isObject(v)) continue;
    const wrapped = obj(v.RangeVar);
    if (wrapped !== undefined && typeof wrapped.relname === 'string') {
      out.push({ rv: wrapped });
      continue;
    }
    if (typeof v.relname === 'string' && 'relpersistence' in v) {
      out.push({ rv: v });
      continue;
    }
    for (const k in v) stack.push(v[k]);
  }
  return out;
}

/** The names of every RangeVar of a parse tree (see allRangeVars). */
export function rangeVarsOf(tree: unknown): { schema?: string; name: string }[] {
  return allRangeVars(tree).map(({ rv }) => ({ ...(typeof rv.schemaname === 'string' ? { schema: rv.schemaname } : {}), name: String(rv.relname) }));
}
