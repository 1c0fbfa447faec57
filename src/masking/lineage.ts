// Column lineage: for each result column of a statement, the source columns its value is computed from, and whether it is a plain reference to one of them.
//
// RowDescription names a source only for plain column references; `upper(ssn)`, `row_to_json(p)`,
// view columns and set operations arrive as 0/0 or as the view. This walks the statement's parse
// tree (the classifier's libpg-query instance) the way PostgreSQL's parse analysis would, far enough
// to know where every output value comes from:
//   * FROM items: tables (columns from the Catalog), views (their definition from the Catalog,
//     analysed in turn), CTEs (recursive ones to a fixed point), subqueries, joins (USING/NATURAL
//     merge), functions in FROM (their arguments, LATERAL included), VALUES, XMLTABLE/JSON_TABLE;
//   * expressions: every column a value is computed from, through operators, casts, CASE (its
//     conditions too), function calls, aggregates (including their ORDER BY and FILTER), window
//     PARTITION/ORDER, scalar/ARRAY/IN subqueries, whole-row references (`p`, `p.*`);
//   * set operations: output i depends on column i of every arm;
//   * RETURNING of INSERT/UPDATE/DELETE/MERGE (a returned column carries what was written into it),
//     COPY (query) TO and COPY table TO, EXPLAIN, and DECLARE/PREPARE (lineage kept for FETCH/EXECUTE).
// It over-approximates whenever it has to choose: an ambiguous or unresolvable name depends on every
// candidate, `count(x)` is the only call whose argument does not flow into its value.
//
// A function the walker does not know (user-defined, or a built-in that runs SQL text such as
// query_to_xml) could read any table: it is listed in `opaque`, its output is `unknown`, and the
// planner treats it as derived from every masked column. What lineage cannot see at all: values
// that were copied into another table earlier (INSERT ... SELECT, CREATE TABLE AS), and data inside
// messages rather than rows (errors, notices); detectors are the backstop there.
import {
  flag, isObject, list, nameList, node, nodeOfType, obj, rangeVar, str, stringNode, type Json, type JsonObject,
} from '../sql/ast.js';
import { parseTree } from '../sql/parser.js';
import { tableKey } from '../common/table-name.js';

/** What lineage needs from the database catalog; the session backs it with a cached lookup. */
export interface Catalog {
  /** Column names of a table or view, in attribute order; undefined when unknown. */
  columns(schema: string | undefined, table: string): string[] | undefined;
  /** SQL text of a view's (or materialized view's) defining query; undefined for tables. */
  view?(schema: string | undefined, name: string): string | undefined;
}

export interface ColumnSource {
  schema?: string;
  table: string;
  column: string;
}

export interface TableSource {
  schema?: string;
  table: string;
}

export interface OutputLineage {
  /** The column name PostgreSQL would give it (best effort; result columns are matched by position). */
  name: string;
  /** Set when the value is exactly this source column's value (a plain reference, through views, CTEs and subqueries). */
  plain?: ColumnSource;
  /** Every source column the value is computed from. */
  sources: ColumnSource[];
  /** Tables any of whose columns may flow into the value (columns unknown to the catalog). */
  tables: TableSource[];
  /** Sources could not be determined: treat as derived from every column the statement reads (and, if `opaque` is non-empty, from any column). */
  unknown: boolean;
}

/** Values a statement stores: per target column, what the stored value is computed from. */
export interface WriteLineage {
  table: TableSource;
  /** One entry per column written; `name` is the target column, or `*` when any column may receive the value (MERGE, unknown column lists). */
  columns: OutputLineage[];
}

export interface StatementLineage {
  /** One entry per result column; undefined when the result's shape could not be determined. */
  outputs: OutputLineage[] | undefined;
  /**
   * What INSERT, UPDATE, MERGE, CREATE TABLE AS and SELECT INTO (data-modifying CTEs included) store
   * in which column: a masked value copied into an unmasked column would be readable later, which
   * lineage of that later read cannot see (see maskedWrites in plan.ts).
   */
  writes?: WriteLineage[];
  /** outputs is undefined or some output is unknown. */
  unknown: boolean;
  /** Every table and view the statement reads, views expanded. */
  reads: TableSource[];
  /** Functions whose body the walker cannot see: any column may flow through them. */
  opaque: string[];
  /** DECLARE CURSOR and PREPARE: the lineage of the rows a later FETCH or EXECUTE returns. */
  deferred?: StatementLineage;
  /** Why lineage is unknown, without any value from the statement. */
  reason?: string;
}

// ---------------------------------------------------------------------------------------------
// Dependencies

interface Dep {
  cols: Map<string, ColumnSource>;
  tables: Map<string, TableSource>;
  unknown: boolean;
}

interface Col {
  name: string;
  dep: Dep;
  plain?: ColumnSource;
}

function emptyDep(): Dep {
  return { cols: new Map(), tables: new Map(), unknown: false };
}

function colKey(c: ColumnSource): string {
  return `${c.schema ?? ''}\u0000${c.table}\u0000${c.column}`;
}

function sourceDep(src: ColumnSource): Dep {
  const d = emptyDep();
  d.cols.set(colKey(src), src);
  return d;
}

function unknownDep(): Dep {
  const d = emptyDep();
  d.unknown = true;
  return d;
}

function mergeInto(into: Dep, from: Dep): void {
  for (const [k, v] of from.cols) into.cols.set(k, v);
  for (const [k, v] of from.tables) into.tables.set(k, v);
  if (from.unknown) into.unknown = true;
}

function union(...deps: Dep[]): Dep {
  const d = emptyDep();
  for (const x of deps) mergeInto(d, x);
  return d;
}

function isEmptyDep(d: Dep): boolean {
  return d.cols.size === 0 && d.tables.size === 0 && !d.unknown;
}

function sameSource(a: ColumnSource | undefined, b: ColumnSource | undefined): boolean {
  return a !== undefined && b !== undefined && colKey(a) === colKey(b);
}

// ---------------------------------------------------------------------------------------------
// Functions

/**
 * Built-in functions whose result is computed only from their arguments. Anything else, including
 * every user-defined function and built-ins that run SQL given as text (query_to_xml, ts_stat,
 * cursor_to_xml, table_to_xml, dblink...), is opaque. So are functions that read state another
 * statement can write (current_setting/set_config, sequences, pg_notify, large objects), because
 * `SELECT set_config('x', ssn, false)` followed by `SELECT current_setting('x')` would launder a value.
 */
