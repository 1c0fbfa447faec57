// The masking catalog of one connection: relations with their columns and types, view definitions,
// inheritance, rewrite rules and triggers, and the functions and operators defined outside
// pg_catalog, read over a control connection with the connection's own credentials. Lookups on the
// hot path are synchronous against the last snapshot; the snapshot is refreshed on a timer and
// after DDL, so a statement never waits for the catalog unless it names something the snapshot
// does not know (see CatalogCache.refreshAfter).
import { SqlConnection, runSqlSets } from './simple-query.js';
import type { UpstreamTarget } from './upstream.js';
import type { Logger } from './log.js';
import type { SourceColumnType } from '../masking/source/types.js';

export interface ColumnRef {
  schema: string;
  table: string;
  column: string;
  /** pg_class.relkind: r table, p partitioned, f foreign, v view, m materialized view. */
  relkind: string;
}

export interface CatalogColumn {
  name: string;
  attnum: number;
  type: SourceColumnType;
}

export interface Relation {
  oid: number;
  schema: string;
  name: string;
  /** pg_class.relkind: r table, p partitioned, f foreign, v view, m materialized view. */
  kind: string;
  columns: string[];
  /** Columns with their types, in attribute order (dropped ones left out). */
  typedColumns: CatalogColumn[];
  /** attnum → column name (attnums have gaps where columns were dropped). */
  byAttnum: Map<number, string>;
  /** A view's (or materialized view's) defining query, every name schema-qualified. */
  viewSql?: string;
  /** Direct parents: inheritance parents and the partitioned table of a partition. */
  parents: number[];
  /** Relations that the relation's rewrite rules (other than a view's own _RETURN) read or write. */
  ruleTargets: number[];
  /** INSTEAD OF triggers run code phigate cannot see. */
  insteadTriggers: boolean;
  /** A relation of pg_catalog or information_schema. */
  system: boolean;
}

export interface CatalogFunction {
  schema: string;
  name: string;
  /** pg_proc.prokind: f function, p procedure, a aggregate, w window. */
  kind: string;
  /** pg_proc.provolatile: i immutable, s stable, v volatile. */
  volatility: string;
  language: string;
  /** Installed by an extension (CREATE EXTENSION), not written by a user. */
  extension: boolean;
}

export interface CatalogOperator {
  schema: string;
  name: string;
  /** The implementing function, schema-qualified, and its language. */
  fn: string;
  language: string;
}

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema']);

/**
 * One round trip on one connection. search_path is emptied first so that pg_get_viewdef qualifies
 * every name: a view's text then means the same relations whatever a client session's search_path.
 */
/**
 * A fingerprint of the catalogs masking and write rules read: counts and newest row versions. DDL
 * changes it (an update writes a row with a newer xmin, a drop lowers a count); VACUUM and ANALYZE
 * update pg_class in place and do not.
 */
const EPOCH_SQL = `SELECT pg_catalog.concat_ws('/', ${['pg_class', 'pg_attribute', 'pg_inherits', 'pg_rewrite', 'pg_proc', 'pg_operator', 'pg_trigger', 'pg_namespace', 'pg_type']
  .map((t) => `(SELECT count(*) || ':' || coalesce(max(xmin::text::bigint), 0) FROM pg_catalog.${t})`).join(', ')})`;

const SNAPSHOT_SQL = `
SET search_path = '';
${EPOCH_SQL};
SELECT c.oid, n.nspname, c.relname, c.relkind, a.attnum, a.attname, a.atttypid, a.atttypmod,
  pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY c.oid, a.attnum;
SELECT t.oid, t.typbasetype, t.typtypmod FROM pg_catalog.pg_type t WHERE t.typtype = 'd';
SELECT c.oid, pg_catalog.pg_get_viewdef(c.oid)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema');
SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i;
SELECT DISTINCT r.ev_class, d.refobjid
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class
WHERE r.rulename <> '_RETURN';
SELECT DISTINCT t.tgrelid FROM pg_catalog.pg_trigger t WHERE (t.tgtype & 64) <> 0;
SELECT n.nspname, p.proname, p.prokind, p.provolatile, l.lanname,
  EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid AND d.deptype = 'e')
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema');
SELECT n.nspname, o.oprname, pn.nspname || '.' || p.proname, l.lanname
FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`;

