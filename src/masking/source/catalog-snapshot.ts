// What a connection's catalog says, as plain data and lookups (no I/O): relations with their columns
// and types, view definitions, inheritance, rules and triggers, and the functions and operators
// defined outside pg_catalog. server/catalog.ts reads it from PostgreSQL and keeps it fresh; masking
// at the source and the policy's reach read it synchronously.
import type { SourceColumnType } from './types.js';

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