const TRANSPARENT = new Set(
  `
  abs acos acosd asin asind atan atan2 atan2d atand cbrt ceil ceiling cos cosd cosh cot cotd degrees div exp factorial floor
  gcd lcm ln log log10 min_scale mod pi power pow radians random random_normal round scale sign sin sind sinh sqrt tan tand
  tanh trim_scale trunc width_bucket setseed
  ascii bit_length btrim char_length character_length chr concat concat_ws convert convert_from convert_to decode encode
  format initcap left length lower lpad ltrim md5 normalize octet_length overlay position quote_ident quote_literal
  quote_nullable regexp_count regexp_instr regexp_like regexp_match regexp_matches regexp_replace regexp_split_to_array
  regexp_split_to_table regexp_substr repeat replace reverse right rpad rtrim sha224 sha256 sha384 sha512 split_part
  starts_with string_to_array string_to_table strpos substr substring to_ascii to_hex translate trim unistr upper casefold
  text varchar bpchar char name int2 int4 int8 numeric float4 float8 bool date time timestamp timestamptz interval bytea
  get_bit get_byte set_bit set_byte bit_count crc32 crc32c
  age clock_timestamp current_date current_time current_timestamp date_add date_bin date_part date_subtract date_trunc
  extract isfinite justify_days justify_hours justify_interval localtime localtimestamp make_date make_interval make_time
  make_timestamp make_timestamptz now statement_timestamp timeofday transaction_timestamp to_timestamp to_char to_date
  to_number timezone overlaps
  array_agg array_append array_cat array_dims array_fill array_length array_lower array_ndims array_position
  array_positions array_prepend array_remove array_replace array_reverse array_sample array_shuffle array_sort
  array_to_string array_upper cardinality trim_array unnest generate_series generate_subscripts
  array_to_json json_agg json_agg_strict json_array_element json_array_element_text json_array_elements
  json_array_elements_text json_array_length json_build_array json_build_object json_each json_each_text
  json_extract_path json_extract_path_text json_object json_object_agg json_object_agg_strict json_object_agg_unique
  json_object_agg_unique_strict json_object_keys json_populate_record json_populate_recordset json_scalar json_serialize
  json_strip_nulls json_to_record json_to_recordset json_typeof jsonb_agg jsonb_agg_strict jsonb_array_element
  jsonb_array_element_text jsonb_array_elements jsonb_array_elements_text jsonb_array_length jsonb_build_array
  jsonb_build_object jsonb_concat jsonb_delete jsonb_delete_path jsonb_each jsonb_each_text jsonb_extract_path
  jsonb_extract_path_text jsonb_insert jsonb_object jsonb_object_agg jsonb_object_agg_strict jsonb_object_agg_unique
  jsonb_object_agg_unique_strict jsonb_object_keys jsonb_path_exists jsonb_path_match jsonb_path_query
  jsonb_path_query_array jsonb_path_query_first jsonb_populate_record jsonb_populate_recordset jsonb_pretty jsonb_set
  jsonb_set_lax jsonb_strip_nulls jsonb_to_record jsonb_to_recordset jsonb_typeof row_to_json to_json to_jsonb
  xmlagg xmlcomment xmlconcat xmlelement xmlforest xmlparse xmlpi xmlroot xmlserialize xmltext xpath xpath_exists
  xml_is_well_formed xml_is_well_formed_content xml_is_well_formed_document xmlexists
  to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery setweight strip ts_headline ts_rank
  ts_rank_cd tsvector_to_array array_to_tsvector numnode querytree ts_delete ts_filter
  avg bit_and bit_or bit_xor bool_and bool_or corr covar_pop covar_samp every max min range_agg range_intersect_agg
  regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy stddev stddev_pop
  stddev_samp string_agg sum var_pop var_samp variance any_value mode percentile_cont percentile_disc
  row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
  coalesce nullif greatest least num_nonnulls num_nulls
  current_user current_role session_user user current_schema current_schemas current_database current_catalog
  version pg_backend_pid inet_client_addr inet_client_port inet_server_addr inet_server_port
  pg_typeof format_type pg_column_size gen_random_uuid uuidv4 uuidv7 uuid_extract_timestamp uuid_extract_version
  txid_current pg_current_xact_id merge_action hashtext hashtextextended
  host hostmask masklen netmask network set_masklen abbrev broadcast family inet_merge inet_same_family
  lower_inc upper_inc lower_inf upper_inf isempty range_merge int4range int8range numrange daterange tsrange tstzrange
  multirange int4multirange int8multirange nummultirange datemultirange tsmultirange tstzmultirange
  point line lseg box path polygon circle area center diameter height width radius npoints isclosed isopen
  `
    .split(/\s+/)
    .filter((s) => s !== ''),
);

function functionName(call: JsonObject): string {
  const names = nameList(call.funcname);
  if (names.length === 2 && names[0] === 'pg_catalog') return names[1] ?? '';
  return names.join('.');
}

/** Set-returning functions in FROM with a known number of output columns (without ORDINALITY). */
const SRF_COLUMNS: Record<string, (args: number) => number> = {
  generate_series: () => 1,
  generate_subscripts: () => 1,
  unnest: (n) => Math.max(1, n),
  regexp_matches: () => 1,
  regexp_split_to_table: () => 1,
  string_to_table: () => 1,
  json_array_elements: () => 1,
  jsonb_array_elements: () => 1,
  json_array_elements_text: () => 1,
  jsonb_array_elements_text: () => 1,
  json_object_keys: () => 1,
  jsonb_object_keys: () => 1,
  jsonb_path_query: () => 1,
  json_each: () => 2,
  jsonb_each: () => 2,
  json_each_text: () => 2,
  jsonb_each_text: () => 2,
};

const SRF_NAMES: Record<string, string[]> = {
  json_each: ['key', 'value'],
  jsonb_each: ['key', 'value'],
  json_each_text: ['key', 'value'],
  jsonb_each_text: ['key', 'value'],
};

// ---------------------------------------------------------------------------------------------
// Scopes

interface Leaf {
  /** The name its columns are qualified with: the alias, or the relation name. */
  key: string;
  /** Schema of a relation named without an alias (`s.t.col`). */
  schema?: string;
  cols: Col[] | undefined;
  /** Everything the item's rows are computed from (whole-row references, unknown columns). */
  whole: Dep;
  /** A table whose columns the catalog does not know: a column `x` of it is guessed as table.x. */
  base?: TableSource;
}

interface FromNode {
  kind: 'leaf' | 'join';
  leaf?: Leaf;
  left?: FromNode;
  right?: FromNode;
  using?: string[];
  natural?: boolean;
}

interface Scope {
  leaves: Leaf[];
  from: FromNode[];
  parent: Scope | undefined;
  /** Named windows of the SELECT (WINDOW w AS (...)). */
  windows?: Map<string, JsonObject>;
}

interface CteDef {
  cols: Col[] | undefined;
  whole: Dep;
}

interface Ctx {
  catalog: Catalog;
  writes: WriteLineage[];
  reads: Map<string, TableSource>;
  opaque: Set<string>;
  /** Views being expanded (cycle guard). */
  viewStack: string[];
  reasons: string[];
}

/** Catalog relations whose rows contain sampled column values. */
const STATISTICS = new Set(['pg_statistic', 'pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic_ext_data']);

