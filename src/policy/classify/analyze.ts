// Walks one statement's parse tree and collects what the policy engine matches on: relations, writes, functions, predicate columns, unrestricted reads.
//
// How "unrestricted" (and so Statement.withoutWhere) is decided, exactly:
//
// * A query block is one SELECT (one arm of a UNION/INTERSECT/EXCEPT, a subquery, a CTE body, ...) or the
//   target plus FROM/USING list of an UPDATE/DELETE. Its base tables are the relations named in its
//   FROM list (through JOINs and TABLESAMPLE); CTE references, subqueries and functions in FROM are not
//   base tables (their own blocks are judged instead).
// * A base table is restricted by the block's WHERE when the WHERE "mentions" it: an AND restricts if
//   any arm does, an OR only if every arm does, NOT if its argument does, `WHERE CURRENT OF` always
//   does, and any other expression does if it references a column unqualified, or qualified with the
//   table's alias (or name); an unqualified column could belong to any table of the block, so it
//   counts for all of them. Inside subqueries only qualified references count (correlation, as in
//   `WHERE EXISTS (SELECT 1 FROM visits v WHERE v.pid = p.id)`, which restricts p). So
//   `WHERE true`, `WHERE 1 = 1`, `WHERE $1`, `WHERE id = 1 OR true` and
//   `WHERE EXISTS (SELECT 1 FROM other)` do not restrict. Tautologies over columns (`WHERE id = id`,
//   `WHERE id > 0`) are not detected: this is a guard against accidents, masking is the defence.
// * Tables joined with an explicit condition (JOIN ... ON <columns>, USING, NATURAL) share restriction:
//   if one of them is restricted, so are the others. Comma joins and CROSS JOIN share nothing.
// * In a SELECT, a row cap also restricts: LIMIT n or FETCH FIRST n ROWS ONLY with a constant
//   n <= LIMIT_RESTRICTS_UP_TO. The cap does not count when the block aggregates (GROUP BY, HAVING,
//   window functions, aggregate calls), because `SELECT string_agg(ssn, ',') FROM patients LIMIT 1`
//   returns every row; nor with WITH TIES, LIMIT ALL/NULL or a non-constant count.
// * Restriction flows into what a block reads from: a FROM subquery, a set-operation arm or a CTE
//   reference counts as restricted when the enclosing block restricts it (its alias is mentioned by
//   the WHERE or joined to something that is, as for tables) or caps it (non-aggregating block with a
//   row cap, or itself restricted from outside). `SELECT * FROM (SELECT * FROM patients) x WHERE x.id = 1`
//   and `WITH x AS (SELECT * FROM patients) SELECT * FROM x LIMIT 5` are restricted. A SELECT CTE body
//   is excused only if every reference to it is restricted; data-modifying and recursive CTEs and CTEs
//   never referenced are judged on their own. Subqueries in WHERE or the select list are judged on
//   their own (`WHERE id IN (SELECT id FROM patients)` reads all of patients).
// * UPDATE/DELETE targets follow the WHERE rule (no LIMIT in PostgreSQL). A MERGE target is
//   unrestricted when its ON condition does not mention it, when it has WHEN NOT MATCHED BY SOURCE, or
//   when its source reads any table without restriction (a source table named directly is read whole).
// * COPY table TO reads the whole table; TRUNCATE empties whole tables. INSERT and COPY FROM targets
//   only gain rows and are never unrestricted.
// * Query bodies that only define something (views, rules, triggers, policies, function bodies) and
//   plain EXPLAIN read nothing now and contribute no unrestricted tables (their relations still count
//   in `tables`).
import {
  flag, integerConstant, isObject, list, listItems, nameList, node, nodeOfType, obj, rangeVar, str, stringNode,
  type JsonObject, type NodeTag,
} from '../../sql/ast.js';
import type { PredicateColumn, TableRef } from './types.js';
import { tableKey } from '../../common/table-name.js';

/** Largest constant LIMIT that still counts as restricting a SELECT (see above). */
export const LIMIT_RESTRICTS_UP_TO = 1000;


