// The masking catalog of one connection: relations with their columns and types, view definitions,
// inheritance, rewrite rules and triggers, and the functions and operators defined outside
// pg_catalog, read over a control connection with the connection's own credentials. Lookups on the
// hot path are synchronous against the last snapshot; the snapshot is refreshed on a timer and
// after DDL, so a statement never waits for the catalog unless it names something the snapshot
// does not know (see CatalogCache.refreshAfter).
import { SqlConnection, runSqlSets } from './simple-query.js';
import type { UpstreamTarget } from './upstream.js';
import type { Logger } from '../common/log.js';
import type { SourceColumnType } from '../masking/source/types.js';
import { CatalogSnapshot, type Relation } from '../masking/source/catalog-snapshot.js';

// The snapshot is the pure half, beside the masking that reads it; this module reads it from PostgreSQL.
export {
  CatalogSnapshot, type CatalogColumn, type CatalogFunction, type CatalogOperator, type CatalogSnapshotData, type ColumnRef, type Relation,
} from '../masking/source/catalog-snapshot.js';

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
