// The facts the policy engine matches on, as produced by classify(): one Statement per statement in a query string.

export type StatementKind =
  | 'select' | 'insert' | 'update' | 'delete' | 'merge' | 'copy_to' | 'copy_from'
  | 'create' | 'alter' | 'drop' | 'truncate' | 'comment' | 'grant' | 'revoke' | 'reindex' | 'vacuum' | 'analyze' | 'cluster' | 'refresh'
  | 'set' | 'reset' | 'show' | 'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'prepare_transaction'
  | 'prepare' | 'execute' | 'deallocate' | 'declare' | 'fetch' | 'close' | 'move' | 'listen' | 'notify' | 'unlisten'
  | 'call' | 'do' | 'lock' | 'discard' | 'load' | 'checkpoint' | 'explain' | 'set_role' | 'set_session_authorization' | 'other';

/** A relation as written: unquoted names arrive folded to lower case by the parser, quoted ones keep their case. */
export interface TableRef {
  schema?: string;
  name: string;
}

/**
 * A column used to choose rows (WHERE, JOIN ON/USING, GROUP BY, HAVING, ORDER BY, window PARTITION/ORDER,
 * DISTINCT ON, MERGE ON, and anything inside those, including subqueries). `table` is the relation name
 * when the qualifier is an alias of a table (or the column is unqualified in a single-table query), the
 * qualifier as written when it names a subquery or CTE, and absent when it cannot be told.
 */
export interface PredicateColumn {
  schema?: string;
  table?: string;
  column: string;
}

export interface CopyInfo {
  direction: 'to' | 'from';
  target: 'stdout' | 'stdin' | 'file' | 'program';
}

/**
 * What a DDL statement makes a relation reach when it is written: a view's query, a rule's actions,
 * the parent named by INHERITS / PARTITION OF / ATTACH PARTITION, or (`instead`) an INSTEAD OF
 * trigger's invisible code. The gate uses it until the catalog snapshot shows the change.
 */
export interface RelationLink {
  relation: TableRef;
  reaches: TableRef[];
  instead?: true;
  /** A rewrite rule: its actions may be any kind of write, whatever the statement's kind. */
  rule?: true;
}

export interface Statement {
  /** EXPLAIN (without ANALYZE) of X is 'explain'; EXPLAIN ANALYZE X runs X and has X's kind. */
  kind: StatementKind;
  /** Kind of the explained statement, for EXPLAIN with or without ANALYZE. */
  explains?: StatementKind;
  /** True for EXPLAIN ANALYZE (the explained statement runs). */
  analyze?: boolean;
  /** Kind of the statement a PREPARE defines. */
  prepares?: StatementKind;
  /** Every relation the statement touches, de-duplicated, in order of appearance. */
  tables: TableRef[];
  /** Relations whose rows or definition the statement changes. */
  writes: TableRef[];
  /** writes is non-empty, or the statement runs opaque code (DO, CALL). */
  modifiesData: boolean;
  /** unrestricted is non-empty: some relation is read or changed without a restricting WHERE (exact rules at the top of analyze.ts). */
  withoutWhere: boolean;
  /** The relations behind withoutWhere. */
  unrestricted: TableRef[];
  /** For create/alter/drop/comment (and grant/revoke): 'table' | 'index' | 'view' | 'function' | 'role' | 'schema' | ... */
  ddlObject?: string;
  copy?: CopyInfo;
  /** Functions called anywhere, as written: lower case unless quoted, schema-qualified when written so. */
  functions: string[];
  predicateColumns: PredicateColumn[];
  /** Prepared statement name for prepare/execute/deallocate (absent for DEALLOCATE ALL). */
  preparedName?: string;
  /** Cursor name for declare/fetch/move/close (absent for CLOSE ALL). */
  cursorName?: string;
  /** Parameter name for set/reset/show (lower case; 'all' for RESET ALL / SHOW ALL), and for ALTER ROLE/DATABASE ... SET/RESET. */
  setting?: string;
  /** DO and CALL run code whose body is not visible to the classifier. */
  opaque?: boolean;
  /** set_role / set_session_authorization that only return to the login role (RESET-like: NONE, DEFAULT). */
  toDefault?: true;
  /** Language of a DO block or CREATE FUNCTION/PROCEDURE, lower case (DO defaults to plpgsql, functions to sql). */
  language?: string;
  /** First argument of every set_config() call: the setting name in lower case, or null when it is not a literal. */
  setConfigNames?: (string | null)[];
  /** SQL text given to functions that run it (query_to_xml, ts_stat, ...): the literal, or null when it is not one. */
  sqlTexts?: (string | null)[];
  /**
   * CREATE FUNCTION/PROCEDURE, or ALTER FUNCTION ... VOLATILE: the routine's name as written
   * (`f` or `s.f`) and whether it is (now) volatile.
   */
  routine?: { name: string; volatile: boolean };
  /** Links a DDL statement creates between relations (see RelationLink). */
  defines?: RelationLink[];
  /** UTF-8 byte span of this statement in the query text (as the parser reports it; no trailing ';'). */
  start: number;
  end: number;
}

export type Classification =
  | { ok: true; statements: Statement[]; normalized: string; fingerprint: string }
  | { ok: false; error: string; position?: number };