export class RefSet {
  private readonly map = new Map<string, TableRef>();
  add(ref: TableRef): void {
    const key = tableKey(ref.schema, ref.name);
    if (!this.map.has(key)) this.map.set(key, ref);
  }
  get size(): number {
    return this.map.size;
  }
  values(): TableRef[] {
    return [...this.map.values()];
  }
}

export function refOf(rv: JsonObject): TableRef {
  const name = str(rv.relname) ?? '';
  const schema = str(rv.schemaname);
  return schema === undefined ? { name } : { schema, name };
}

/** Qualified name list (`a`, `s.a`, `db.s.a`) as a TableRef; the catalog part is dropped. */
export function refOfNames(names: string[]): TableRef | undefined {
  const name = names[names.length - 1];
  if (name === undefined) return undefined;
  const schema = names.length >= 2 ? names[names.length - 2] : undefined;
  return schema === undefined ? { name } : { schema, name };
}

interface Base {
  ref: TableRef;
  /** The name its columns are qualified with: the alias, or the relation name. */
  key: string;
}

interface Block {
  /** alias → relation, or null for a subquery / CTE / function (no table behind it). */
  aliases: Map<string, TableRef | null>;
  bases: Base[];
  derived: number;
  parent: Block | undefined;
  /** Whether the FROM item with this key is restricted (by WHERE, join links or a row cap). */
  passes: (key: string) => boolean;
}

/** A SELECT CTE whose unrestricted reads are held back until its references are known. */
interface CteInfo {
  excusable: boolean;
  candidates: TableRef[];
  references: number;
  unrestrictedReferences: number;
}

interface Ctx {
  /** CTEs visible here: an unqualified FROM reference to one of them is not a table. */
  ctes: ReadonlyMap<string, CteInfo>;
  /** An enclosing non-aggregating query restricts or caps the rows read from this query. */
  filtered: boolean;
  /** Inside a view/rule/trigger/policy/function body: relations count, writes and reads do not. */
  definition: boolean;
  /** Under WHERE / ON / GROUP BY / HAVING / ORDER BY: column references are predicate columns. */
  predicate: boolean;
  block: Block | undefined;
}

export const ROOT_CTX: Ctx = { ctes: new Map(), filtered: false, definition: false, predicate: false, block: undefined };

const AGGREGATES = new Set([
  'count', 'sum', 'avg', 'min', 'max', 'string_agg', 'array_agg', 'json_agg', 'jsonb_agg', 'json_agg_strict', 'jsonb_agg_strict',
  'json_object_agg', 'jsonb_object_agg', 'json_object_agg_strict', 'jsonb_object_agg_strict', 'json_object_agg_unique',
  'jsonb_object_agg_unique', 'json_object_agg_unique_strict', 'jsonb_object_agg_unique_strict', 'xmlagg', 'bool_and', 'bool_or',
  'every', 'bit_and', 'bit_or', 'bit_xor', 'stddev', 'stddev_pop', 'stddev_samp', 'variance', 'var_pop', 'var_samp', 'corr',
  'covar_pop', 'covar_samp', 'regr_avgx', 'regr_avgy', 'regr_count', 'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx',
  'regr_sxy', 'regr_syy', 'mode', 'percentile_cont', 'percentile_disc', 'rank', 'dense_rank', 'percent_rank', 'cume_dist',
  'range_agg', 'range_intersect_agg', 'any_value',
]);

/** Nodes whose contents are another query: column references inside refer to that query's tables. */
const QUERY_NODES = new Set<NodeTag>(['SelectStmt', 'RangeSubselect', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/**
 * Calls `visit` on every object under `root`, iteratively (trees can be deep), with whether it lies
 * inside a nested query. `visit` returns true to stop (scan returns true) or 'skip' to not descend.
 */
function scan(root: unknown, visit: (o: JsonObject, inQuery: boolean) => boolean | 'skip'): boolean {
  const stack: Array<[unknown, boolean]> = [[root, false]];
  while (stack.length > 0) {
    const [v, inQuery] = stack.pop() as [unknown, boolean];
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], inQuery]);
      continue;
    }
    if (!isObject(v)) continue;
    const verdict = visit(v, inQuery);
    if (verdict === true) return true;
    if (verdict === 'skip') continue;
    const n = node(v);
    if (n !== undefined && n[0] === 'SubLink') {
      // `x IN (SELECT ...)`: x belongs to the outer query, the subselect is nested.
      stack.push([n[1].testexpr, inQuery], [n[1].subselect, true]);
      continue;
    }
    const childInQuery = inQuery || (n !== undefined && QUERY_NODES.has(n[0]));
    for (const key in v) {
      const child = v[key];
      if (typeof child === 'object' && child !== null) stack.push([child, childInQuery]);
    }
  }
  return false;
}

