// What a statement reaches beyond the names it writes (issue 11, deliverable 6), from a catalog
// snapshot and the session's own DDL, as data for decide.ts:
// - a write to a view is a write to every relation the view's query names, and to whatever its
//   rewrite rules name, recursively; a view with INSTEAD OF triggers runs code phigate cannot see;
// - a write to a table is also a write to its inheritance/partition ancestors (their rows) and
//   descendants (a write to a parent reaches them), and to what its DO ALSO/INSTEAD rules name;
// - a read of a view (or materialized view) also reads the relations its query names, and a read
//   of a partition reads its parent's rows; the view's function calls count as the statement's;
// - a call of a volatile user-defined function or procedure (in SQL or a procedural language) may
//   write anything, unless the policy declares it read_only; so may a write to a relation the
//   snapshot does not know.
// Anything that "may write anything" sets opaqueReason: decide.ts then lets the strictest rule that
// applies to the identity decide, as for a DO block. Pure apart from parsing view texts (memoized).
import { classify, type RelationLink, type Statement, type TableRef } from './classify/index.js';
import { functionEntries, type FunctionPolicy } from './functions.js';

/** A relation as CatalogSnapshot (masking/source/catalog-snapshot.ts) describes it. */
export interface ReachRelation {
  oid: number;
  schema: string;
  name: string;
  /** pg_class.relkind: r table, p partitioned, f foreign, v view, m materialized view. */
  kind: string;
  viewSql?: string;
  parents: readonly number[];
  ruleTargets: readonly number[];
  insteadTriggers: boolean;
  system: boolean;
}

export interface ReachFunction {
  schema: string;
  name: string;
  /** pg_proc.prokind: f function, p procedure, a aggregate, w window. */
  kind: string;
  /** pg_proc.provolatile: i immutable, s stable, v volatile. */
  volatility: string;
  language: string;
}

/** The part of CatalogSnapshot this module reads (it satisfies the interface structurally). */
export interface ReachCatalog {
  relationsNamed(name: string): readonly ReachRelation[];
  relation(oid: number): ReachRelation | undefined;
  lineage(oid: number): readonly ReachRelation[];
  children(oid: number): readonly ReachRelation[];
  readonly functions: readonly ReachFunction[];
}

/** A statement with what it reaches added to its tables and writes, as decideStatements takes it. */
export type ReachedStatement = Statement & {
  /** Set when the statement may write any table: the strictest applicable rule decides (decide.ts). */
  opaqueReason?: string;
  /** A rewrite rule reached: its actions may insert, update or delete whatever the statement's kind. */
  writesAnyKind?: boolean;
};

/** Statement kinds whose writes are row changes (DDL writes change definitions, not rows). */
const ROW_WRITING = new Set(['insert', 'update', 'delete', 'merge', 'copy_from', 'truncate', 'select', 'copy_to', 'declare', 'prepare', 'explain']);

/** At most this many links are remembered per session; past it every row write is opaque. */
const MAX_DEFINITIONS = 2000;

/**
 * The DDL this session sent (whatever its outcome), which the catalog snapshot may not show yet:
 * `CREATE VIEW v AS SELECT * FROM patients; UPDATE v ...` in one query string must meet the rules
 * for patients although no snapshot has seen v. Entries only ever add reach, so they are kept for
 * the session (a rolled-back definition makes decisions stricter, never looser).
 */
export class SessionDefinitions {
  private readonly links: RelationLink[] = [];
  /** Everything recorded, by its JSON form: a repeated definition teaches nothing new. */
  private readonly seen = new Set<string>();
  /** Relations this session created (bare name → schemas as written, '' when unqualified). */
  private readonly created = new Map<string, Set<string>>();
  /** Routines this session created or made volatile (bare name → volatile). */
  private readonly routines = new Map<string, { schema?: string; volatile: boolean }[]>();
  private count = 0;
  /** Bumped on every change, so decision caches can tell. */
  version = 0;