export class CatalogSnapshot {
  private readonly byOid = new Map<number, Relation>();
  private readonly byName = new Map<string, Relation[]>();
  /** Direct inheritance children and partitions, by parent OID. */
  private readonly childrenOf = new Map<number, Relation[]>();
  /**
   * Names of the functions, procedures and aggregates outside the system schemas that an unqualified
   * call could resolve to instead of a built-in and whose body phigate cannot vouch for: all but an
   * extension's compiled (C) functions, such as citext's max() or replace().
   */
  readonly userFunctionNames: ReadonlySet<string>;
  /** Operator symbols that some user-defined operator implements with a function in SQL or a PL. */
  readonly untrustedOperators: ReadonlySet<string>;

  constructor(
    relations: Relation[],
    readonly takenAt: number,
    readonly functions: readonly CatalogFunction[] = [],
    readonly operators: readonly CatalogOperator[] = [],
  ) {
    for (const r of relations) {
      this.byOid.set(r.oid, r);
      const list = this.byName.get(r.name) ?? [];
      list.push(r);
      this.byName.set(r.name, list);
    }
    for (const r of relations) {
      for (const p of r.parents) {
        const kids = this.childrenOf.get(p) ?? [];
        kids.push(r);
        this.childrenOf.set(p, kids);
      }
    }
    this.userFunctionNames = new Set(functions.filter((f) => !(f.extension && (f.language === 'c' || f.language === 'internal'))).map((f) => f.name));
    this.untrustedOperators = new Set(operators.filter((o) => o.language !== 'c' && o.language !== 'internal').map((o) => o.name));
  }

  /** The catalog's fingerprint when it was read (EPOCH_SQL): the watch reloads when it changes. */
  epoch?: string;

  static empty(): CatalogSnapshot {
    return new CatalogSnapshot([], 0);
  }

  /** The relation an unqualified name resolves to: temp schema first, then public, then any. */
  private find(schema: string | undefined, name: string): Relation | undefined {
    const list = this.byName.get(name);
    if (!list) return undefined;
    if (schema !== undefined) return list.find((r) => r.schema === schema);
    const user = list.filter((r) => !r.system);
    return user.find((r) => r.schema.startsWith('pg_temp')) ?? user.find((r) => r.schema === 'public') ?? (user.length === 1 ? user[0] : undefined);
  }

  columns(schema: string | undefined, table: string): string[] | undefined {
    return this.find(schema, table)?.columns;
  }

  view(schema: string | undefined, name: string): string | undefined {
    return this.find(schema, name)?.viewSql;
  }

  resolveAttr(tableOid: number, attnum: number): ColumnRef | undefined {
    const r = this.byOid.get(tableOid);
    // System relations were never resolved here: output masking decides their columns by lineage.
    if (r?.system) return undefined;
    const column = r?.byAttnum.get(attnum);
    return r && column !== undefined ? { schema: r.schema, table: r.name, column, relkind: r.kind } : undefined;
  }

  /** Does a relation of this name exist (in any schema)? */
  knows(schema: string | undefined, name: string): boolean {
    return this.find(schema, name) !== undefined;
  }

  /** Every relation of this name, in any schema (system ones included). */
  relationsNamed(name: string): readonly Relation[] {
    return this.byName.get(name) ?? [];
  }

  relation(oid: number): Relation | undefined {
    return this.byOid.get(oid);
  }

  /** The relation and all its inheritance/partition ancestors, nearest first. */
  lineage(oid: number): Relation[] {
    const out: Relation[] = [];
    const seen = new Set<number>();
    const queue = [oid];
    while (queue.length > 0) {
      const id = queue.shift()!;
      if (seen.has(id)) continue;
      seen.add(id);
      const r = this.byOid.get(id);
      if (!r) continue;
      out.push(r);
      queue.push(...r.parents);
    }
    return out;
  }