const MAX_VIEW_DEPTH = 16;
const MAX_RECURSIVE_ROUNDS = 12;

function leafWhole(cols: Col[] | undefined, fallback: Dep): Dep {
  return cols === undefined ? fallback : union(...cols.map((c) => c.dep));
}

function wholeOfTable(t: TableSource): Dep {
  const d = emptyDep();
  d.tables.set(tableKey(t.schema, t.table), t);
  return d;
}

/** Columns of a FROM node in `*` order (USING/NATURAL columns first, merged), or undefined if unknown. */
function starColumns(n: FromNode): Col[] | undefined {
  if (n.kind === 'leaf') return n.leaf?.cols;
  const left = n.left === undefined ? undefined : starColumns(n.left);
  const right = n.right === undefined ? undefined : starColumns(n.right);
  if (left === undefined || right === undefined) return undefined;
  let merged = n.using ?? [];
  if (n.natural === true) {
    const rightNames = new Set(right.map((c) => c.name));
    merged = left.map((c) => c.name).filter((name) => rightNames.has(name));
  }
  if (merged.length === 0) return [...left, ...right];
  const mergedSet = new Set(merged);
  const out: Col[] = merged.map((name) => {
    const l = left.find((c) => c.name === name);
    const r = right.find((c) => c.name === name);
    const dep = union(l?.dep ?? unknownDep(), r?.dep ?? unknownDep());
    return { name, dep };
  });
  for (const c of left) if (!mergedSet.has(c.name)) out.push(c);
  for (const c of right) if (!mergedSet.has(c.name)) out.push(c);
  return out;
}

function fromWhole(n: FromNode): Dep {
  if (n.kind === 'leaf') return n.leaf?.whole ?? unknownDep();
  return union(n.left === undefined ? emptyDep() : fromWhole(n.left), n.right === undefined ? emptyDep() : fromWhole(n.right));
}

// ---------------------------------------------------------------------------------------------
// The walker

class Walker {
  constructor(private readonly ctx: Ctx) {}

  /** Result columns of a query (SELECT, or DML with RETURNING); undefined when its shape is unknown. */
  query(stmt: unknown, parent: Scope | undefined, ctes: Map<string, CteDef>): Col[] | undefined {
    const n = node(stmt);
    if (n === undefined) {
      // libpg-query emits larg/rarg of set operations without the SelectStmt wrapper.
      if (isObject(stmt) && (stmt.targetList !== undefined || stmt.op !== undefined || stmt.valuesLists !== undefined)) {
        return this.select(stmt, parent, ctes);
      }
      this.ctx.reasons.push('unrecognised query node');
      return undefined;
    }
    const [type, body] = n;
    switch (type) {
      case 'SelectStmt':
        return this.select(body, parent, ctes);
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        return this.dml(type, body, parent, ctes);
      default:
        this.ctx.reasons.push(`${type} as a query`);
        return undefined;
    }
  }

  private withClause(body: JsonObject, parent: Scope | undefined, outer: Map<string, CteDef>): Map<string, CteDef> {
    const w = obj(body.withClause);
    if (w === undefined) return outer;
    const ctes = new Map(outer);
    const recursive = flag(w.recursive);
    for (const raw of list(w.ctes)) {
      const cte = nodeOfType(raw, 'CommonTableExpr');
      if (cte === undefined) continue;
      const name = str(cte.ctename) ?? '';
      const aliases = list(cte.aliascolnames).map((a) => stringNode(a) ?? '');
      const q = cte.ctequery;
      const sel = nodeOfType(q, 'SelectStmt');
      let cols: Col[] | undefined;
      if (recursive && sel !== undefined && str(sel.op) !== undefined && str(sel.op) !== 'SETOP_NONE' && refersTo(sel, name)) {
        cols = this.recursiveCte(name, aliases, sel, parent, ctes);
      } else {
        cols = rename(this.query(q, parent, ctes), aliases);
      }
      ctes.set(name, { cols, whole: leafWhole(cols, unknownDep()) });
    }
    return ctes;
  }

  /** WITH RECURSIVE: start from the non-recursive arm, feed the result back until it stops growing. */
  private recursiveCte(name: string, aliases: string[], sel: JsonObject, parent: Scope | undefined, ctes: Map<string, CteDef>): Col[] | undefined {
    const seed = rename(this.query(sel.larg, parent, ctes), aliases);
    if (seed === undefined) return undefined;
    let current: Col[] = seed.map((c) => ({ name: c.name, dep: c.dep }));
    for (let round = 0; round < MAX_RECURSIVE_ROUNDS; round++) {
      const inner = new Map(ctes);
      inner.set(name, { cols: current, whole: leafWhole(current, unknownDep()) });
      const step = this.query(sel.rarg, parent, inner);
      if (step === undefined || step.length !== current.length) return undefined;
      let grew = false;
      const next = current.map((c, i) => {
        const dep = union(c.dep, (step[i] as Col).dep);
        if (dep.cols.size !== c.dep.cols.size || dep.tables.size !== c.dep.tables.size || dep.unknown !== c.dep.unknown) grew = true;
        return { name: c.name, dep };
      });
      current = next;
      if (!grew) return current;
    }
    this.ctx.reasons.push('recursive CTE did not settle');
    return undefined;
  }

  select(sel: JsonObject, parent: Scope | undefined, outerCtes: Map<string, CteDef>): Col[] | undefined {
    const ctes = this.withClause(sel, parent, outerCtes);
    const op = str(sel.op);
    if (op !== undefined && op !== 'SETOP_NONE') {
      const left = this.query(sel.larg, parent, ctes);
      const right = this.query(sel.rarg, parent, ctes);
      if (left === undefined || right === undefined || left.length !== right.length) return undefined;
      return left.map((l, i) => combineArms(l, right[i] as Col));
    }
    const values = list(sel.valuesLists);
    if (values.length > 0) {
      const scope: Scope = { leaves: [], from: [], parent };
      let cols: Col[] | undefined;
      for (const row of values) {
        const items = list(nodeOfType(row, 'List')?.items ?? row);
        const deps = items.map((e) => this.expr(e, scope, ctes));
        if (cols === undefined) cols = deps.map((d, i) => ({ name: `column${i + 1}`, dep: d.dep }));
        else if (cols.length === deps.length) cols = cols.map((c, i) => ({ name: c.name, dep: union(c.dep, (deps[i] as { dep: Dep }).dep) }));
        else return undefined;
      }
      return cols;
    }

    const scope: Scope = { leaves: [], from: [], parent };
    for (const item of list(sel.fromClause)) {
      const f = this.fromItem(item, scope, ctes);
      scope.from.push(f);
    }
    const windows = new Map<string, JsonObject>();
    for (const w of list(sel.windowClause)) {
      const def = nodeOfType(w, 'WindowDef');
      const name = str(def?.name);
      if (def !== undefined && name !== undefined) windows.set(name, def);
    }
    scope.windows = windows;
    // Not part of any output value, but walked for the tables they read (reads) and the functions they call.
    this.expr([sel.whereClause, sel.havingClause, sel.groupClause, sel.sortClause, sel.distinctClause, sel.limitCount, sel.limitOffset], scope, ctes);
    // SELECT INTO creates a table and returns no rows.
    if (sel.intoClause !== undefined) {
      const into = rangeVar(obj(sel.intoClause)?.rel);
      const cols = this.targets(list(sel.targetList), scope, ctes);
      if (into !== undefined) this.recordWrite(refOfRange(into), cols ?? [{ name: '*', dep: unknownDep() }]);
      return [];
    }
    return this.targets(list(sel.targetList), scope, ctes);
  }