  get saturated(): boolean {
    return this.count > MAX_DEFINITIONS;
  }

  /** Remembers what `st` defines; returns true when anything new was learnt. */
  record(st: Statement): boolean {
    let changed = false;
    for (const link of st.defines ?? []) {
      if (!this.learn(link)) continue;
      this.links.push(link);
      changed = true;
    }
    if (st.kind === 'create') {
      for (const w of st.writes) {
        const schemas = this.created.get(w.name) ?? new Set<string>();
        if (!schemas.has(w.schema ?? '')) {
          schemas.add(w.schema ?? '');
          this.created.set(w.name, schemas);
          changed = true;
        }
      }
    }
    if (st.routine !== undefined && this.learn(st.routine)) {
      const { schema, name } = splitName(st.routine.name);
      const list = this.routines.get(name) ?? [];
      list.push(schema === undefined ? { volatile: st.routine.volatile } : { schema, volatile: st.routine.volatile });
      this.routines.set(name, list);
      changed = true;
    }
    if (changed) {
      this.count++;
      this.version++;
    }
    return changed;
  }

  private learn(fact: object): boolean {
    const key = JSON.stringify(fact);
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }

  linksFor(ref: { schema?: string; name: string }): RelationLink[] {
    return this.links.filter((l) => l.relation.name === ref.name && sameSchema(l.relation.schema, ref.schema));
  }

  createdHere(ref: TableRef): boolean {
    const schemas = this.created.get(ref.name);
    if (schemas === undefined) return false;
    return ref.schema === undefined || schemas.has(ref.schema) || schemas.has('');
  }

  /** Is a routine of this name, created or altered by this session, volatile? */
  volatileRoutine(schema: string | undefined, name: string): boolean {
    return (this.routines.get(name) ?? []).some((r) => r.volatile && sameSchema(r.schema, schema));
  }
}

/** Unknown schemas (unqualified names) could be any schema. */
function sameSchema(a: string | undefined, b: string | undefined): boolean {
  return a === undefined || b === undefined || a === b;
}

function splitName(qualified: string): { schema?: string; name: string } {
  const parts = qualified.split('.');
  const name = parts[parts.length - 1] ?? '';
  return parts.length >= 2 ? { schema: parts[parts.length - 2] ?? '', name } : { name };
}

interface ViewFacts {
  tables: TableRef[];
  functions: string[];
}

const viewFactsCache = new WeakMap<ReachCatalog, Map<number, ViewFacts | null>>();
const functionIndexCache = new WeakMap<ReachCatalog, Map<string, ReachFunction[]>>();

/** The relations and functions a view's query names; null when its text cannot be parsed. */
function viewFacts(catalog: ReachCatalog, rel: ReachRelation): ViewFacts | null {
  let perCatalog = viewFactsCache.get(catalog);
  if (perCatalog === undefined) {
    perCatalog = new Map();
    viewFactsCache.set(catalog, perCatalog);
  }
  let facts = perCatalog.get(rel.oid);
  if (facts === undefined) {
    const c = rel.viewSql === undefined ? undefined : classify(rel.viewSql);
    facts = c?.ok && c.statements.length === 1 ? { tables: [...c.statements[0]!.tables], functions: [...c.statements[0]!.functions] } : null;
    perCatalog.set(rel.oid, facts);
  }
  return facts;
}

function functionsNamed(catalog: ReachCatalog, name: string): readonly ReachFunction[] {
  let index = functionIndexCache.get(catalog);
  if (index === undefined) {
    index = new Map();
    for (const f of catalog.functions) {
      const list = index.get(f.name) ?? [];
      list.push(f);
      index.set(f.name, list);
    }
    functionIndexCache.set(catalog, index);
  }
  return index.get(name) ?? [];
}

/**
 * The relations a name may stand for: an unqualified name could resolve to a relation of that name
 * in any schema on the session's search_path (which phigate does not track), so every user relation
 * of that name counts; `pg_temp` stands for any session's temporary schema.
 */