/** Functions that run SQL given as text, and which argument holds it. */
const SQL_TEXT_ARGUMENT: Record<string, number> = {
  query_to_xml: 0, query_to_xmlschema: 0, query_to_xml_and_xmlschema: 0, ts_stat: 0, ts_rewrite: 1,
};

/** A string literal, looking through casts (`'role'::text`); undefined for anything else. */
export function stringConstant(v: unknown): string | undefined {
  const cast = nodeOfType(v, 'TypeCast');
  if (cast !== undefined) return stringConstant(cast.arg);
  const c = nodeOfType(v, 'A_Const');
  if (c === undefined || flag(c.isnull)) return undefined;
  const sval = obj(c.sval);
  return sval === undefined ? undefined : (str(sval.sval) ?? '');
}

export function funcName(call: JsonObject): string {
  const names = nameList(call.funcname);
  // SQL-syntax forms (EXTRACT, SUBSTRING ... FROM, TRIM, ...) are spelled pg_catalog.x by the parser.
  if (str(call.funcformat) === 'COERCE_SQL_SYNTAX' && names.length === 2 && names[0] === 'pg_catalog') return names[1] ?? '';
  return names.join('.');
}

function isAggregateCall(o: JsonObject): boolean {
  const n = node(o);
  if (n === undefined) return false;
  const [type, body] = n;
  if (type === 'JsonArrayAgg' || type === 'JsonObjectAgg' || type === 'GroupingFunc') return true;
  if (type !== 'FuncCall') return false;
  if (body.over !== undefined || flag(body.agg_star) || flag(body.agg_distinct) || flag(body.agg_within_group)) return true;
  if (body.agg_filter !== undefined || list(body.agg_order).length > 0) return true;
  const names = nameList(body.funcname);
  return AGGREGATES.has(names[names.length - 1] ?? '');
}

function aggregates(sel: JsonObject): boolean {
  if (list(sel.groupClause).length > 0 || sel.havingClause !== undefined) return true;
  return scan([sel.targetList, sel.sortClause], (o) => (node(o)?.[0] === 'SubLink' ? 'skip' : isAggregateCall(o)));
}

/** Does the SELECT's own LIMIT / FETCH FIRST cap it at LIMIT_RESTRICTS_UP_TO rows or fewer? */
function smallCap(sel: JsonObject): boolean {
  if (sel.limitCount === undefined || str(sel.limitOption) === 'LIMIT_OPTION_WITH_TIES') return false;
  const n = integerConstant(sel.limitCount);
  return n !== undefined && n >= 0 && n <= LIMIT_RESTRICTS_UP_TO;
}

function columnFields(colref: JsonObject): string[] | undefined {
  const out: string[] = [];
  for (const f of list(colref.fields)) {
    const s = stringNode(f);
    if (s === undefined) return out.length > 0 ? [...out, '*'] : undefined;
    out.push(s);
  }
  return out;
}

/** Does `expr` reference the FROM item whose columns are qualified with `key` (see the rules above)? */
function mentions(expr: unknown, key: string): boolean {
  return scan(expr, (o, inQuery) => {
    const colref = nodeOfType(o, 'ColumnRef');
    if (colref === undefined) return nodeOfType(o, 'CurrentOfExpr') !== undefined;
    const fields = columnFields(colref);
    if (fields === undefined) return false;
    if (fields.length === 1) return !inQuery;
    return fields[fields.length - 2] === key;
  });
}

function restricts(expr: unknown, key: string): boolean {
  const bool = nodeOfType(expr, 'BoolExpr');
  if (bool !== undefined) {
    const args = list(bool.args);
    if (str(bool.boolop) === 'OR_EXPR') return args.length > 0 && args.every((a) => restricts(a, key));
    return args.some((a) => restricts(a, key));
  }
  return mentions(expr, key);
}