  /** A target list (SELECT list or RETURNING), `*` expanded. */
  private targets(items: Json[], scope: Scope, ctes: Map<string, CteDef>): Col[] | undefined {
    const out: Col[] = [];
    let known = true;
    for (const raw of items) {
      const rt = nodeOfType(raw, 'ResTarget');
      if (rt === undefined) continue;
      const star = starRef(rt.val);
      if (star !== undefined) {
        const cols = this.expandStar(star, scope);
        if (cols === undefined) known = false;
        else out.push(...cols.map((c) => ({ ...c })));
        continue;
      }
      const r = this.expr(rt.val, scope, ctes);
      const col: Col = { name: str(rt.name) ?? figureName(rt.val, r.name), dep: r.dep };
      if (r.plain !== undefined) col.plain = r.plain;
      out.push(col);
    }
    return known ? out : undefined;
  }

  private expandStar(qualifier: string[], scope: Scope): Col[] | undefined {
    if (qualifier.length === 0) {
      const all: Col[] = [];
      for (const f of scope.from) {
        const cols = starColumns(f);
        if (cols === undefined) return undefined;
        all.push(...cols);
      }
      return all;
    }
    const leaf = findLeaf(scope, qualifier);
    return leaf?.cols;
  }

  // -------------------------------------------------------------------------------------------
  // FROM

  private fromItem(item: unknown, scope: Scope, ctes: Map<string, CteDef>): FromNode {
    const n = node(item);
    const rv = n === undefined ? rangeVar(item) : n[0] === 'RangeVar' ? n[1] : undefined;
    if (rv !== undefined) return this.leafNode(this.relation(rv, ctes), scope);
    if (n === undefined) return this.leafNode({ key: '', cols: undefined, whole: unknownDep() }, scope);
    const [type, body] = n;
    const alias = obj(body.alias);
    const aliasName = str(alias?.aliasname);
    const colnames = list(alias?.colnames).map((c) => stringNode(c) ?? '');
    switch (type) {
      case 'JoinExpr': {
        const left = this.fromItem(body.larg, scope, ctes);
        const right = this.fromItem(body.rarg, scope, ctes);
        const using = list(body.usingClause).map((u) => stringNode(u) ?? '');
        const join: FromNode = { kind: 'join', left, right, using, natural: flag(body.isNatural) };
        this.expr(body.quals, scope, ctes);
        if (aliasName !== undefined) {
          const cols = rename(starColumns(join), colnames);
          scope.leaves.push({ key: aliasName, cols, whole: leafWhole(cols, fromWhole(join)) });
        }
        return join;
      }
      case 'RangeSubselect': {
        // Earlier FROM items are visible, as LATERAL allows; without LATERAL PostgreSQL rejects such references anyway.
        const cols = rename(this.query(body.subquery, scope, ctes), colnames);
        return this.leafNode({ key: aliasName ?? '', cols, whole: leafWhole(cols, unknownDep()) }, scope);
      }
      case 'RangeFunction':
        return this.leafNode(this.rangeFunction(body, aliasName, colnames, scope, ctes), scope);
      case 'RangeTableSample': {
        this.expr(body.args, scope, ctes);
        return this.fromItem(body.relation, scope, ctes);
      }
      case 'RangeTableFunc': {
        // XMLTABLE: every column is computed from the document and row expressions.
        const dep = union(this.expr(body.docexpr, scope, ctes).dep, this.expr(body.rowexpr, scope, ctes).dep, this.expr(body.namespaces, scope, ctes).dep);
        const cols: Col[] = list(body.columns).map((c) => {
          const col = nodeOfType(c, 'RangeTableFuncCol') ?? {};
          return { name: str(col.colname) ?? '', dep: union(dep, this.expr(col.colexpr, scope, ctes).dep, this.expr(col.coldefexpr, scope, ctes).dep) };
        });
        return this.leafNode({ key: aliasName ?? '', cols: rename(cols, colnames), whole: dep }, scope);
      }
      default: {
        // JSON_TABLE and anything newer: all columns computed from everything inside.
        const dep = this.expr(body, scope, ctes).dep;
        return this.leafNode({ key: aliasName ?? '', cols: undefined, whole: dep }, scope);
      }
    }
  }

  private leafNode(leaf: Leaf, scope: Scope): FromNode {
    scope.leaves.push(leaf);
    return { kind: 'leaf', leaf };
  }

  private rangeFunction(body: JsonObject, alias: string | undefined, colnames: string[], scope: Scope, ctes: Map<string, CteDef>): Leaf {
    // functions: [{ List: { items: [call, per-call column definitions (ROWS FROM)] } }, ...]
    const entries = list(body.functions).map((f) => list(nodeOfType(f, 'List')?.items));
    const coldefs = list(body.coldeflist).map((c) => str(nodeOfType(c, 'ColumnDef')?.colname) ?? '');
    const single = entries.length === 1;
    let cols: Col[] | undefined = [];
    let whole = emptyDep();
    let firstName = '';
    for (const [call, defs] of entries) {
      const r = this.expr(call, scope, ctes);
      whole = union(whole, r.dep);
      const fc = nodeOfType(call, 'FuncCall');
      const fname = fc === undefined ? figureName(call) : functionName(fc);
      if (firstName === '') firstName = fname;
      const perCall = list(defs).map((c) => str(nodeOfType(c, 'ColumnDef')?.colname) ?? '');
      const arity = SRF_COLUMNS[fname];
      let names: string[] | undefined;
      if (single && coldefs.length > 0) names = coldefs;
      else if (perCall.length > 0) names = perCall;
      else if (arity !== undefined) {
        const n = arity(list(fc?.args).length);
        names = SRF_NAMES[fname] ?? Array.from({ length: n }, () => (n === 1 && single ? (alias ?? fname) : fname));
      } else if (fc === undefined || TRANSPARENT.has(fname)) {
        // A scalar function in FROM yields one column, named after the alias when there is one.
        names = [single ? (alias ?? fname) : fname];
      }
      // Otherwise a function returning a composite or a set of records: its columns are unknown.
      if (names === undefined || cols === undefined) {
        cols = undefined;
        continue;
      }
      for (const name of names) cols.push({ name, dep: r.dep });
    }
    if (cols !== undefined && flag(body.ordinality)) cols.push({ name: 'ordinality', dep: emptyDep() });
    return { key: alias ?? firstName, cols: rename(cols, colnames), whole };
  }