export function resolveRelations(catalog: ReachCatalog, ref: { schema?: string; name: string }): ReachRelation[] {
  const all = catalog.relationsNamed(ref.name);
  if (ref.schema !== undefined) {
    return all.filter((r) => r.schema === ref.schema || (ref.schema === 'pg_temp' && r.schema.startsWith('pg_temp')));
  }
  const user = all.filter((r) => !r.system);
  return user.length > 0 ? user : [...all];
}

function refOf(r: ReachRelation): TableRef {
  return { schema: r.schema, name: r.name };
}

export interface ReachOptions {
  /** The policy's `functions:` entries (read_only). */
  functions: readonly FunctionPolicy[];
  /** This session's own DDL (see SessionDefinitions). */
  session?: SessionDefinitions;
}

/** Adds what `st` reaches to its tables and writes (see the top of this file). */
export function reachOf(st: Statement, catalog: ReachCatalog, opts: ReachOptions): ReachedStatement {
  const w = new Walker(catalog, opts);
  for (const t of st.tables) w.read(t);
  const writesRows = ROW_WRITING.has(st.kind) && st.writes.length > 0;
  if (writesRows) for (const t of st.writes) w.write(t);
  for (const fn of [...st.functions, ...w.viewFunctions]) w.call(fn);
  if (writesRows && opts.session?.saturated) w.opaque('this session defined more relations than phigate follows');
  if (w.reads.length === 0 && w.writes.length === 0 && w.viewFunctions.length === 0 && w.reason === undefined && !w.anyKind) return st;
  const out: ReachedStatement = {
    ...st,
    tables: dedupe([...st.tables, ...w.writes, ...w.reads]),
    writes: dedupe([...st.writes, ...w.writes]),
    functions: [...new Set([...st.functions, ...w.viewFunctions])],
  };
  if (w.writes.length > 0) out.modifiesData = true;
  if (w.reason !== undefined) out.opaqueReason = w.reason;
  if (w.anyKind) out.writesAnyKind = true;
  return out;
}