function aliasName(v: unknown): string | undefined {
  return str(obj(v)?.aliasname);
}

/** Keys of the FROM items under `item` (tables, subqueries, functions), linking those joined on a condition. */
function fromLeaves(item: unknown, keys: string[], parents: number[]): number[] {
  const n = node(item);
  const rv = n === undefined ? rangeVar(item) : n[0] === 'RangeVar' ? n[1] : undefined;
  const leaf = (key: string): number[] => {
    keys.push(key);
    parents.push(parents.length);
    return [keys.length - 1];
  };
  if (rv !== undefined) return leaf(aliasName(rv.alias) ?? str(rv.relname) ?? '');
  if (n === undefined) return [];
  const [type, body] = n;
  if (type === 'RangeTableSample') return fromLeaves(body.relation, keys, parents);
  if (type !== 'JoinExpr') return leaf(aliasName(body.alias) ?? '');
  const all = [...fromLeaves(body.larg, keys, parents), ...fromLeaves(body.rarg, keys, parents)];
  const conditioned =
    flag(body.isNatural) ||
    list(body.usingClause).length > 0 ||
    (body.quals !== undefined && scan(body.quals, (o) => nodeOfType(o, 'ColumnRef') !== undefined));
  if (conditioned) {
    const root = findRoot(parents, all[0] ?? 0);
    for (const i of all) parents[findRoot(parents, i)] = root;
  }
  return all;
}

function findRoot(parents: number[], i: number): number {
  let r = i;
  while (parents[r] !== r && parents[r] !== undefined) r = parents[r] ?? r;
  return r;
}

/** FROM-item keys restricted by `where` directly or through join links (`extraKeys` come first, e.g. a DML target). */
function restrictedKeys(items: unknown[], where: unknown, extraKeys: string[] = []): Set<string> {
  const keys = [...extraKeys];
  const parents = keys.map((_, i) => i);
  for (const item of items) fromLeaves(item, keys, parents);
  const out = new Set<string>();
  if (where === undefined) return out;
  const roots = new Set<number>();
  keys.forEach((k, i) => {
    if (restricts(where, k)) roots.add(findRoot(parents, i));
  });
  keys.forEach((k, i) => {
    if (roots.has(findRoot(parents, i))) out.add(k);
  });
  return out;
}

function newBlock(parent: Block | undefined, passes: (key: string) => boolean): Block {
  return { aliases: new Map(), bases: [], derived: 0, parent, passes };
}

function addBase(block: Block, ref: TableRef, alias: string | undefined): Base {
  const base = { ref, key: alias ?? ref.name };
  block.aliases.set(base.key, ref);
  block.bases.push(base);
  return base;
}

/** Collects facts over one statement's tree. */
export class Analyzer {
  readonly tables = new RefSet();
  readonly writes = new RefSet();
  readonly unrestricted = new RefSet();
  readonly functions = new Set<string>();
  /** First argument of each set_config() call (see Statement.setConfigNames). */
  readonly setConfigNames: (string | null)[] = [];
  /** SQL text given to functions that run it (see Statement.sqlTexts). */
  readonly sqlTexts: (string | null)[] = [];
  private readonly predicates = new Map<string, PredicateColumn>();
  /** While a SELECT CTE body is walked, its unrestricted tables are held here instead. */
  private sink: TableRef[] | undefined;
  private unrestrictedCount = 0;

  predicateColumns(): PredicateColumn[] {
    return [...this.predicates.values()];
  }