  /** A relation named in FROM: a CTE, a view (expanded), or a table. */
  private relation(rv: JsonObject, ctes: Map<string, CteDef>): Leaf {
    const name = str(rv.relname) ?? '';
    const schema = str(rv.schemaname);
    const key = str(obj(rv.alias)?.aliasname) ?? name;
    const colnames = list(obj(rv.alias)?.colnames).map((c) => stringNode(c) ?? '');
    if (schema === undefined) {
      const cte = ctes.get(name);
      if (cte !== undefined) {
        const cols = rename(cte.cols, colnames);
        return { key, cols, whole: cte.whole };
      }
    }
    const table: TableSource = schema === undefined ? { table: name } : { schema, table: name };
    this.ctx.reads.set(tableKey(table.schema, table.table), table);
    const leaf: Leaf = { key, cols: undefined, whole: wholeOfTable(table) };
    if (schema !== undefined && key === name) leaf.schema = schema;
    const view = this.view(table);
    const names = this.ctx.catalog.columns(schema, name);
    if (view !== undefined) {
      // A view column depends on what its definition computes, and on itself (a rule may name it).
      const viewCols = view.cols;
      if (viewCols !== undefined) {
        const cols = viewCols.map((c, i) => {
          const colName = names !== undefined && names.length === viewCols.length ? (names[i] as string) : c.name;
          const self: ColumnSource = { ...table, column: colName };
          const col: Col = { name: colName, dep: union(c.dep, sourceDep(self)) };
          if (c.plain !== undefined) col.plain = c.plain;
          return col;
        });
        leaf.cols = rename(cols, colnames);
        leaf.whole = union(leafWhole(cols, emptyDep()), wholeOfTable(table));
      } else {
        leaf.whole = union(view.whole, wholeOfTable(table));
      }
      return leaf;
    }
    if (names !== undefined) {
      const cols = names.map((c) => {
        const src: ColumnSource = { ...table, column: c };
        return { name: c, dep: sourceDep(src), plain: src };
      });
      leaf.cols = rename(cols, colnames);
      leaf.whole = leafWhole(cols, emptyDep());
    } else if (STATISTICS.has(name) && (schema === undefined || schema === 'pg_catalog')) {
      // Planner statistics hold real column values (most_common_vals, histogram_bounds).
      this.ctx.opaque.add(name);
      leaf.whole = unknownDep();
    } else if (schema === 'pg_catalog' || schema === 'information_schema' || (schema === undefined && name.startsWith('pg_'))) {
      // A system catalog the catalog snapshot does not list: guess its columns by name, as for a table.
      leaf.base = table;
    } else {
      // A relation the catalog does not know (created in this session, or a stale snapshot): it may be
      // a view over masked columns, so whatever comes from it is untraceable.
      this.ctx.opaque.add(`relation ${schema === undefined ? name : `${schema}.${name}`}`);
      this.ctx.reasons.push('a relation the catalog does not know');
      leaf.whole = unknownDep();
    }
    return leaf;
  }

  private view(table: TableSource): CteDef | undefined {
    const lookup = this.ctx.catalog.view;
    if (lookup === undefined) return undefined;
    const sql = lookup.call(this.ctx.catalog, table.schema, table.table);
    if (sql === undefined) return undefined;
    const key = tableKey(table.schema, table.table);
    if (this.ctx.viewStack.includes(key) || this.ctx.viewStack.length >= MAX_VIEW_DEPTH) {
      this.ctx.reasons.push('views nest too deeply or recursively');
      return { cols: undefined, whole: unknownDep() };
    }
    const parsed = parseTree(sql);
    const stmt = parsed.ok ? obj(list(obj(parsed.value)?.stmts)[0])?.stmt : undefined;
    if (stmt === undefined) {
      this.ctx.reasons.push('a view definition could not be parsed');
      return { cols: undefined, whole: unknownDep() };
    }
    this.ctx.viewStack.push(key);
    try {
      const cols = this.query(stmt, undefined, new Map());
      return { cols, whole: leafWhole(cols, unknownDep()) };
    } finally {
      this.ctx.viewStack.pop();
    }
  }

  // -------------------------------------------------------------------------------------------
  // DML with RETURNING

  private dml(type: string, body: JsonObject, parent: Scope | undefined, outerCtes: Map<string, CteDef>): Col[] | undefined {
    const ctes = this.withClause(body, parent, outerCtes);
    const rv = rangeVar(body.relation);
    const scope: Scope = { leaves: [], from: [], parent };
    if (rv === undefined) return undefined;
    // The target is always a table, even when a CTE of the same name is in scope.
    const target = this.relation(rv, new Map());
    const written = new Map<string, Dep>();
    const addWritten = (column: string, dep: Dep): void => {
      written.set(column, union(written.get(column) ?? emptyDep(), dep));
    };
    const everyColumn = emptyDep();

    if (type === 'InsertStmt') {
      const source = body.selectStmt === undefined ? [] : this.query(body.selectStmt, parent, ctes);
      const names = list(body.cols).map((c) => str(nodeOfType(c, 'ResTarget')?.name) ?? '');
      const targetNames = names.length > 0 ? names : (target.cols ?? []).map((c) => c.name);
      if (source === undefined) mergeInto(everyColumn, unknownDep());
      else if (names.length === 0 && target.cols === undefined) for (const c of source) mergeInto(everyColumn, c.dep);
      else source.forEach((c, i) => addWritten(targetNames[i] ?? '', c.dep));
      scope.leaves.push(target);
      scope.from.push({ kind: 'leaf', leaf: target });
      const conflict = obj(body.onConflictClause);
      if (conflict !== undefined) {
        // `excluded` is the row proposed for insertion.
        const excludedCols = target.cols?.map((c) => ({ name: c.name, dep: union(c.dep, written.get(c.name) ?? emptyDep(), everyColumn) }));
        scope.leaves.push({ key: 'excluded', cols: excludedCols, whole: union(target.whole, everyColumn) });
        for (const t of list(conflict.targetList)) {
          const rt = nodeOfType(t, 'ResTarget');
          if (rt === undefined) continue;
          addWritten(str(rt.name) ?? '', this.expr(rt.val, scope, ctes).dep);
        }
      }
    } else {
      scope.leaves.push(target);
      scope.from.push({ kind: 'leaf', leaf: target });
      for (const item of [...list(body.fromClause), ...list(body.usingClause)]) scope.from.push(this.fromItem(item, scope, ctes));
      if (type === 'MergeStmt') {
        const src = this.fromItem(body.sourceRelation, scope, ctes);
        for (const clause of list(body.mergeWhenClauses)) {
          const when = nodeOfType(clause, 'MergeWhenClause');
          if (when === undefined) continue;
          // Which values land in which column is spread over several clauses: all of them may reach any column.
          mergeInto(everyColumn, this.expr(when.targetList, scope, ctes).dep);
          mergeInto(everyColumn, this.expr(when.values, scope, ctes).dep);
        }
        mergeInto(everyColumn, fromWhole(src));
      } else if (type === 'UpdateStmt') {
        for (const t of list(body.targetList)) {
          const rt = nodeOfType(t, 'ResTarget');
          if (rt === undefined) continue;
          const multi = nodeOfType(rt.val, 'MultiAssignRef');
          const dep = this.expr(multi !== undefined ? multi.source : rt.val, scope, ctes).dep;
          addWritten(str(rt.name) ?? '', dep);
        }
      }
    }

    this.expr(body.whereClause, scope, ctes);
    this.expr(body.joinCondition, scope, ctes);
    const stored: Col[] = [...written].map(([name, dep]) => ({ name, dep: union(dep, everyColumn) }));
    if (!isEmptyDep(everyColumn)) stored.push({ name: '*', dep: everyColumn });
    this.recordWrite(refOfRange(rv), stored);
    const returning = list(obj(body.returningClause)?.exprs ?? body.returningList);
    if (returning.length === 0) return [];
    // RETURNING sees the row as written: a column carries whatever was assigned to it.
    const after = (leaf: Leaf): Leaf => {
      const cols = leaf.cols?.map((c) => {
        const extra = union(written.get(c.name) ?? emptyDep(), everyColumn);
        if (isEmptyDep(extra)) return c;
        return { name: c.name, dep: union(c.dep, extra) };
      });
      return { ...leaf, cols, whole: union(leaf.whole, ...written.values(), everyColumn) };
    };
    const newTarget = after(target);
    const retScope: Scope = { ...scope, leaves: scope.leaves.map((l) => (l === target ? newTarget : l)), from: scope.from.map((f) => (f.leaf === target ? { kind: 'leaf', leaf: newTarget } : f)) };
    retScope.leaves.push({ ...newTarget, key: 'new' }, { ...target, key: 'old' });
    return this.targets(returning, retScope, ctes);
  }

