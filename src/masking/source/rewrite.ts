// Masking at the source: rewrites a masked reader's statement text so that PostgreSQL never computes
// on a raw masked value. Every reference to a relation that needs treatment (relations.ts) is
// replaced, in the text, by a subquery over the same name whose masked columns are computed as their
// masked values; views that read masked data are replaced by their rewritten definition. Predicates,
// joins, grouping, ordering, functions, error texts and server state then only see masked values.
//
// The parse tree (libpg-query) finds the references; the edits are spliced into the original text,
// so everything else (formatting, literals, comments) reaches the server as the client wrote it.
// The result is checked by parsing it again: every relation reference that needs treatment must be
// one the rewrite generated, else the statement is refused (fail closed).
//
// What the text cannot show is refused rather than rewritten: writes whose WHERE/RETURNING/SET would
// compute on the target's raw masked columns, DDL naming a masked relation (a view, index, rule,
// constraint or copy of it would compute on raw values later), MERGE into a masked relation, and a
// name that several relations with different masking could stand for.
import { flag, isObject, list, node, obj, rangeVar, str, stringNode, type JsonObject, type NodeTag } from '../../sql/ast.js';
import { parseTree } from '../../sql/parser.js';
import { sanitizeParserMessage } from '../../sql/parser-message.js';
import type { Relation } from './catalog-snapshot.js';
import { RelationTreatments, allRangeVars, computesFor, itemsFor, refusedRelation, type ColumnUse, type MaskedColumn, type Treatment } from './relations.js';
import {
  Offsets, closingParen, dottedNameEnd, isPunct, isWord, qualifiedName, quoteIdent, tokenAt, tokensOf, type Token,
} from './text.js';

export interface Refusal {
  code: string;
  message: string;
}

/** A replaced span of the original text, in string indexes of the original and of the result. */
export interface TextEdit {
  from: number;
  to: number;
  text: string;
  /** The replacement carries text of the statement that may hold literals (a TABLESAMPLE clause): not replayable by shape. */
  copied?: boolean;
}

export interface RewriteResult {
  sql: string;
  edits: TextEdit[];
  /** Relations replaced, as schema.name. */
  relations: string[];
  /** Columns computed at the source, as schema.table.column:strategy (names only). */
  columns: string[];
}

export type RewriteOutcome =
  | { kind: 'unchanged' }
  | ({ kind: 'rewritten' } & RewriteResult)
  | ({ kind: 'refused' } & Refusal)
  | { kind: 'unknown'; names: string[] };

/** A further check of each statement tree (functions and operators the rewrite cannot see into). */
export type TreeCheck = (stmt: unknown) => Refusal | undefined;

export interface RewriteOptions {
  /** Relations the catalog does not know are left alone (the snapshot is newer than the statement). */
  allowUnknown?: boolean;
  /**
   * false: every masked column the statement names is computed at the source, even one it only
   * returns (a named prepared statement, which SQL can run again into a table; a session whose
   * client_encoding is not UTF-8, where converting a raw value could fail with an error quoting it).
   */
  plainOutputs?: boolean;
}

const PRIVILEGE = '42501';

class RewriteRefused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.message);
  }
}

/** Utility statements that may name a masked relation: they read nothing a masked reader sees. */
const HARMLESS_UTILITY = new Set<NodeTag>([
  'TransactionStmt', 'VariableSetStmt', 'VariableShowStmt', 'DiscardStmt', 'ListenStmt', 'UnlistenStmt', 'NotifyStmt',
  'FetchStmt', 'ClosePortalStmt', 'DeallocateStmt', 'CheckPointStmt', 'LockStmt', 'VacuumStmt', 'TruncateStmt', 'DropStmt',
  'ConstraintsSetStmt', 'LoadStmt',
]);

interface Scope {
  names: ReadonlySet<string>;
  up?: Scope;
}

function inScope(scope: Scope | undefined, name: string): boolean {
  for (let s = scope; s !== undefined; s = s.up) if (s.names.has(name)) return true;
  return false;
}

interface RvRef {
  catalogname?: string;
  schemaname?: string;
  relname: string;
  alias?: string;
  inh: boolean;
  location: number;
}

function rvRef(rv: JsonObject): RvRef {
  const alias = str(obj(rv.alias)?.aliasname);
  return {
    ...(typeof rv.catalogname === 'string' ? { catalogname: rv.catalogname } : {}),
    ...(typeof rv.schemaname === 'string' ? { schemaname: rv.schemaname } : {}),
    relname: str(rv.relname) ?? '',
    ...(alias !== undefined ? { alias } : {}),
    inh: flag(rv.inh),
    location: typeof rv.location === 'number' ? rv.location : -1,
  };
}

/** An edit under construction: [from, to) of the original, replaced by `text`; `raw` are offsets inside `text` of names left raw on purpose. */
interface Edit extends TextEdit {
  raw: number[];
}

