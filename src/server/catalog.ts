// The masking catalog of one connection: which relations exist, their columns, view definitions and
// table OIDs, read over a control connection with the connection's own credentials. Lookups on the
// hot path are synchronous against the last snapshot; the snapshot is refreshed on a timer and
// after DDL, so a statement never waits for the catalog.
import { runSql } from './simple-query.js';
import type { UpstreamTarget } from './upstream.js';
import type { Logger } from './log.js';

export interface ColumnRef {
  schema: string;
  table: string;
  column: string;
  /** pg_class.relkind: r table, p partitioned, f foreign, v view, m materialized view. */
  relkind: string;
}

interface Relation {
  oid: number;
  schema: string;
  name: string;
  kind: string;
  columns: string[];
  /** attnum → column name (attnums have gaps where columns were dropped). */
  byAttnum: Map<number, string>;
  viewSql?: string;
}

const SNAPSHOT_SQL = `
SELECT c.oid, n.nspname, c.relname, c.relkind, a.attnum, a.attname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY c.oid, a.attnum`;

const VIEWS_SQL = `
SELECT c.oid, pg_catalog.pg_get_viewdef(c.oid)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')`;

export class CatalogSnapshot {
  private readonly byOid = new Map<number, Relation>();
  private readonly byName = new Map<string, Relation[]>();

  constructor(relations: Relation[], readonly takenAt: number) {
    for (const r of relations) {
      this.byOid.set(r.oid, r);
      const list = this.byName.get(r.name) ?? [];
      list.push(r);
      this.byName.set(r.name, list);
    }
  }

  static empty(): CatalogSnapshot {
    return new CatalogSnapshot([], 0);
  }

  /** The relation an unqualified name resolves to: temp schema first, then public, then any. */
  private find(schema: string | undefined, name: string): Relation | undefined {
    const list = this.byName.get(name);
    if (!list) return undefined;
    if (schema !== undefined) return list.find((r) => r.schema === schema);
    return list.find((r) => r.schema.startsWith('pg_temp')) ?? list.find((r) => r.schema === 'public') ?? (list.length === 1 ? list[0] : undefined);
  }

  columns(schema: string | undefined, table: string): string[] | undefined {
    return this.find(schema, table)?.columns;
  }

  view(schema: string | undefined, name: string): string | undefined {
    return this.find(schema, name)?.viewSql;
  }

  resolveAttr(tableOid: number, attnum: number): ColumnRef | undefined {
    const r = this.byOid.get(tableOid);
    const column = r?.byAttnum.get(attnum);
    return r && column !== undefined ? { schema: r.schema, table: r.name, column, relkind: r.kind } : undefined;
  }

  /** Does a relation of this name exist (in any schema)? */
  knows(schema: string | undefined, name: string): boolean {
    return this.find(schema, name) !== undefined;
  }

  get size(): number {
    return this.byOid.size;
  }
}

export async function loadCatalog(target: UpstreamTarget): Promise<CatalogSnapshot> {
  const rows = await runSql(target, SNAPSHOT_SQL);
  const views = await runSql(target, VIEWS_SQL);
  const rels = new Map<number, Relation>();
  for (const [oid, schema, name, kind, attnum, attname] of rows) {
    const id = Number(oid);
    let r = rels.get(id);
    if (!r) {
      r = { oid: id, schema: schema ?? '', name: name ?? '', kind: kind ?? '', columns: [], byAttnum: new Map() };
      rels.set(id, r);
    }
    r.columns.push(attname ?? '');
    r.byAttnum.set(Number(attnum), attname ?? '');
  }
  for (const [oid, def] of views) {
    const r = rels.get(Number(oid));
    if (r && def) r.viewSql = def;
  }
  return new CatalogSnapshot([...rels.values()], Date.now());
}

/** Keeps one connection's snapshot fresh; `current` never blocks. */
export class CatalogCache {
  private snapshot = CatalogSnapshot.empty();
  private loading?: Promise<void>;
  private first?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private dirty = false;

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

  refresh(): Promise<void> {
    if (this.loading) return this.loading;
    this.loading = (async () => {
      try {
        this.snapshot = await loadCatalog(this.target());
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

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