  recordWrite(table: TableSource, cols: Col[]): void {
    // A column assigned a constant or a parameter stores nothing from the database.
    const columns = cols.filter((c) => !isEmptyDep(c.dep)).map(toOutput);
    if (columns.length > 0) this.ctx.writes.push({ table, columns });
  }

  // -------------------------------------------------------------------------------------------
  // Expressions

  /** Everything an expression's value is computed from; `plain` when it is a bare column reference. */
  expr(root: unknown, scope: Scope, ctes: Map<string, CteDef>): { dep: Dep; plain?: ColumnSource; name?: string } {
    if (root === undefined || root === null) return { dep: emptyDep() };
    const direct = nodeOfType(root, 'ColumnRef');
    if (direct !== undefined) {
      const r = this.columnRef(direct, scope);
      return r.plain === undefined ? { dep: r.dep } : { dep: r.dep, plain: r.plain };
    }
    const sub = nodeOfType(root, 'SubLink');
    let name: string | undefined;
    const dep = emptyDep();
    const stack: unknown[] = [root];
    while (stack.length > 0) {
      const v = stack.pop();
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
        continue;
      }
      if (!isObject(v)) continue;
      const n = node(v);
      if (n === undefined) {
        pushChildren(v, stack);
        continue;
      }
      const [type, body] = n;
      switch (type) {
        case 'ColumnRef':
          mergeInto(dep, this.columnRef(body, scope).dep);
          break;
        case 'FuncCall': {
          const fname = functionName(body);
          const bare = fname.includes('.') ? fname.slice(fname.lastIndexOf('.') + 1) : fname;
          if (bare === 'count' && !fname.includes('.')) {
            // count(x) depends on how many x are non-null, not on their values.
            stack.push(body.agg_filter);
          } else {
            if (!TRANSPARENT.has(fname)) {
              this.ctx.opaque.add(fname);
              dep.unknown = true;
            }
            stack.push(body.args, body.agg_order, body.agg_filter);
          }
          const over = obj(body.over);
          if (over !== undefined) {
            stack.push(over.partitionClause, over.orderClause);
            const ref = str(over.name) ?? str(over.refname);
            const named = ref === undefined ? undefined : lookupWindow(scope, ref);
            if (named !== undefined) stack.push(named.partitionClause, named.orderClause);
          }
          break;
        }
        case 'SubLink': {
          const kind = str(body.subLinkType);
          const cols = this.query(body.subselect, scope, ctes);
          if (kind !== 'EXISTS_SUBLINK') {
            if (cols === undefined) dep.unknown = true;
            else for (const c of cols) mergeInto(dep, c.dep);
          }
          if (sub !== undefined && body === sub && kind === 'EXPR_SUBLINK' && cols?.length === 1) name = cols[0]?.name;
          stack.push(body.testexpr);
          break;
        }
        case 'SelectStmt':
        case 'InsertStmt':
        case 'UpdateStmt':
        case 'DeleteStmt':
        case 'MergeStmt': {
          // A query nested where a value is expected (JSON_ARRAY(SELECT ...), ...): all its outputs flow in.
          const cols = this.query(v, scope, ctes);
          if (cols === undefined) dep.unknown = true;
          else for (const c of cols) mergeInto(dep, c.dep);
          break;
        }
        default:
          pushChildren(body, stack);
      }
    }
    return name === undefined ? { dep } : { dep, name };
  }

  private columnRef(ref: JsonObject, scope: Scope): { dep: Dep; plain?: ColumnSource } {
    const fields = list(ref.fields);
    const names: string[] = [];
    let star = false;
    for (const f of fields) {
      const s = stringNode(f);
      if (s !== undefined) names.push(s);
      else if (nodeOfType(f, 'A_Star') !== undefined) star = true;
    }
    if (star) {
      // `p.*` or `*` inside an expression (row(p.*), count(p.*)...): the whole row(s).
      if (names.length === 0) return { dep: union(...scope.from.map(fromWhole)) };
      const leaf = findLeaf(scope, names);
      return { dep: leaf === undefined ? unknownDep() : leaf.whole };
    }
    const column = names[names.length - 1];
    if (column === undefined) return { dep: unknownDep() };
    if (names.length === 1) return this.unqualified(column, scope);
    const leaf = findLeaf(scope, names.slice(0, -1));
    if (leaf !== undefined) return columnOf(leaf, column);
    // `a.b` where a is not a FROM item: a field of composite column a.
    const composite = this.unqualified(names[0] as string, scope);
    return { dep: composite.dep };
  }

  private unqualified(column: string, scope: Scope): { dep: Dep; plain?: ColumnSource } {
    for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
      const found: { dep: Dep; plain?: ColumnSource }[] = [];
      for (const leaf of s.leaves) {
        if (leaf.cols !== undefined) {
          const c = leaf.cols.find((x) => x.name === column);
          if (c !== undefined) found.push(c.plain === undefined ? { dep: c.dep } : { dep: c.dep, plain: c.plain });
        } else if (leaf.base !== undefined) {
          const src: ColumnSource = { ...leaf.base, column };
          found.push({ dep: sourceDep(src), plain: src });
        } else if (leaf.key !== 'new' && leaf.key !== 'old') {
          found.push({ dep: leaf.whole });
        }
      }
      if (found.length === 1) return found[0] as { dep: Dep; plain?: ColumnSource };
      if (found.length > 1) {
        const plain = found.every((f) => sameSource(f.plain, found[0]?.plain)) ? found[0]?.plain : undefined;
        const dep = union(...found.map((f) => f.dep));
        return plain === undefined ? { dep } : { dep, plain };
      }
      // A bare FROM item name is a whole-row reference (`row_to_json(p)`).
      const leaf = s.leaves.find((l) => l.key === column);
      if (leaf !== undefined) return { dep: leaf.whole };
    }
    return { dep: unknownDep() };
  }
}