/** Rewrites one statement text (all its statements) against one catalog snapshot and policy. */
export class StatementRewrite {
  private readonly offsets: Offsets;
  private readonly tokens: Token[];
  private readonly edits: Edit[] = [];
  /** Original string indexes of references left as written on purpose (CTE names, write targets, harmless utility). */
  private readonly keptRaw: number[] = [];
  private readonly unknown = new Set<string>();
  private readonly relations = new Set<string>();
  private readonly columns = new Set<string>();
  /** Schema-qualified column references (schema.table.column): fixed up when their table lost its schema to an alias. */
  private readonly qualifiedColumns: { location: number; fields: string[] }[] = [];
  /** Rewritten references without an alias: the subquery is named after the relation alone. */
  private readonly unaliased: { schema?: string; name: string }[] = [];
  /** The rewritten text run() built (and verified), for expansion(). */
  private built?: { sql: string; raw: number[] };
  /** Column names the text computes on or returns as they are (see columnUse); other masked columns become typed NULLs. */
  private use: ColumnUse = { computed: 'all', plain: 'all' };

  constructor(
    private readonly sql: string,
    private readonly treatments: RelationTreatments,
    private readonly rewriter: SourceRewriter,
    private readonly check: TreeCheck | undefined,
    private readonly opts: RewriteOptions,
    private readonly depth: number,
  ) {
    this.offsets = new Offsets(sql);
    this.tokens = tokensOf(sql);
  }

  run(): RewriteOutcome {
    const parsed = parseTree(this.sql);
    if (!parsed.ok) {
      return { kind: 'refused', code: '42601', message: `phigate: cannot parse this statement, so it was not run: ${sanitizeParserMessage(parsed.message)}` };
    }
    const isFunction = (name: string): boolean => this.treatments.isFunctionName(name);
    // Only the client's own statement returns rows to the client: a view's definition feeds a
    // query, and a named prepared statement can be run again from SQL (CREATE TABLE AS EXECUTE).
    this.use = this.depth === 0 && this.opts.plainOutputs !== false
      ? columnUse(parsed.value, isFunction)
      : { computed: referencedColumns(parsed.value, new Set(), isFunction).columns, plain: new Set() };
    try {
      for (const raw of list(obj(parsed.value)?.stmts)) this.topLevel(obj(raw)?.stmt);
    } catch (err) {
      if (err instanceof RewriteRefused) return { kind: 'refused', ...err.refusal };
      if (err instanceof RangeError) return { kind: 'refused', code: '54001', message: 'phigate: this statement is too complex to rewrite for masking, so it was not run' };
      throw err;
    }
    if (this.unknown.size > 0 && !this.opts.allowUnknown) return { kind: 'unknown', names: [...this.unknown] };
    if (this.edits.length === 0) return { kind: 'unchanged' };
    this.fixQualifiedColumns();
    const built = this.build();
    this.built = built;
    const problem = this.rewriter.verify(built.sql, built.raw);
    if (problem !== undefined) return { kind: 'refused', ...problem };
    return { kind: 'rewritten', sql: built.sql, edits: built.edits, relations: [...this.relations], columns: [...this.columns] };
  }

  /** The rewritten text of a view's definition, with the offsets of names it leaves raw. */
  expansion(): { sql: string; raw: number[] } | Refusal {
    const outcome = this.run();
    if (outcome.kind === 'refused') return outcome;
    if (outcome.kind === 'unknown') return { code: PRIVILEGE, message: `phigate: a view reads relations phigate does not know (${outcome.names.join(', ')})` };
    if (outcome.kind === 'unchanged' || this.built === undefined) return { sql: this.sql, raw: this.keptRaw.slice() };
    return { sql: this.built.sql, raw: this.built.raw };
  }

  private refuse(message: string, code = PRIVILEGE): never {
    throw new RewriteRefused({ code, message: `phigate: ${message}` });
  }

  // -------------------------------------------------------------------------------------------
  // Statements

  private topLevel(stmt: unknown): void {
    const n = node(stmt);
    if (n === undefined) return;
    const [type, body] = n;
    const problem = this.check?.(stmt);
    if (problem !== undefined) throw new RewriteRefused(problem);
    switch (type) {
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
      case 'CallStmt':
      case 'ExecuteStmt':
        this.visit(stmt, undefined);
        return;
      case 'CopyStmt':
        this.copy(body);
        return;
      case 'ExplainStmt':
      case 'DeclareCursorStmt':
      case 'PrepareStmt':
        this.topLevel(body.query);
        return;
      default:
        if (HARMLESS_UTILITY.has(type)) {
          this.keepRawRelations(body);
          return;
        }
        this.utility(type, body);
    }
  }