  /** Direct inheritance children and partitions of a relation. */
  children(oid: number): readonly Relation[] {
    return this.childrenOf.get(oid) ?? [];
  }

  get size(): number {
    return this.byOid.size;
  }

  /** Plain data (structured-clone safe) from which fromData builds an equal snapshot in another thread. */
  toData(): CatalogSnapshotData {
    return { relations: [...this.byOid.values()], takenAt: this.takenAt, functions: this.functions, operators: this.operators, epoch: this.epoch };
  }

  static fromData(d: CatalogSnapshotData): CatalogSnapshot {
    const s = new CatalogSnapshot(d.relations, d.takenAt, d.functions, d.operators);
    s.epoch = d.epoch;
    return s;
  }
}

export interface CatalogSnapshotData {
  relations: Relation[];
  takenAt: number;
  functions: readonly CatalogFunction[];
  operators: readonly CatalogOperator[];
  epoch: string | undefined;
}

function resolveDomain(oid: number, typmod: number, sql: string, domains: Map<number, [number, number]>, names: Map<string, string>): SourceColumnType {
  let base = oid;
  let baseTypmod = typmod;
  for (let depth = 0; depth < 16; depth++) {
    const d = domains.get(base);
    if (!d) break;
    [base, baseTypmod] = d;
  }
  const baseSql = base === oid ? sql : (names.get(`${base}/${baseTypmod}`) ?? '');
  return { oid, typmod, sql, baseOid: base, baseTypmod, baseSql };
}

/** `takenAt`: when the reading started (what it shows is at least that recent). */
export async function loadCatalog(target: UpstreamTarget, takenAt = Date.now()): Promise<CatalogSnapshot> {
  const sets = await runSqlSets(target, SNAPSHOT_SQL, 'phigate-catalog');
  const [epochRows = [], rows = [], domainRows = [], views = [], inherits = [], rules = [], insteadOf = [], fns = [], ops = []] = sets;
  const domains = new Map<number, [number, number]>();
  for (const [oid, base, typmod] of domainRows) domains.set(Number(oid), [Number(base), Number(typmod)]);
  // format_type of every (type, typmod) seen, so a domain's base type can be named without a query.
  const typeNames = new Map<string, string>();
  for (const r of rows) typeNames.set(`${r[6]}/${r[7]}`, r[8] ?? '');
  const missingBases = new Set<string>();
  for (const [base, typmod] of domains.values()) if (!typeNames.has(`${base}/${typmod}`)) missingBases.add(`${base}/${typmod}`);
  if (missingBases.size > 0) {
    const pairs = [...missingBases].map((k) => k.split('/').map(Number) as [number, number]);
    const named = await runSqlSets(target,
      `SELECT t.o, t.m, pg_catalog.format_type(t.o::pg_catalog.oid, t.m) FROM (VALUES ${pairs.map(([o, m]) => `(${o}, ${m})`).join(', ')}) AS t(o, m)`,
      'phigate-catalog');
    for (const [o, m, name] of named[0] ?? []) typeNames.set(`${o}/${m}`, name ?? '');
  }
  const rels = new Map<number, Relation>();
  for (const [oid, schema, name, kind, attnum, attname, typoid, typmod, typname] of rows) {
    const id = Number(oid);
    let r = rels.get(id);
    if (!r) {
      const s = schema ?? '';
      r = {
        oid: id, schema: s, name: name ?? '', kind: kind ?? '', columns: [], typedColumns: [], byAttnum: new Map(),
        parents: [], ruleTargets: [], insteadTriggers: false, system: SYSTEM_SCHEMAS.has(s),
      };
      rels.set(id, r);
    }
    const col = attname ?? '';
    r.columns.push(col);
    r.byAttnum.set(Number(attnum), col);
    r.typedColumns.push({ name: col, attnum: Number(attnum), type: resolveDomain(Number(typoid), Number(typmod), typname ?? '', domains, typeNames) });
  }
  for (const [oid, def] of views) {
    const r = rels.get(Number(oid));
    if (r && def) r.viewSql = def.trim().replace(/;$/, '');
  }
  for (const [child, parent] of inherits) rels.get(Number(child))?.parents.push(Number(parent));
  for (const [rel, target] of rules) rels.get(Number(rel))?.ruleTargets.push(Number(target));
  for (const [rel] of insteadOf) {
    const r = rels.get(Number(rel));
    if (r) r.insteadTriggers = true;
  }
  const functions = fns.map(([schema, name, kind, volatility, language, extension]) => ({
    schema: schema ?? '', name: name ?? '', kind: kind ?? 'f', volatility: volatility ?? 'v', language: language ?? '', extension: extension === 't',
  }));
  const operators = ops.map(([schema, name, fn, language]) => ({ schema: schema ?? '', name: name ?? '', fn: fn ?? '', language: language ?? '' }));
  const snapshot = new CatalogSnapshot([...rels.values()], takenAt, functions, operators);
  snapshot.epoch = epochRows[0]?.[0] ?? undefined;
  return snapshot;
}