function dedupe(refs: TableRef[]): TableRef[] {
  const seen = new Set<string>();
  return refs.filter((r) => {
    const k = `${r.schema ?? ''}\u0000${r.name}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

class Walker {
  readonly reads: TableRef[] = [];
  readonly writes: TableRef[] = [];
  readonly viewFunctions: string[] = [];
  reason?: string;
  /** A rewrite rule was followed (see ReachedStatement.writesAnyKind). */
  anyKind = false;
  private readonly readSeen = new Set<number>();
  private readonly writeSeen = new Set<number>();
  private readonly linkSeen = new Set<string>();

  constructor(
    private readonly catalog: ReachCatalog,
    private readonly opts: ReachOptions,
  ) {}

  opaque(why: string): void {
    this.reason ??= why;
  }

  read(ref: { schema?: string; name: string }): void {
    for (const r of resolveRelations(this.catalog, ref)) this.readRelation(r, false);
  }

  private readRelation(r: ReachRelation, add: boolean): void {
    if (this.readSeen.has(r.oid)) return;
    this.readSeen.add(r.oid);
    if (add) this.reads.push(refOf(r));
    // A partition's (or inheritance child's) rows are its parent's rows.
    for (const a of this.catalog.lineage(r.oid)) if (a.oid !== r.oid) this.readRelation(a, true);
    if (r.kind !== 'v' && r.kind !== 'm') return;
    const facts = viewFacts(this.catalog, r);
    if (facts === null) return;
    // A materialized view's functions ran when it was refreshed, not when it is read.
    if (r.kind === 'v') this.viewFunctions.push(...facts.functions);
    for (const t of facts.tables) for (const base of resolveRelations(this.catalog, t)) this.readRelation(base, true);
  }

  write(ref: TableRef): void {
    const rels = resolveRelations(this.catalog, ref);
    this.followLinks(ref);
    if (rels.length === 0) {
      const session = this.opts.session;
      const own = session !== undefined && (session.createdHere(ref) || session.linksFor(ref).length > 0);
      if (!own) this.opaque(`phigate's catalog does not know ${ref.schema ? `${ref.schema}.` : ''}${ref.name} yet, so what writing it reaches cannot be told`);
      return;
    }
    for (const r of rels) this.writeRelation(r, false);
  }

  /** What this session's own DDL says writing `ref` reaches. */
  private followLinks(ref: { schema?: string; name: string }): void {
    const session = this.opts.session;
    if (session === undefined) return;
    const key = `${ref.schema ?? ''}\u0000${ref.name}`;
    if (this.linkSeen.has(key)) return;
    this.linkSeen.add(key);
    for (const link of session.linksFor(ref)) {
      if (link.instead) this.opaque(`an INSTEAD OF trigger this session created on ${link.relation.name} runs code phigate cannot see`);
      if (link.rule) this.anyKind = true;
      for (const t of link.reaches) {
        this.writes.push(t);
        this.write(t);
      }
    }
  }

  private writeRelation(r: ReachRelation, add: boolean): void {
    if (this.writeSeen.has(r.oid)) return;
    this.writeSeen.add(r.oid);
    if (add) this.writes.push(refOf(r));
    // System catalogs' views (pg_settings) are not read into the snapshot; the baseline judges them.
    if (r.system) return;
    if (add) this.followLinks(refOf(r));
    for (const a of this.catalog.lineage(r.oid)) if (a.oid !== r.oid) this.writeRelation(a, true);
    for (const c of this.catalog.children(r.oid)) this.writeRelation(c, true);
    for (const oid of r.ruleTargets) {
      this.anyKind = true;
      const t = this.catalog.relation(oid);
      if (t !== undefined) this.writeRelation(t, true);
    }
    if (r.insteadTriggers) this.opaque(`${r.schema}.${r.name} has INSTEAD OF triggers, which run code phigate cannot see`);
    if (r.kind !== 'v') return;
    const facts = viewFacts(this.catalog, r);
    if (facts === null) {
      this.opaque(`phigate cannot read the definition of view ${r.schema}.${r.name}`);
      return;
    }
    for (const t of facts.tables) {
      const bases = resolveRelations(this.catalog, t);
      if (bases.length === 0) this.opaque(`view ${r.schema}.${r.name} reads ${t.name}, which phigate's catalog does not know`);
      for (const base of bases) this.writeRelation(base, true);
    }
  }

  /** A call of a volatile user-defined function or procedure may write anything. */
  call(fn: string): void {
    const { schema, name } = splitName(fn);
    const readOnly = (s: string | undefined): boolean =>
      this.opts.functions.some((e) => e.readOnly && e.name === name && (e.schema === undefined || s === undefined || e.schema === s));
    for (const f of functionsNamed(this.catalog, name)) {
      if (schema !== undefined && f.schema !== schema) continue;
      if (f.volatility !== 'v') continue;
      // C and internal functions (extensions such as pgcrypto or uuid-ossp, aggregates) only a
      // superuser can create, which the baseline refuses through phigate: not the reader's code.
      if (f.language === 'c' || f.language === 'internal') continue;
      if (functionEntries(this.opts.functions, f.schema, f.name).some((e) => e.readOnly)) continue;
      this.opaque(`${f.kind === 'p' ? 'procedure' : 'function'} ${f.schema}.${f.name} is volatile and its body is invisible to phigate, so it may write any table (declare it under functions: with read_only: true if it does not)`);
      return;
    }
    if (this.opts.session?.volatileRoutine(schema, name) && !readOnly(schema)) {
      this.opaque(`function ${fn}, defined in this session, is volatile and its body is invisible to phigate, so it may write any table`);
    }
  }
}