  /** DDL and other utility statements: refused when they name a relation that needs treatment. */
  private utility(type: string, body: JsonObject): void {
    for (const { rv } of allRangeVars(body)) {
      const ref = rvRef(rv);
      // Views that read nothing masked are expanded when read, but DDL over them computes on nothing masked.
      const needing = this.candidates(ref).filter((r) => {
        const t = this.treatments.treat(r);
        return t.kind !== 'none' && !(t.kind === 'expand' && !this.treatments.reachesMasked(r));
      });
      if (needing.length > 0) {
        const what = type.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
        this.refuse(`${what} naming ${displayName(needing[0]!)} is not allowed for readers who see masked values: it would compute on raw values that phigate cannot rewrite`);
      }
    }
  }

  private keepRawRelations(body: JsonObject): void {
    for (const { rv } of allRangeVars(body)) if (typeof rv.location === 'number' && rv.location >= 0) this.keptRaw.push(this.offsets.index(rv.location));
  }

  private copy(body: JsonObject): void {
    if (body.query !== undefined) {
      this.topLevel(body.query);
      return;
    }
    const rv = rangeVar(body.relation);
    if (rv === undefined) return;
    if (flag(body.is_from)) {
      // COPY FROM writes rows the client sends; it reads no stored value.
      this.keptRaw.push(this.offsets.index(rvRef(rv).location));
      return;
    }
    const columns = list(body.attlist).map((a) => stringNode(a) ?? '');
    this.readRef(rvRef(rv), undefined, { copyColumns: columns });
  }

  // -------------------------------------------------------------------------------------------
  // The tree walk: reads are rewritten, write targets checked, CTE names scoped.