  /**
   * Visits everything under `root`. Expressions are walked with an explicit stack rather than
   * recursion, because operator chains nest thousands deep; only query nodes recurse (through the
   * visit* methods), and their depth is bounded by the bracket nesting MAX_NESTING allows.
   */
  walk(root: unknown, ctx: Ctx): void {
    const stack: Array<[unknown, Ctx]> = [[root, ctx]];
    const pushFields = (o: JsonObject, c: Ctx): void => {
      const keys = Object.keys(o);
      for (let i = keys.length - 1; i >= 0; i--) {
        const child = o[keys[i] as string];
        if (typeof child === 'object' && child !== null) stack.push([child, c]);
      }
    };
    while (stack.length > 0) {
      const [v, c] = stack.pop() as [unknown, Ctx];
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], c]);
        continue;
      }
      if (!isObject(v)) continue;
      const n = node(v);
      if (n !== undefined) {
        const descend = this.visitNode(n[0], n[1], c);
        if (descend !== undefined) pushFields(n[1], descend);
      } else if (typeof v.relname === 'string') {
        this.visitRangeVar(v, c);
      } else {
        pushFields(v, c);
      }
    }
  }

  walkFields(o: JsonObject, ctx: Ctx): void {
    for (const key in o) {
      const child = o[key];
      if (typeof child === 'object' && child !== null) this.walk(child, ctx);
    }
  }

  /** A relation the statement writes (rows or definition); not counted inside definitions. */
  addWrite(ref: TableRef, ctx: Ctx): void {
    this.tables.add(ref);
    if (!ctx.definition) this.writes.add(ref);
  }

  addUnrestricted(ref: TableRef, ctx: Ctx): void {
    if (ctx.definition) return;
    this.unrestrictedCount++;
    if (this.sink !== undefined) this.sink.push(ref);
    else this.unrestricted.add(ref);
  }

  /** Handles one node; returns the context to walk its fields with, or undefined when it is done. */
  private visitNode(type: string, body: JsonObject, ctx: Ctx): Ctx | undefined {
    switch (type) {
      case 'SelectStmt':
        this.visitSelect(body, ctx);
        return undefined;
      case 'InsertStmt':
        this.visitInsert(body, ctx);
        return undefined;
      case 'UpdateStmt':
      case 'DeleteStmt':
        this.visitUpdateDelete(body, ctx);
        return undefined;
      case 'MergeStmt':
        this.visitMerge(body, ctx);
        return undefined;
      case 'RangeVar':
        this.visitRangeVar(body, ctx);
        return undefined;
      case 'FuncCall': {
        const name = funcName(body);
        this.functions.add(name);
        if (name === 'set_config' || name.endsWith('.set_config')) this.setConfigNames.push(stringConstant(list(body.args)[0])?.toLowerCase() ?? null);
        const sqlArg = SQL_TEXT_ARGUMENT[name.slice(name.lastIndexOf('.') + 1)];
        if (sqlArg !== undefined) {
          const args = list(body.args);
          // ts_rewrite(query, target, substitute) takes no SQL; its two-argument form does.
          if (!(name.endsWith('ts_rewrite') && args.length !== 2)) this.sqlTexts.push(args.some((a) => nodeOfType(a, 'NamedArgExpr') !== undefined) ? null : (stringConstant(args[sqlArg]) ?? null));
        }
        return ctx;
      }
      case 'ColumnRef':
        if (ctx.predicate) this.addPredicate(body, ctx);
        return undefined;
      case 'LockingClause':
        // FOR UPDATE OF x names FROM items (often aliases) that were already counted.
        return undefined;
      case 'ViewStmt':
      case 'CreateFunctionStmt':
      case 'RuleStmt':
      case 'CreateTrigStmt':
      case 'CreatePolicyStmt':
      case 'AlterPolicyStmt':
        return { ...ctx, definition: true };
      default:
        return ctx;
    }
  }

  private visitRangeVar(rv: JsonObject, ctx: Ctx): void {
    const ref = refOf(rv);
    if (ref.schema === undefined && ctx.ctes.has(ref.name)) return;
    this.tables.add(ref);
  }

  private addPredicate(colref: JsonObject, ctx: Ctx): void {
    const fields = columnFields(colref);
    if (fields === undefined) return;
    const column = fields[fields.length - 1];
    if (column === undefined || column === '*') return;
    let entry: PredicateColumn = { column };
    if (fields.length >= 2) {
      const qualifier = fields[fields.length - 2] ?? '';
      let resolved: TableRef | null | undefined;
      for (let b = ctx.block; b !== undefined && resolved === undefined; b = b.parent) resolved = b.aliases.get(qualifier);
      if (resolved) {
        entry = resolved.schema === undefined ? { table: resolved.name, column } : { schema: resolved.schema, table: resolved.name, column };
      } else {
        const schema = fields.length >= 3 ? fields[fields.length - 3] : undefined;
        entry = schema === undefined || resolved === null ? { table: qualifier, column } : { schema, table: qualifier, column };
      }
    } else {
      const only = ctx.block?.bases.length === 1 && ctx.block.derived === 0 ? ctx.block.bases[0]?.ref : undefined;
      if (only !== undefined) entry = only.schema === undefined ? { table: only.name, column } : { schema: only.schema, table: only.name, column };
    }
    const key = `${entry.schema ?? ''}\u0000${entry.table ?? ''}\u0000${column}`;
    if (!this.predicates.has(key)) this.predicates.set(key, entry);
  }

  /** Walks a WITH clause; returns the CTEs visible to the statement that owns it (settle them after it). */
  private visitWith(withClause: JsonObject, ctx: Ctx): [Map<string, CteInfo>, CteInfo[]] {
    const ctes = list(withClause.ctes)
      .map((c) => nodeOfType(c, 'CommonTableExpr'))
      .filter((c): c is JsonObject => c !== undefined);
    const recursive = flag(withClause.recursive);
    const infos: CteInfo[] = ctes.map((c) => ({
      excusable: !recursive && nodeOfType(c.ctequery, 'SelectStmt') !== undefined,
      candidates: [],
      references: 0,
      unrestrictedReferences: 0,
    }));
    const all = new Map(ctx.ctes);
    ctes.forEach((c, i) => all.set(str(c.ctename) ?? '', infos[i] as CteInfo));
    ctes.forEach((cte, i) => {
      // A non-recursive CTE sees only the ones before it; its own name there means a real table.
      let visible: ReadonlyMap<string, CteInfo> = all;
      if (!recursive) {
        const before = new Map(ctx.ctes);
        for (let j = 0; j < i; j++) before.set(str(ctes[j]?.ctename) ?? '', infos[j] as CteInfo);
        visible = before;
      }
      const info = infos[i] as CteInfo;
      const saved = this.sink;
      if (info.excusable) this.sink = info.candidates;
      this.walk(cte.ctequery, { ...ctx, ctes: visible, filtered: false, predicate: false });
      this.sink = saved;
    });
    return [all, infos];
  }

  private settle(infos: CteInfo[], ctx: Ctx): void {
    for (const info of infos) {
      if (info.excusable && info.references > 0 && info.unrestrictedReferences === 0) continue;
      for (const ref of info.candidates) this.addUnrestricted(ref, ctx);
    }
  }

  visitSelect(sel: JsonObject, ctx: Ctx): void {
    const withClause = obj(sel.withClause);
    const [ctes, infos] = withClause === undefined ? [ctx.ctes, []] : this.visitWith(withClause, ctx);
    const inner: Ctx = { ...ctx, ctes, filtered: false, predicate: false };
    this.walk(sel.limitCount, inner);
    this.walk(sel.limitOffset, inner);

    const op = str(sel.op);
    if (op !== undefined && op !== 'SETOP_NONE') {
      const arms: Ctx = { ...inner, filtered: ctx.filtered || smallCap(sel) };
      const larg = obj(sel.larg);
      const rarg = obj(sel.rarg);
      if (larg !== undefined) this.visitSelect(larg, arms);
      if (rarg !== undefined) this.visitSelect(rarg, arms);
      this.walk(sel.sortClause, { ...inner, predicate: true });
      this.settle(infos, ctx);
      return;
    }

    const aggregating = aggregates(sel);
    const capped = !aggregating && (ctx.filtered || smallCap(sel));
    const from = list(sel.fromClause);
    const restricted = restrictedKeys(from, sel.whereClause);
    const block = newBlock(ctx.block, (key) => capped || restricted.has(key));
    const fromCtx: Ctx = { ...inner, block };
    for (const item of from) this.visitFromItem(item, fromCtx, block);

    const into = obj(sel.intoClause);
    const intoRel = into === undefined ? undefined : rangeVar(into.rel);
    if (intoRel !== undefined) this.addWrite(refOf(intoRel), ctx);

    const here: Ctx = { ...inner, block };
    const predicate: Ctx = { ...here, predicate: true };
    // The select list of a subquery inside a predicate (`x IN (SELECT id ...)`) is compared too.
    this.walk(sel.targetList, { ...here, predicate: ctx.predicate });
    this.walk(sel.valuesLists, here);
    this.walk(sel.whereClause, predicate);
    this.walk(sel.groupClause, predicate);
    this.walk(sel.havingClause, predicate);
    this.walk(sel.sortClause, predicate);
    this.walk(sel.windowClause, predicate);
    this.walk(sel.distinctClause, predicate);

    this.judge(block, ctx);
    this.settle(infos, ctx);
  }

  /** Adds the block's base tables that are not restricted. */
  private judge(block: Block, ctx: Ctx): void {
    for (const b of block.bases) if (!block.passes(b.key)) this.addUnrestricted(b.ref, ctx);
  }

  /** One FROM item: base tables join the block; subqueries and CTE references learn whether they are restricted. */
  private visitFromItem(item: unknown, ctx: Ctx, block: Block): void {
    const n = node(item);
    const rv = n === undefined ? rangeVar(item) : n[0] === 'RangeVar' ? n[1] : undefined;
    if (rv !== undefined) {
      const ref = refOf(rv);
      const alias = aliasName(rv.alias);
      const cte = ref.schema === undefined ? ctx.ctes.get(ref.name) : undefined;
      if (cte !== undefined) {
        const key = alias ?? ref.name;
        cte.references++;
        if (!block.passes(key)) cte.unrestrictedReferences++;
        block.aliases.set(key, null);
        block.derived++;
        return;
      }
      this.tables.add(ref);
      addBase(block, ref, alias);
      return;
    }
    if (n === undefined) {
      this.walk(item, ctx);
      return;
    }
    const [type, body] = n;
    switch (type) {
      case 'JoinExpr': {
        this.visitFromItem(body.larg, ctx, block);
        this.visitFromItem(body.rarg, ctx, block);
        const onCtx: Ctx = { ...ctx, block, predicate: true };
        this.walk(body.quals, onCtx);
        for (const name of list(body.usingClause)) {
          const column = stringNode(name);
          if (column !== undefined) this.addPredicate({ fields: [{ String: { sval: column } }] }, { ...onCtx, block: undefined });
        }
        const joinAlias = aliasName(body.alias);
        if (joinAlias !== undefined) {
          block.aliases.set(joinAlias, null);
          block.derived++;
        }
        return;
      }
      case 'RangeSubselect': {
        const alias = aliasName(body.alias) ?? '';
        this.walk(body.subquery, { ...ctx, predicate: false, filtered: block.passes(alias) });
        block.aliases.set(alias, null);
        block.derived++;
        return;
      }
      case 'RangeTableSample':
        this.walk(body.args, ctx);
        this.walk(body.repeatable, ctx);
        this.visitFromItem(body.relation, ctx, block);
        return;
      default: {
        // Functions in FROM (generate_series, ROWS FROM, XMLTABLE, JSON_TABLE) are not tables.
        this.walkFields(body, ctx);
        const alias = aliasName(body.alias);
        if (alias !== undefined) block.aliases.set(alias, null);
        block.derived++;
      }
    }
  }

  /** Adds the DML target (always a real table, even when a CTE of that name is in scope) to the block. */
  private target(body: JsonObject, ctx: Ctx, block: Block): Base | undefined {
    const rv = rangeVar(body.relation);
    if (rv === undefined) return undefined;
    const ref = refOf(rv);
    this.addWrite(ref, ctx);
    return addBase(block, ref, aliasName(rv.alias));
  }

  private targetKey(body: JsonObject): string {
    const rv = rangeVar(body.relation);
    return rv === undefined ? '' : (aliasName(rv.alias) ?? str(rv.relname) ?? '');
  }

  private visitInsert(body: JsonObject, ctx: Ctx): void {
    const withClause = obj(body.withClause);
    const [ctes, infos] = withClause === undefined ? [ctx.ctes, []] : this.visitWith(withClause, ctx);
    const inner: Ctx = { ...ctx, ctes, filtered: false, predicate: false };
    const block = newBlock(ctx.block, () => true);
    this.target(body, ctx, block);
    this.walk(body.selectStmt, inner);
    const conflict = obj(body.onConflictClause);
    const here: Ctx = { ...inner, block };
    if (conflict !== undefined) {
      block.aliases.set('excluded', null);
      const infer = obj(conflict.infer);
      if (infer !== undefined) this.walk(infer.whereClause, { ...here, predicate: true });
      this.walk(conflict.targetList, here);
      this.walk(conflict.whereClause, { ...here, predicate: true });
    }
    this.walk(body.returningList, here);
    this.walk(body.returningClause, here);
    this.settle(infos, ctx);
  }

  private visitUpdateDelete(body: JsonObject, ctx: Ctx): void {
    const withClause = obj(body.withClause);
    const [ctes, infos] = withClause === undefined ? [ctx.ctes, []] : this.visitWith(withClause, ctx);
    const inner: Ctx = { ...ctx, ctes, filtered: false, predicate: false };
    const from = [...list(body.fromClause), ...list(body.usingClause)];
    const restricted = restrictedKeys(from, body.whereClause, [this.targetKey(body)]);
    const block = newBlock(ctx.block, (key) => restricted.has(key));
    this.target(body, ctx, block);
    const here: Ctx = { ...inner, block };
    for (const item of from) this.visitFromItem(item, here, block);
    this.walk(body.targetList, here);
    this.walk(body.whereClause, { ...here, predicate: true });
    this.walk(body.returningList, here);
    this.walk(body.returningClause, here);
    this.judge(block, ctx);
    this.settle(infos, ctx);
  }

  private visitMerge(body: JsonObject, ctx: Ctx): void {
    const withClause = obj(body.withClause);
    const [ctes, infos] = withClause === undefined ? [ctx.ctes, []] : this.visitWith(withClause, ctx);
    const inner: Ctx = { ...ctx, ctes, filtered: false, predicate: false };
    // The source is read whole; what it restricts is the target, through the ON condition.
    const block = newBlock(ctx.block, () => false);
    const target = this.target(body, ctx, block);
    const before = this.unrestrictedCount;
    const here: Ctx = { ...inner, block };
    this.visitFromItem(body.sourceRelation, here, block);
    this.walk(body.joinCondition, { ...here, predicate: true });
    for (const clause of list(body.mergeWhenClauses)) {
      const when = nodeOfType(clause, 'MergeWhenClause');
      if (when === undefined) continue;
      this.walk(when.condition, { ...here, predicate: true });
      this.walk(when.targetList, here);
      this.walk(when.values, here);
    }
    this.walk(body.returningList, here);
    this.walk(body.returningClause, here);
    for (const b of block.bases) if (b !== target) this.addUnrestricted(b.ref, ctx);
    this.settle(infos, ctx);
    if (target === undefined) return;
    const bySource = list(body.mergeWhenClauses).some(
      (c) => str(nodeOfType(c, 'MergeWhenClause')?.matchKind) === 'MERGE_WHEN_NOT_MATCHED_BY_SOURCE',
    );
    const sourceUnrestricted = this.unrestrictedCount > before;
    if (bySource || sourceUnrestricted || body.joinCondition === undefined || !restricts(body.joinCondition, target.key)) {
      this.addUnrestricted(target.ref, ctx);
    }
  }
}

/** Relation named by a DROP/COMMENT object name list, for object types that live on or are relations. */
export function relationOfObject(objtype: string | undefined, object: unknown): TableRef | undefined {
  const names = nameList(listItems(object));
  switch (objtype) {
    case 'OBJECT_TABLE':
    case 'OBJECT_VIEW':
    case 'OBJECT_MATVIEW':
    case 'OBJECT_SEQUENCE':
    case 'OBJECT_FOREIGN_TABLE':
    case 'OBJECT_INDEX':
      return refOfNames(names);
    case 'OBJECT_COLUMN':
    case 'OBJECT_TRIGGER':
    case 'OBJECT_POLICY':
    case 'OBJECT_RULE':
    case 'OBJECT_TABCONSTRAINT':
      return refOfNames(names.slice(0, -1));
    default:
      return undefined;
  }
}