function refOfRange(rv: JsonObject): TableSource {
  const table = str(rv.relname) ?? '';
  const schema = str(rv.schemaname);
  return schema === undefined ? { table } : { schema, table };
}

function columnOf(leaf: Leaf, column: string): { dep: Dep; plain?: ColumnSource } {
  if (leaf.cols !== undefined) {
    const c = leaf.cols.find((x) => x.name === column);
    if (c !== undefined) return c.plain === undefined ? { dep: c.dep } : { dep: c.dep, plain: c.plain };
    // Not a column we know by that name (our naming of an expression may differ): any of them.
    return { dep: leaf.whole };
  }
  if (leaf.base !== undefined) {
    const src: ColumnSource = { ...leaf.base, column };
    return { dep: sourceDep(src), plain: src };
  }
  return { dep: leaf.whole };
}

function findLeaf(scope: Scope, qualifier: string[]): Leaf | undefined {
  const name = qualifier[qualifier.length - 1];
  const schema = qualifier.length >= 2 ? qualifier[qualifier.length - 2] : undefined;
  for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
    for (let i = s.leaves.length - 1; i >= 0; i--) {
      const leaf = s.leaves[i] as Leaf;
      if (leaf.key !== name) continue;
      if (schema !== undefined && leaf.schema !== undefined && leaf.schema !== schema) continue;
      return leaf;
    }
  }
  return undefined;
}

function lookupWindow(scope: Scope, name: string): JsonObject | undefined {
  for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
    const w = s.windows?.get(name);
    if (w !== undefined) return w;
  }
  return undefined;
}

function pushChildren(o: JsonObject, stack: unknown[]): void {
  const keys = Object.keys(o);
  for (let i = keys.length - 1; i >= 0; i--) {
    const child = o[keys[i] as string];
    if (typeof child === 'object' && child !== null) stack.push(child);
  }
}

/** `*` or `q.*` as a target: the qualifier (empty for a bare star); undefined for anything else. */
function starRef(v: unknown): string[] | undefined {
  const ref = nodeOfType(v, 'ColumnRef');
  if (ref === undefined) return undefined;
  const fields = list(ref.fields);
  const last = fields[fields.length - 1];
  if (nodeOfType(last, 'A_Star') === undefined) return undefined;
  return fields.slice(0, -1).map((f) => stringNode(f) ?? '');
}

function rename(cols: Col[] | undefined, names: string[]): Col[] | undefined {
  if (cols === undefined || names.length === 0) return cols;
  return cols.map((c, i) => (i < names.length ? { ...c, name: names[i] as string } : c));
}

/** Does a query mention the relation `name` (a recursive CTE's self-reference)? */
function refersTo(sel: JsonObject, name: string): boolean {
  const stack: unknown[] = [sel];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      stack.push(...v);
      continue;
    }
    if (!isObject(v)) continue;
    const rv = nodeOfType(v, 'RangeVar') ?? (typeof v.relname === 'string' ? v : undefined);
    if (rv !== undefined && rv.relname === name && rv.schemaname === undefined) return true;
    pushChildren(v, stack);
  }
  return false;
}

/** Output i of a set operation: everything from both arms; plain only if both arms are that column (or a constant). */
function combineArms(l: Col, r: Col): Col {
  const dep = union(l.dep, r.dep);
  const col: Col = { name: l.name, dep };
  if (l.plain !== undefined && (sameSource(l.plain, r.plain) || isEmptyDep(r.dep))) col.plain = l.plain;
  else if (r.plain !== undefined && isEmptyDep(l.dep)) col.plain = r.plain;
  return col;
}

const SQL_VALUE_NAMES: Record<string, string> = {
  SVFOP_CURRENT_DATE: 'current_date',
  SVFOP_CURRENT_TIME: 'current_time',
  SVFOP_CURRENT_TIME_N: 'current_time',
  SVFOP_CURRENT_TIMESTAMP: 'current_timestamp',
  SVFOP_CURRENT_TIMESTAMP_N: 'current_timestamp',
  SVFOP_LOCALTIME: 'localtime',
  SVFOP_LOCALTIME_N: 'localtime',
  SVFOP_LOCALTIMESTAMP: 'localtimestamp',
  SVFOP_LOCALTIMESTAMP_N: 'localtimestamp',
  SVFOP_CURRENT_ROLE: 'current_role',
  SVFOP_CURRENT_USER: 'current_user',
  SVFOP_USER: 'user',
  SVFOP_SESSION_USER: 'session_user',
  SVFOP_CURRENT_CATALOG: 'current_catalog',
  SVFOP_CURRENT_SCHEMA: 'current_schema',
};