  private visit(v: unknown, scope: Scope | undefined): void {
    if (Array.isArray(v)) {
      for (const x of v) this.visit(x, scope);
      return;
    }
    if (!isObject(v)) return;
    const n = node(v);
    if (n === undefined) {
      const rv = rangeVar(v);
      if (rv !== undefined && 'relpersistence' in rv) {
        this.readRef(rvRef(rv), scope, {});
        return;
      }
      for (const k in v) this.visit(v[k], scope);
      return;
    }
    const [type, body] = n;
    switch (type) {
      case 'RangeVar':
        this.readRef(rvRef(body), scope, {});
        return;
      case 'RangeTableSample': {
        const rv = rangeVar(body.relation);
        if (rv !== undefined) this.readRef(rvRef(rv), scope, { sample: body });
        else this.visit(body.relation, scope);
        this.visit(body.args, scope);
        this.visit(body.repeatable, scope);
        return;
      }
      case 'SelectStmt': {
        const inner = this.withScope(body.withClause, scope);
        const tableForm = isTableForm(body);
        for (const k in body) {
          if (k === 'withClause' || k === 'intoClause') continue;
          if (k === 'fromClause' && tableForm !== undefined) {
            this.readRef(rvRef(tableForm), inner, { tableForm: true });
            continue;
          }
          this.visit(body[k], inner);
        }
        return;
      }
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt': {
        const inner = this.withScope(body.withClause, scope);
        const target = rangeVar(body.relation);
        if (target !== undefined) this.writeTarget(type, rvRef(target), body);
        for (const k in body) {
          if (k === 'withClause' || k === 'relation') continue;
          this.visit(body[k], inner);
        }
        return;
      }
      case 'ColumnRef': {
        const fields = list(body.fields).map((f) => stringNode(f));
        if (fields.length >= 3 && fields.every((f) => f !== undefined) && typeof body.location === 'number') {
          this.qualifiedColumns.push({ location: body.location, fields: fields as string[] });
        }
        return;
      }
      case 'IntoClause':
        return;
      case 'LockingClause':
        // FOR UPDATE OF names FROM items (aliases), not relations.
        for (const { rv } of allRangeVars(body)) if (typeof rv.location === 'number') this.keptRaw.push(this.offsets.index(rv.location));
        return;
      case 'CreateTableAsStmt':
      case 'ViewStmt':
        // Inside EXPLAIN or elsewhere: as at the top.
        this.utility(type, body);
        return;
      default:
        for (const k in body) this.visit(body[k], scope);
    }
  }

  /** CTE names visible to a statement with this WITH clause; its CTE bodies are walked here. */
  private withScope(withClause: unknown, scope: Scope | undefined): Scope | undefined {
    const w = obj(node(withClause)?.[1] ?? withClause);
    if (w === undefined) return scope;
    const ctes = list(w.ctes).map((c) => obj(node(c)?.[1])).filter((c): c is JsonObject => c !== undefined);
    if (ctes.length === 0) return scope;
    const recursive = flag(w.recursive);
    const names: string[] = [];
    ctes.forEach((cte) => {
      const name = str(cte.ctename) ?? '';
      // A CTE body sees the earlier CTEs (and itself, with RECURSIVE). Seeing fewer names than
      // PostgreSQL does only ever rewrites a CTE reference as if it were a table: safe.
      const visible = recursive ? [...names, name] : [...names];
      this.visit(cte.ctequery, visible.length > 0 ? { names: new Set(visible), up: scope } : scope);
      names.push(name);
    });
    return { names: new Set(names), up: scope };
  }

  // -------------------------------------------------------------------------------------------
  // Relations

  private candidates(ref: RvRef): Relation[] {
    const cat = this.treatments.catalog;
    const all = cat.relationsNamed(ref.relname);
    if (ref.schemaname === undefined) return [...all];
    if (ref.schemaname === 'pg_temp') return all.filter((r) => r.schema.startsWith('pg_temp_'));
    return all.filter((r) => r.schema === ref.schemaname);
  }

  /** One treatment for a name: the same for every relation it may stand for, or refused as ambiguous. */
  private treatmentOf(ref: RvRef): { treatment: Treatment; rel?: Relation } {
    const cands = this.candidates(ref);
    if (cands.length === 0 && ref.schemaname !== undefined) {
      // Not in the snapshot but in a system schema (pg_toast, a newer catalog relation): its own treatment.
      const sys = this.treatments.system(ref.schemaname, ref.relname, true);
      if (sys?.kind === 'refuse') this.refuse(refusedRelation(ref.schemaname, ref.relname, sys.reason));
    }
    if (cands.length === 0) {
      this.unknown.add(ref.schemaname === undefined ? ref.relname : `${ref.schemaname}.${ref.relname}`);
      return { treatment: { kind: 'none' } };
    }
    const needing = cands.map((rel) => ({ rel, treatment: this.treatments.treat(rel) })).filter((c) => c.treatment.kind !== 'none');
    if (needing.length === 0) return { treatment: { kind: 'none' } };
    const refused = needing.find((c) => c.treatment.kind === 'refuse');
    if (refused !== undefined) return refused;
    const first = needing[0]!;
    // Several candidates that need treatment: only identical wrappers (same columns, same masks)
    // may share one rewrite whose inner name PostgreSQL then resolves itself.
    for (const c of needing.slice(1)) {
      const a = first.treatment;
      const b = c.treatment;
      const same = a.kind === 'wrap' && b.kind === 'wrap' && !a.expand && !b.expand && a.key === b.key;
      if (!same) {
        this.refuse(`"${ref.relname}" may stand for ${needing.map((x) => displayName(x.rel)).join(' or ')}, which are masked differently; write the schema-qualified name`);
      }
    }
    return first;
  }

  private readRef(ref: RvRef, scope: Scope | undefined, ctx: { tableForm?: boolean; sample?: JsonObject; copyColumns?: string[] }): void {
    if (ref.location < 0) this.refuse('cannot locate a relation in this statement to mask it, so it was not run');
    const start = this.offsets.index(ref.location);
    if (ref.schemaname === undefined && ref.catalogname === undefined && inScope(scope, ref.relname)) {
      this.keptRaw.push(start);
      return;
    }
    const { treatment, rel } = this.treatmentOf(ref);
    if (treatment.kind === 'none') return;
    if (treatment.kind === 'refuse') this.refuse(treatment.message);
    if (treatment.kind === 'wrap' && !treatment.expand && !computesFor(treatment.items, this.use) && ctx.copyColumns === undefined) {
      // Nothing to compute: its masked columns are only returned as they are (output masking masks
      // them by their rule) or not read at all. The relation is read as the statement names it.
      this.keptRaw.push(start);
      return;
    }
    this.relations.add(displayName(rel!));
    if (treatment.kind === 'wrap') for (const m of treatment.masked) this.columns.add(columnTag(rel!, m));

    const sql = this.sql;
    const toks = this.tokens;
    const ti = tokenAt(toks, start);
    const nameEnd = ti < 0 ? -1 : dottedNameEnd(sql, toks, ti);
    if (nameEnd < 0) this.refuse('cannot locate a relation in this statement to mask it, so it was not run');
    let first = ti;
    let last = nameEnd; // exclusive token index
    let only = '';
    if (!ref.inh) {
      if (isWord(sql, toks[ti - 1], 'only')) first = ti - 1;
      else if (isPunct(sql, toks[ti - 1], '(') && isWord(sql, toks[ti - 2], 'only') && isPunct(sql, toks[nameEnd], ')')) {
        first = ti - 2;
        last = nameEnd + 1;
      } else this.refuse('cannot tell how this statement names a relation (ONLY), so it was not run');
      only = 'ONLY ';
    } else if (isPunct(sql, toks[nameEnd], '*')) {
      last = nameEnd + 1;
    }
    // The inner reference carries the outer alias: once PostgreSQL pulls the subquery up, plans
    // (EXPLAIN) name the relation as the client did.
    const innerName = `${only}${qualifiedName([ref.catalogname, ref.schemaname, ref.relname])} AS ${quoteIdent(ref.alias ?? ref.relname)}`;
    const alias = ref.alias === undefined ? ` AS ${quoteIdent(ref.relname)}` : '';
    if (ref.alias === undefined) this.unaliased.push({ ...(ref.schemaname !== undefined ? { schema: ref.schemaname } : {}), name: ref.relname });

    let from = toks[first]!.start;
    let to = toks[last - 1]!.end;
    let suffix = '';
    if (ctx.sample !== undefined) {
      // TABLESAMPLE applies to a table, not to a subquery: it moves inside, the alias stays outside.
      // The node's location is its method's name, right after the TABLESAMPLE keyword.
      const method = tokenAt(toks, this.offsets.index(typeof ctx.sample.location === 'number' ? ctx.sample.location : -1));
      const sampleAt = isWord(sql, toks[method - 1], 'tablesample') ? method - 1 : -1;
      const open = sampleAt < 0 ? -1 : toks.findIndex((t, i) => i > sampleAt && isPunct(sql, t, '('));
      let close = open < 0 ? -1 : closingParen(sql, toks, open);
      if (close >= 0 && isWord(sql, toks[close + 1], 'repeatable')) close = closingParen(sql, toks, close + 2);
      if (sampleAt < 0 || close < 0) this.refuse('cannot tell how this statement samples a masked table, so it was not run');
      suffix = ` ${sql.slice(toks[sampleAt]!.start, toks[close]!.end)}`;
      const aliasText = sql.slice(to, toks[sampleAt]!.start).trim();
      to = toks[close]!.end;
      const body = this.subquery(treatment, rel!, innerName, suffix);
      this.edits.push({ from, to, text: `${body.text} ${aliasText || alias.trim()}`, raw: body.raw, copied: true });
      return;
    }
    const body = this.subquery(treatment, rel!, innerName, suffix);
    if (ctx.tableForm) {
      if (!isWord(sql, toks[first - 1], 'table')) this.refuse('cannot tell how this statement names a relation (TABLE), so it was not run');
      from = toks[first - 1]!.start;
      const head = 'SELECT * FROM ';
      this.edits.push({ from, to, text: `${head}${body.text}${alias}`, raw: body.raw.map((r) => r + head.length) });
      return;
    }
    if (ctx.copyColumns !== undefined) {
      if (isPunct(sql, toks[last], '(')) {
        const close = closingParen(sql, toks, last);
        if (close < 0) this.refuse('cannot tell which columns this COPY reads, so it was not run');
        to = toks[close]!.end;
      }
      const cols = ctx.copyColumns.length > 0 ? ctx.copyColumns.map(quoteIdent).join(', ') : '*';
      const head = `(SELECT ${cols} FROM `;
      this.edits.push({ from, to, text: `${head}${body.text}${alias})`, raw: body.raw.map((r) => r + head.length) });
      return;
    }
    this.edits.push({ from, to, text: `${body.text}${alias}`, raw: body.raw });
  }

  /** The subquery standing for a relation, and the offsets inside it of the names it reads raw. */
  private subquery(t: Treatment, rel: Relation, innerName: string, suffix: string): { text: string; raw: number[] } {
    if (t.kind === 'expand' || (t.kind === 'wrap' && t.expand)) {
      const ex = this.rewriter.expand(rel, this.depth);
      if ('code' in ex) throw new RewriteRefused(ex);
      if (suffix !== '') this.refuse(`TABLESAMPLE of the view ${displayName(rel)} is not supported for readers who see masked values`);
      const viewText = `(${ex.sql})`;
      if (t.kind === 'expand') return { text: viewText, raw: ex.raw.map((r) => r + 1) };
      const head = `(SELECT ${itemsFor(t.items, this.use)} FROM `;
      return { text: `${head}${viewText} AS ${quoteIdent(rel.name)})`, raw: ex.raw.map((r) => r + head.length + 1) };
    }
    if (t.kind !== 'wrap') this.refuse('internal error: no subquery for this relation');
    const head = `(SELECT ${itemsFor(t.items, this.use)} FROM `;
    return { text: `${head}${innerName}${suffix})`, raw: [head.length + (innerName.startsWith('ONLY ') ? 5 : 0)] };
  }

  /**
   * A write to a relation with masked columns: its own rows are not replaced (they are what is
   * written), so its masked columns may not be read by WHERE, RETURNING, SET values or ON CONFLICT,
   * where the database would compare or return raw values.
   */
  private writeTarget(type: string, ref: RvRef, body: JsonObject): void {
    if (ref.location >= 0) this.keptRaw.push(this.offsets.index(ref.location));
    const cands = this.candidates(ref);
    const masked = new Set<string>();
    let rel: Relation | undefined;
    for (const c of cands) {
      for (const m of this.treatments.maskedColumnsOf(c)) masked.add(m);
      const t = this.treatments.treat(c);
      if (t.kind === 'refuse') this.refuse(t.message);
      if (masked.size > 0) rel ??= c;
    }
    if (masked.size === 0 || rel === undefined) return;
    const name = displayName(rel);
    if (type === 'MergeStmt') this.refuse(`MERGE into ${name} is not allowed for readers who see masked values: its conditions would compare raw values; use UPDATE, INSERT or DELETE`);
    // RETURNING (PostgreSQL 18) may also name the target's rows as OLD/NEW or aliases of those.
    const returning = obj(node(body.returningClause)?.[1] ?? body.returningClause);
    const qualifiers = new Set([ref.alias ?? ref.relname, 'old', 'new']);
    for (const o of list(returning?.options)) {
      const name = str(obj(node(o)?.[1])?.value);
      if (name !== undefined) qualifiers.add(name);
    }
    const clauses: [string, unknown][] = [['WHERE', body.whereClause], ['RETURNING', returning?.exprs ?? body.returningList]];
    if (type === 'UpdateStmt') clauses.push(['SET', list(body.targetList).map((t) => obj(node(t)?.[1])?.val)]);
    const conflict = obj(node(body.onConflictClause)?.[1] ?? body.onConflictClause);
    if (conflict !== undefined) {
      clauses.push(['ON CONFLICT', conflict.whereClause]);
      clauses.push(['ON CONFLICT', list(conflict.targetList).map((t) => obj(node(t)?.[1])?.val)]);
    }
    for (const [clause, tree] of clauses) {
      const hit = maskedReference(tree, masked, qualifiers, (n) => this.treatments.isFunctionName(n));
      if (hit !== undefined) {
        this.refuse(`${clause} of this ${type.replace(/Stmt$/, '').toUpperCase()} on ${name} reads ${hit === '*' ? 'its whole rows' : `its masked column ${hit}`}: you see masked values, and the database would use raw ones; refer to unmasked columns only`);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Output

  /** `schema.table.column` references to a table whose subquery is now named by the table alone. */
  private fixQualifiedColumns(): void {
    for (const c of this.qualifiedColumns) {
      const n = c.fields.length;
      const schema = c.fields[n - 3]!;
      const table = c.fields[n - 2]!;
      if (!this.unaliased.some((u) => u.schema === schema && u.name === table)) continue;
      const start = this.offsets.index(c.location);
      const ti = tokenAt(this.tokens, start);
      // Tokens: [catalog .] schema . table . column → drop everything before `table`.
      const drop = 2 * (n - 2);
      const tableTok = this.tokens[ti + drop];
      if (ti < 0 || tableTok === undefined) this.refuse('cannot locate a qualified column reference to rewrite it, so the statement was not run');
      this.edits.push({ from: start, to: tableTok.start, text: '', raw: [] });
    }
  }

  /** Applies the edits; `raw` lists every result offset of a relation reference left raw on purpose. */
  private build(): { sql: string; edits: TextEdit[]; raw: number[] } {
    const edits = [...this.edits].sort((a, b) => a.from - b.from);
    for (let i = 1; i < edits.length; i++) {
      if (edits[i]!.from < edits[i - 1]!.to) this.refuse('internal error: overlapping rewrites of one statement');
    }
    const kept = [...this.keptRaw].sort((a, b) => a - b);
    let out = '';
    let at = 0;
    let k = 0;
    const raw: number[] = [];
    const result: TextEdit[] = [];
    for (const e of edits) {
      while (k < kept.length && kept[k]! < e.from) raw.push(kept[k++]! - at + out.length);
      while (k < kept.length && kept[k]! < e.to) k++;
      out += this.sql.slice(at, e.from);
      result.push(e.copied ? { from: e.from, to: e.to, text: e.text, copied: true } : { from: e.from, to: e.to, text: e.text });
      for (const r of e.raw) raw.push(out.length + r);
      out += e.text;
      at = e.to;
    }
    while (k < kept.length) raw.push(kept[k++]! - at + out.length);
    out += this.sql.slice(at);
    return { sql: out, edits: result, raw };
  }
}

/** Rewrites statements for one catalog snapshot and policy; verifies its own output. */
export class SourceRewriter {
  private readonly expansions = new Map<number, { sql: string; raw: number[] } | Refusal>();

  constructor(
    readonly treatments: RelationTreatments,
    private readonly check?: TreeCheck,
  ) {}

  rewrite(sql: string, opts: RewriteOptions = {}): RewriteOutcome {
    return new StatementRewrite(sql, this.treatments, this, this.check, opts, 0).run();
  }

  /** A view's definition, rewritten, for views that read masked data. */
  expand(rel: Relation, depth: number): { sql: string; raw: number[] } | Refusal {
    const cached = this.expansions.get(rel.oid);
    if (cached !== undefined) return cached;
    let result: { sql: string; raw: number[] } | Refusal;
    if (depth >= 16 || rel.viewSql === undefined) {
      result = { code: PRIVILEGE, message: `phigate: the view ${displayName(rel)} is nested too deeply to rewrite for masking` };
    } else {
      result = new StatementRewrite(rel.viewSql, this.treatments, this, this.check, { allowUnknown: true }, depth + 1).expansion();
    }
    this.expansions.set(rel.oid, result);
    return result;
  }

  /**
   * Parses the rewritten text and checks that every relation reference needing treatment is one
   * the rewrite left raw on purpose (inside its own subqueries, CTE names, write targets).
   */
  verify(sql: string, raw: readonly number[]): Refusal | undefined {
    const parsed = parseTree(sql);
    const failed: Refusal = { code: 'XX000', message: 'phigate: could not verify its masking rewrite of this statement, so it was not run (please report this)' };
    if (!parsed.ok) return failed;
    const offsets = new Offsets(sql);
    const allowed = new Set(raw);
    for (const { rv } of allRangeVars(parsed.value)) {
      const location = typeof rv.location === 'number' ? offsets.index(rv.location) : -1;
      if (allowed.has(location)) continue;
      const ref = rvRef(rv);
      const cands = this.treatments.catalog.relationsNamed(ref.relname)
        .filter((r) => ref.schemaname === undefined || r.schema === ref.schemaname || (ref.schemaname === 'pg_temp' && r.schema.startsWith('pg_temp_')));
      // A name no relation has (yet) needs no treatment; unknown reads were settled before this.
      if (cands.some((r) => this.treatments.treat(r).kind !== 'none')) return failed;
    }
    return undefined;
  }
}

function displayName(rel: Relation): string {
  return `${rel.schema}.${rel.name}`;
}

function columnTag(rel: Relation, m: MaskedColumn): string {
  return `${rel.schema}.${rel.name}.${m.column}:${m.how === 'hidden' ? 'hidden' : (m.strategy ?? 'redact')}`;
}

/**
 * Plain output columns: the target list of a top-level SELECT that only returns rows (no DISTINCT,
 * GROUP BY, HAVING, ORDER BY, window, set operation or INTO: those would order, group or compare
 * its values, or refer to them by position or output name), written as bare column references.
 * Returns their names ('all' for `*`) and the entries to leave out of the computed walk.
 */
function plainOutputs(tree: unknown, isFunction: (name: string) => boolean): { names: ReadonlySet<string> | 'all'; entries: Set<unknown> } {
  const names = new Set<string>();
  const entries = new Set<unknown>();
  let star = false;
  for (const raw of list(obj(tree)?.stmts)) {
    const sel = obj(obj(obj(raw)?.stmt)?.SelectStmt);
    if (sel === undefined) continue;
    if ((str(sel.op) ?? 'SETOP_NONE') !== 'SETOP_NONE' || sel.intoClause !== undefined || list(sel.sortClause).length > 0 || list(sel.groupClause).length > 0 ||
      list(sel.distinctClause).length > 0 || sel.havingClause !== undefined || list(sel.windowClause).length > 0 || sel.withClause !== undefined) continue;
    for (const t of list(sel.targetList)) {
      const target = obj(obj(t)?.ResTarget);
      const ref = obj(obj(target?.val)?.ColumnRef);
      if (ref === undefined) continue;
      const fields = list(ref.fields);
      const last = fields[fields.length - 1];
      if (obj(last)?.A_Star !== undefined) {
        // `*` or `t.*` straight into the result: every column of what it expands to is returned as it is.
        if (fields.slice(0, -1).every((f) => stringNode(f) !== undefined)) {
          star = true;
          entries.add(t);
        }
        continue;
      }
      const strs = fields.map((f) => stringNode(f));
      if (strs.every((x) => x !== undefined) && strs.length >= 2) {
        // A qualified reference (t.col) is a column, unless it names a function: `p.to_jsonb` is
        // to_jsonb(p), a whole row computed on (left to the computed walk).
        if (isFunction(strs[strs.length - 1]!)) continue;
        names.add(strs[strs.length - 1]!);
        entries.add(t);
      } else if (strs.length === 1 && strs[0] !== undefined) {
        names.add(strs[0]);
        entries.add(t);
      }
    }
  }
  return { names: star ? 'all' : names, entries };
}

/**
 * How the statement uses columns, by name whatever the qualifier (an over-approximation): those it
 * computes on (anywhere but a plain output column; 'all' when it reads whole rows: `t.*` or `*`
 * anywhere else, a bare alias, NATURAL joins, COPY of a table without a column list) and those it
 * only returns as they are. A masked column in neither reads as NULL, which shows less, never more.
 */
export function columnUse(tree: unknown, isFunction: (name: string) => boolean): ColumnUse {
  const plain = plainOutputs(tree, isFunction);
  const refs = referencedColumns(tree, plain.entries, isFunction);
  // A bare name among the outputs that names a relation is a whole-row reference: computed.
  if (refs.columns !== 'all' && plain.names !== 'all' && [...plain.names].some((n) => refs.relations.has(n))) return { computed: 'all', plain: 'all' };
  return { computed: refs.columns, plain: plain.names };
}

/**
 * Column names referenced anywhere but in `skip` ('all' for whole rows: `*`, `t.*`, a bare relation
 * name or alias, attribute notation, NATURAL joins, alias column lists, COPY of a table without a
 * column list), and the names and aliases of the relations in FROM.
 */
function referencedColumns(tree: unknown, skip: ReadonlySet<unknown>, isFunction: (name: string) => boolean): { columns: ReadonlySet<string> | 'all'; relations: ReadonlySet<string> } {
  const names = new Set<string>();
  const singles = new Set<string>();
  const relations = new Set<string>();
  const all = { columns: 'all' as const, relations };
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const x of v) if (!skip.has(x)) stack.push(x);
      continue;
    }
    if (!isObject(v)) continue;
    const ref = obj(v.ColumnRef);
    if (ref !== undefined) {
      const fields = list(ref.fields);
      if (fields.some((f) => obj(f)?.A_Star !== undefined)) return all;
      const strs = fields.map((f) => stringNode(f)).filter((x): x is string => x !== undefined);
      // Attribute notation: `p.to_jsonb` is to_jsonb(p), a whole row.
      if (strs.length >= 2 && isFunction(strs[strs.length - 1]!)) return all;
      for (const x of strs) names.add(x);
      if (strs.length === 1) singles.add(strs[0]!);
      continue;
    }
    const join = obj(v.JoinExpr);
    if (join !== undefined && flag(join.isNatural)) return all;
    const copy = obj(v.CopyStmt);
    if (copy !== undefined && copy.query === undefined && list(copy.attlist).length === 0) return all;
    for (const x of [...list(copy?.attlist), ...list(join?.usingClause)].map((n) => stringNode(n))) if (x !== undefined) names.add(x);
    // A RangeVar's body (the wrapper's is visited below): its name; any alias, RangeVar's or not.
    if (typeof v.relname === 'string' && 'relpersistence' in v) relations.add(v.relname);
    const alias = obj(v.alias);
    if (typeof alias?.aliasname === 'string') relations.add(alias.aliasname);
    // An alias with a column list (`FROM patients t(i, s)`) renames columns: names no longer tell.
    if (list(alias?.colnames).length > 0) return all;
    for (const k in v) stack.push(v[k]);
  }
  for (const s of singles) if (relations.has(s)) return all;
  return { columns: names, relations };
}