/** Keeps one connection's snapshot fresh; `current` never blocks. */
export class CatalogCache {
  private snapshot = CatalogSnapshot.empty();
  private loading?: Promise<void>;
  private first?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private dirty = false;
  private watchTimer?: NodeJS.Timeout;
  private watchConn?: SqlConnection;
  private polling = false;

  constructor(
    private readonly target: () => UpstreamTarget,
    private readonly log: Logger,
    private readonly connection: string,
    private readonly refreshMs = 60_000,
  ) {}

  get current(): CatalogSnapshot {
    return this.snapshot;
  }

  /** Resolves once a first snapshot was attempted; starts loading and the refresh timer on first use. */
  ready(): Promise<void> {
    if (!this.first) {
      this.first = this.refresh();
      this.timer = setInterval(() => void this.refresh(), this.refreshMs);
      this.timer.unref();
    }
    return this.first;
  }

  /** After DDL through the gateway: refresh soon; repeated calls coalesce. */
  invalidate(): void {
    if (this.loading) {
      this.dirty = true;
      return;
    }
    void this.refresh();
  }

  /**
   * Resolves with a snapshot whose reading started at or after `since` (ms since the epoch): a
   * statement that names a relation the snapshot does not know waits for one taken after it arrived.
   */
  async refreshAfter(since: number): Promise<CatalogSnapshot> {
    for (let attempt = 0; attempt < 3 && this.snapshot.takenAt < since; attempt++) {
      if (this.loading) {
        await this.loading;
        continue;
      }
      await this.refresh();
    }
    return this.snapshot;
  }

  refresh(): Promise<void> {
    if (this.loading) return this.loading;
    this.loading = (async () => {
      const started = Date.now();
      try {
        this.snapshot = await loadCatalog(this.target(), started);
      } catch (err) {
        this.log.warn('catalog refresh failed; keeping the previous snapshot', { connection: this.connection, error: (err as Error).message });
      } finally {
        this.loading = undefined;
        if (this.dirty) {
          this.dirty = false;
          void this.refresh();
        }
      }
    })();
    return this.loading;
  }

  /**
   * DDL made outside the gateway (a partition attached to a masked table, a view replaced) is not
   * announced: a fingerprint of the catalog is read every `ms` on one kept connection, and a change
   * reloads the snapshot. (DDL through the gateway reloads it at once.)
   */
  watch(ms = 2_000): void {
    if (this.watchTimer) return;
    this.watchTimer = setInterval(() => void this.poll(), ms);
    this.watchTimer.unref();
  }

  private async poll(): Promise<void> {
    if (this.polling || this.loading) return;
    this.polling = true;
    try {
      if (!this.watchConn?.alive) this.watchConn = await SqlConnection.open(this.target(), 'phigate-catalog-watch');
      const epoch = (await this.watchConn.query(EPOCH_SQL))[0]?.[0]?.[0] ?? undefined;
      const known = this.snapshot.epoch;
      if (epoch !== undefined && known !== undefined && epoch !== known) this.invalidate();
    } catch (err) {
      this.watchConn?.close();
      this.watchConn = undefined;
      this.log.debug('catalog watch failed; trying again', { connection: this.connection, error: (err as Error).message });
    } finally {
      this.polling = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchConn?.close();
  }
}