/** The column name PostgreSQL gives an unnamed target (FigureColname), as far as it matters here. */
function figureName(v: unknown, fromSubLink?: string): string {
  const n = node(v);
  if (n === undefined) return '?column?';
  const [type, body] = n;
  switch (type) {
    case 'ColumnRef': {
      const fields = list(body.fields);
      return stringNode(fields[fields.length - 1]) ?? '?column?';
    }
    case 'A_Indirection': {
      const ind = list(body.indirection);
      for (let i = ind.length - 1; i >= 0; i--) {
        const s = stringNode(ind[i]);
        if (s !== undefined) return s;
      }
      return figureName(body.arg);
    }
    case 'FuncCall': {
      const names = nameList(body.funcname);
      return names[names.length - 1] ?? '?column?';
    }
    case 'A_Expr':
      return str(body.kind) === 'AEXPR_NULLIF' ? 'nullif' : '?column?';
    case 'TypeCast': {
      const inner = figureName(body.arg);
      if (inner !== '?column?') return inner;
      const names = nameList(obj(body.typeName)?.names);
      return names[names.length - 1] ?? '?column?';
    }
    case 'CollateClause':
      return figureName(body.arg);
    case 'CaseExpr':
      return 'case';
    case 'CoalesceExpr':
      return 'coalesce';
    case 'MinMaxExpr':
      return str(body.op) === 'IS_GREATEST' ? 'greatest' : 'least';
    case 'A_ArrayExpr':
      return 'array';
    case 'RowExpr':
      return 'row';
    case 'GroupingFunc':
      return 'grouping';
    case 'SQLValueFunction':
      return SQL_VALUE_NAMES[str(body.op) ?? ''] ?? '?column?';
    case 'SubLink': {
      const kind = str(body.subLinkType);
      if (kind === 'EXISTS_SUBLINK') return 'exists';
      if (kind === 'ARRAY_SUBLINK') return 'array';
      return fromSubLink ?? '?column?';
    }
    case 'XmlExpr': {
      const op = str(body.op) ?? '';
      return op.startsWith('IS_') ? op.slice(3).toLowerCase() : '?column?';
    }
    case 'XmlSerialize':
      return 'xmlserialize';
    case 'JsonObjectConstructor':
    case 'JsonObjectAgg':
      return type === 'JsonObjectAgg' ? 'json_objectagg' : 'json_object';
    case 'JsonArrayConstructor':
    case 'JsonArrayQueryConstructor':
      return 'json_array';
    case 'JsonArrayAgg':
      return 'json_arrayagg';
    default:
      return '?column?';
  }
}

// ---------------------------------------------------------------------------------------------
// Public entry points

function toOutput(c: Col): OutputLineage {
  const out: OutputLineage = {
    name: c.name,
    sources: [...c.dep.cols.values()],
    tables: [...c.dep.tables.values()],
    unknown: c.dep.unknown,
  };
  if (c.plain !== undefined && !c.dep.unknown) out.plain = c.plain;
  return out;
}

function finish(ctx: Ctx, cols: Col[] | undefined, extra?: Partial<StatementLineage>): StatementLineage {
  const outputs = cols?.map(toOutput);
  const result: StatementLineage = {
    outputs,
    unknown: outputs === undefined || outputs.some((o) => o.unknown),
    writes: ctx.writes,
    reads: [...ctx.reads.values()],
    opaque: [...ctx.opaque],
    ...extra,
  };
  if (result.unknown && result.reason === undefined) {
    result.reason = ctx.reasons[0] ?? (ctx.opaque.size > 0 ? `calls ${[...ctx.opaque].slice(0, 3).join(', ')}` : 'result columns could not be traced');
  }
  return result;
}

function newCtx(catalog: Catalog): Ctx {
  return { catalog, writes: [], reads: new Map(), opaque: new Set(), viewStack: [], reasons: [] };
}

function fixedOutputs(names: string[]): Col[] {
  return names.map((name) => ({ name, dep: emptyDep() }));
}

/** Lineage of one parsed statement (a `stmt` node of libpg-query's parse tree). */
export function statementLineage(stmt: unknown, catalog: Catalog): StatementLineage {
  const ctx = newCtx(catalog);
  const w = new Walker(ctx);
  const n = node(stmt);
  try {
    if (n === undefined) return finish(ctx, undefined, { reason: 'not a statement' });
    const [type, body] = n;
    switch (type) {
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        return finish(ctx, w.query(stmt, undefined, new Map()));
      case 'CopyStmt': {
        if (body.query !== undefined) {
          const cols = w.query(body.query, undefined, new Map());
          return flag(body.is_from) ? finish(ctx, []) : finish(ctx, cols);
        }
        const rv = rangeVar(body.relation);
        if (rv === undefined || flag(body.is_from)) return finish(ctx, []);
        const sel = { targetList: [], fromClause: [{ RangeVar: rv }] } as JsonObject;
        const attlist = list(body.attlist).map((a) => stringNode(a) ?? '');
        const targets: Json[] = attlist.length > 0
          ? attlist.map((a) => ({ ResTarget: { val: { ColumnRef: { fields: [{ String: { sval: a } }] } } } }))
          : [{ ResTarget: { val: { ColumnRef: { fields: [{ A_Star: {} }] } } } }];
        sel.targetList = targets;
        return finish(ctx, w.select(sel, undefined, new Map()));
      }
      case 'ExplainStmt':
        return finish(ctx, fixedOutputs(['QUERY PLAN']));
      case 'DeclareCursorStmt':
      case 'PrepareStmt': {
        const deferred = statementLineage(body.query, catalog);
        return { outputs: [], unknown: false, writes: [], reads: deferred.reads, opaque: deferred.opaque, deferred };
      }
      case 'CreateTableAsStmt': {
        const cols = w.query(body.query, undefined, new Map());
        const into = rangeVar(obj(body.into)?.rel);
        if (into !== undefined) w.recordWrite(refOfRange(into), cols ?? [{ name: '*', dep: unknownDep() }]);
        return finish(ctx, []);
      }
      case 'VariableShowStmt':
        return finish(ctx, fixedOutputs(str(body.name) === 'all' ? ['name', 'setting', 'description'] : [str(body.name) ?? '']));
      case 'FetchStmt':
        return finish(ctx, undefined, { opaque: ['FETCH'], reason: 'FETCH returns the rows of a cursor: use the lineage kept from its DECLARE' });
      case 'ExecuteStmt':
        return finish(ctx, undefined, { opaque: ['EXECUTE'], reason: 'EXECUTE returns the rows of a prepared statement: use the lineage kept from its PREPARE' });
      case 'CallStmt':
        return finish(ctx, undefined, { opaque: [functionName(nodeOfType(body.funccall, 'FuncCall') ?? {}) || 'CALL'], reason: 'a procedure may return anything in its OUT parameters' });
      default:
        // Utility statements return no rows from tables.
        return finish(ctx, []);
    }
  } catch (err) {
    // Our own recursion ran out of stack on a pathological tree: fail closed.
    if (err instanceof RangeError) return finish(newCtx(catalog), undefined, { opaque: ['(too complex)'], reason: 'statement too complex to trace' });
    throw err;
  }
}

/**
 * Lineage of every statement in `sql`, parsed with the classifier's parser (initClassifier() must
 * have been awaited). A statement that cannot be parsed yields one unknown, opaque lineage.
 */
export function lineageOf(sql: string, catalog: Catalog): StatementLineage[] {
  const parsed = parseTree(sql);
  if (!parsed.ok) {
    return [{ outputs: undefined, unknown: true, writes: [], reads: [], opaque: ['(unparsed)'], reason: 'the statement could not be parsed' }];
  }
  return list(obj(parsed.value)?.stmts).map((raw) => statementLineage(obj(raw)?.stmt, catalog));
}