/** `TABLE name`: a SELECT of everything from one relation that the text did not write as SELECT. */
function isTableForm(sel: JsonObject): JsonObject | undefined {
  const from = list(sel.fromClause);
  const targets = list(sel.targetList);
  if (from.length !== 1 || targets.length !== 1) return undefined;
  const rv = rangeVar(from[0]);
  const target = obj(node(targets[0])?.[1]);
  const ref = obj(node(target?.val)?.[1]);
  if (rv === undefined || ref === undefined || target?.location !== -1) return undefined;
  return ref.location === -1 || ref.location === undefined ? rv : undefined;
}

/**
 * The first masked column of the write target that an expression reads (`*` for whole rows):
 * unqualified names (they may mean the target), names qualified by the target's alias, `t.*`, `*`,
 * and a bare alias (a whole-row reference). Other relations' columns of the same name count too:
 * refusing them is the safe side of a name the walk cannot resolve.
 */
function maskedReference(tree: unknown, masked: ReadonlySet<string>, qualifiers: ReadonlySet<string>, isFunction: (name: string) => boolean): string | undefined {
  // Depth first in text order, so the message names the first offending reference.
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
      continue;
    }
    if (!isObject(v)) continue;
    const ref = obj(v.ColumnRef);
    if (ref !== undefined) {
      const fields = list(ref.fields);
      const lastIsStar = fields.length > 0 && obj(fields[fields.length - 1])?.A_Star !== undefined;
      const names = fields.map((f) => stringNode(f));
      if (lastIsStar) {
        if (fields.length === 1 || qualifiers.has(names[fields.length - 2] ?? '')) return '*';
        continue;
      }
      const col = names[names.length - 1];
      if (names.length === 1 && col !== undefined && qualifiers.has(col) && !masked.has(col)) return '*';
      // `t.to_jsonb` is to_jsonb(t): the whole row.
      if (names.length >= 2 && col !== undefined && !masked.has(col) && qualifiers.has(names[names.length - 2] ?? '') && isFunction(col)) return '*';
      if (col !== undefined && masked.has(col) && (names.length === 1 || qualifiers.has(names[names.length - 2] ?? ''))) return col;
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) stack.push(v[keys[i]!]);
  }
  return undefined;
}
