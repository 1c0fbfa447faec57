// Turns one parsed statement node into a Statement: its kind, DDL object, COPY target, names, and the facts the Analyzer collects.
import { Analyzer, ROOT_CTX, funcName, refOf, relationOfObject, stringConstant } from './analyze.js';
import { flag, integerConstant, list, nameList, node, nodeOfType, num, obj, rangeVar, str, stringNode, type JsonObject, type NodeTag } from '../../sql/ast.js';
import type { CopyInfo, RelationLink, Statement, StatementKind, TableRef } from './types.js';

export type StatementFacts = Omit<Statement, 'start' | 'end'>;

const SIMPLE_KINDS: Partial<Record<NodeTag, StatementKind>> = {
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
  TruncateStmt: 'truncate',
  CommentStmt: 'comment',
  SecLabelStmt: 'comment',
  ReindexStmt: 'reindex',
  ClusterStmt: 'cluster',
  RefreshMatViewStmt: 'refresh',
  VariableShowStmt: 'show',
  ConstraintsSetStmt: 'set',
  ExecuteStmt: 'execute',
  DeallocateStmt: 'deallocate',
  ClosePortalStmt: 'close',
  ListenStmt: 'listen',
  NotifyStmt: 'notify',
  UnlistenStmt: 'unlisten',
  CallStmt: 'call',
  DoStmt: 'do',
  LockStmt: 'lock',
  DiscardStmt: 'discard',
  LoadStmt: 'load',
  CheckPointStmt: 'checkpoint',
  // Statements that are DDL but not spelled CREATE/ALTER/DROP in the node name.
  IndexStmt: 'create',
  ViewStmt: 'create',
  RuleStmt: 'create',
  DefineStmt: 'create',
  CompositeTypeStmt: 'create',
  CreatedbStmt: 'create',
  ImportForeignSchemaStmt: 'create',
  DropStmt: 'drop',
  DropdbStmt: 'drop',
  DropOwnedStmt: 'drop',
  RenameStmt: 'alter',
  ReassignOwnedStmt: 'alter',
};

/** ddlObject for statements whose node type fixes it. */
const DDL_OBJECT: Partial<Record<NodeTag, string>> = {
  IndexStmt: 'index',
  ViewStmt: 'view',
  RuleStmt: 'rule',
  CompositeTypeStmt: 'type',
  CreateEnumStmt: 'type',
  CreateRangeStmt: 'type',
  CreatedbStmt: 'database',
  DropdbStmt: 'database',
  AlterDatabaseStmt: 'database',
  AlterDatabaseSetStmt: 'database',
  AlterDatabaseRefreshCollStmt: 'database',
  ImportForeignSchemaStmt: 'foreign_table',
  DropOwnedStmt: 'owned',
  ReassignOwnedStmt: 'owned',
  CreateStmt: 'table',
  CreateForeignTableStmt: 'foreign_table',
  CreateSchemaStmt: 'schema',
  CreateSeqStmt: 'sequence',
  AlterSeqStmt: 'sequence',
  CreateRoleStmt: 'role',
  AlterRoleStmt: 'role',
  AlterRoleSetStmt: 'role',
  DropRoleStmt: 'role',
  CreateExtensionStmt: 'extension',
  AlterExtensionStmt: 'extension',
  AlterExtensionContentsStmt: 'extension',
  CreateTrigStmt: 'trigger',
  CreateEventTrigStmt: 'event_trigger',
  AlterEventTrigStmt: 'event_trigger',
  CreatePolicyStmt: 'policy',
  AlterPolicyStmt: 'policy',
  CreateDomainStmt: 'domain',
  AlterDomainStmt: 'domain',
  AlterEnumStmt: 'type',
  AlterTypeStmt: 'type',
  CreatePLangStmt: 'language',
  CreateAmStmt: 'access_method',
  CreateStatsStmt: 'statistics',
  AlterStatsStmt: 'statistics',
  CreateFdwStmt: 'foreign_data_wrapper',
  AlterFdwStmt: 'foreign_data_wrapper',
  CreateForeignServerStmt: 'server',
  AlterForeignServerStmt: 'server',
  CreateUserMappingStmt: 'user_mapping',
  AlterUserMappingStmt: 'user_mapping',
  DropUserMappingStmt: 'user_mapping',
  CreateOpClassStmt: 'operator_class',
  CreateOpFamilyStmt: 'operator_family',
  AlterOpFamilyStmt: 'operator_family',
  AlterOperatorStmt: 'operator',
  CreateConversionStmt: 'conversion',
  CreateCastStmt: 'cast',
  CreateTransformStmt: 'transform',
  CreatePublicationStmt: 'publication',
  AlterPublicationStmt: 'publication',
  CreateSubscriptionStmt: 'subscription',
  AlterSubscriptionStmt: 'subscription',
  DropSubscriptionStmt: 'subscription',
  CreateTableSpaceStmt: 'tablespace',
  DropTableSpaceStmt: 'tablespace',
  AlterTableSpaceOptionsStmt: 'tablespace',
  AlterTableMoveAllStmt: 'table',
  AlterCollationStmt: 'collation',
  AlterTSDictionaryStmt: 'text_search_dictionary',
  AlterTSConfigurationStmt: 'text_search_configuration',
  AlterSystemStmt: 'system',
  AlterDefaultPrivilegesStmt: 'default_privileges',
};

const OBJECT_NAMES: Record<string, string> = {
  OBJECT_MATVIEW: 'materialized_view',
  OBJECT_FDW: 'foreign_data_wrapper',
  OBJECT_FOREIGN_SERVER: 'server',
  OBJECT_TABCONSTRAINT: 'table_constraint',
  OBJECT_DOMCONSTRAINT: 'domain_constraint',
  OBJECT_DEFACL: 'default_privileges',
  OBJECT_LARGEOBJECT: 'large_object',
  OBJECT_STATISTIC_EXT: 'statistics',
  OBJECT_TSCONFIGURATION: 'text_search_configuration',
  OBJECT_TSDICTIONARY: 'text_search_dictionary',
  OBJECT_TSPARSER: 'text_search_parser',
  OBJECT_TSTEMPLATE: 'text_search_template',
  OBJECT_OPCLASS: 'operator_class',
  OBJECT_OPFAMILY: 'operator_family',
  OBJECT_PARAMETER_ACL: 'parameter',
};

/** 'OBJECT_FOREIGN_TABLE' → 'foreign_table'. */
export function objectName(objtype: unknown): string | undefined {
  const t = str(objtype);
  if (t === undefined) return undefined;
  return OBJECT_NAMES[t] ?? t.replace(/^OBJECT_/, '').toLowerCase();
}

/** 'CreateFooBarStmt' → 'foo_bar', for node types not in DDL_OBJECT. */
function objectFromNodeName(type: string): string {
  return type
    .replace(/^(Create|Alter|Drop)/, '')
    .replace(/Stmt$/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

const TRANSACTION_KINDS: Record<string, StatementKind> = {
  TRANS_STMT_BEGIN: 'begin',
  TRANS_STMT_START: 'begin',
  TRANS_STMT_COMMIT: 'commit',
  TRANS_STMT_ROLLBACK: 'rollback',
  TRANS_STMT_SAVEPOINT: 'savepoint',
  TRANS_STMT_RELEASE: 'release',
  TRANS_STMT_ROLLBACK_TO: 'rollback',
  TRANS_STMT_PREPARE: 'prepare_transaction',
  TRANS_STMT_COMMIT_PREPARED: 'commit',
  TRANS_STMT_ROLLBACK_PREPARED: 'rollback',
};

/** EXPLAIN's ANALYZE option is on unless clearly switched off; anything unclear counts as on (it runs). */
function explainAnalyzes(options: unknown): boolean {
  let on = false;
  for (const option of list(options)) {
    const def = nodeOfType(option, 'DefElem');
    if (def === undefined || str(def.defname) !== 'analyze') continue;
    if (def.arg === undefined) {
      on = true;
      continue;
    }
    const s = stringNode(def.arg);
    const boolean = nodeOfType(def.arg, 'Boolean');
    const integer = integerConstant(def.arg);
    if (s !== undefined) on = !['false', 'off', 'no', '0', 'f', 'n'].includes(s.toLowerCase());
    else if (boolean !== undefined) on = flag(boolean.boolval);
    else if (integer !== undefined) on = integer !== 0;
    else on = true;
  }
  return on;
}

function empty(kind: StatementKind): StatementFacts {
  return { kind, tables: [], writes: [], modifiesData: false, withoutWhere: false, unrestricted: [], functions: [], predicateColumns: [] };
}

function finish(a: Analyzer, kind: StatementKind, extra: Partial<StatementFacts> = {}): StatementFacts {
  const writes = a.writes.values();
  const unrestricted = a.unrestricted.values();
  const opaque = kind === 'do' || kind === 'call';
  const facts: StatementFacts = {
    kind,
    tables: a.tables.values(),
    writes,
    modifiesData: writes.length > 0 || opaque,
    withoutWhere: unrestricted.length > 0,
    unrestricted,
    functions: [...a.functions],
    predicateColumns: a.predicateColumns(),
    ...extra,
  };
  if (opaque) facts.opaque = true;
  if (a.setConfigNames.length > 0) facts.setConfigNames = [...a.setConfigNames];
  if (a.sqlTexts.length > 0) facts.sqlTexts = [...a.sqlTexts];
  return facts;
}

/** Facts of a statement nested in EXPLAIN/PREPARE/DECLARE, re-labelled. */
function wrapInner(inner: StatementFacts, kind: StatementKind, extra: Partial<StatementFacts>): StatementFacts {
  const { explains: _e, analyze: _a, prepares: _p, ...rest } = inner;
  return { ...rest, kind, ...extra };
}

export function describe(stmt: unknown): StatementFacts {
  const n = node(stmt);
  if (n === undefined) return empty('other');
  const [type, body] = n;
  const a = new Analyzer();
  const ctx = ROOT_CTX;

  switch (type) {
    case 'SelectStmt': {
      a.visitSelect(body, ctx);
      return obj(body.intoClause) === undefined ? finish(a, 'select') : finish(a, 'create', { ddlObject: 'table' });
    }
    case 'CopyStmt':
      return describeCopy(a, body);
    case 'ExplainStmt': {
      const inner = describe(body.query);
      if (explainAnalyzes(body.options)) return { ...inner, explains: inner.kind, analyze: true };
      // Plain EXPLAIN plans but runs nothing: no writes, no reads.
      const facts: StatementFacts = {
        ...empty('explain'),
        explains: inner.kind,
        tables: inner.tables,
        functions: inner.functions,
        predicateColumns: inner.predicateColumns,
      };
      if (inner.preparedName !== undefined) facts.preparedName = inner.preparedName;
      return facts;
    }
    case 'PrepareStmt': {
      const inner = describe(body.query);
      return wrapInner(inner, 'prepare', { prepares: inner.kind, preparedName: str(body.name) ?? '' });
    }
    case 'DeclareCursorStmt': {
      const inner = describe(body.query);
      return wrapInner(inner, 'declare', { cursorName: str(body.portalname) ?? '' });
    }
    case 'CreateTableAsStmt': {
      a.walk(body.query, ctx);
      const into = obj(body.into);
      const rel = into === undefined ? undefined : rangeVar(into.rel);
      if (rel !== undefined) a.addWrite(refOf(rel), ctx);
      const extra: Partial<StatementFacts> = { ddlObject: str(body.objtype) === 'OBJECT_MATVIEW' ? 'materialized_view' : 'table' };
      // CREATE TABLE t AS EXECUTE p: what it reads is the prepared statement's business.
      const executed = str(nodeOfType(body.query, 'ExecuteStmt')?.name);
      if (executed !== undefined) extra.preparedName = executed;
      return finish(a, 'create', extra);
    }
    case 'VariableSetStmt':
      return describeSet(body);
    case 'VariableShowStmt':
      return { ...empty('show'), setting: (str(body.name) ?? '').toLowerCase() };
    case 'TransactionStmt':
      return empty(TRANSACTION_KINDS[str(body.kind) ?? ''] ?? 'other');
    case 'FetchStmt': {
      const facts = empty(flag(body.ismove) ? 'move' : 'fetch');
      facts.cursorName = str(body.portalname) ?? '';
      return facts;
    }
    case 'ClosePortalStmt': {
      const facts = empty('close');
      const name = str(body.portalname);
      if (name !== undefined) facts.cursorName = name;
      return facts;
    }
    case 'ExecuteStmt': {
      a.walk(body.params, ctx);
      return finish(a, 'execute', { preparedName: str(body.name) ?? '' });
    }
    case 'DeallocateStmt': {
      const name = str(body.name);
      return name === undefined ? empty('deallocate') : { ...empty('deallocate'), preparedName: name };
    }
    case 'CallStmt': {
      // funccall is a bare FuncCall struct (no node wrapper), so the walk would not name it.
      const call = obj(body.funccall);
      if (call !== undefined) a.functions.add(funcName(call));
      a.walk(body, ctx);
      return finish(a, 'call');
    }
    case 'DoStmt':
      // The body is an opaque string in any procedural language; nothing in it is classified.
      return finish(a, 'do', { language: languageOf(body.args) ?? 'plpgsql' });
    case 'VacuumStmt':
      a.walk(body, ctx);
      return finish(a, flag(body.is_vacuumcmd) ? 'vacuum' : 'analyze');
    case 'GrantStmt':
      a.walk(body.objects, ctx);
      return finish(a, flag(body.is_grant) ? 'grant' : 'revoke', { ddlObject: objectName(body.objtype) ?? 'table' });
    case 'GrantRoleStmt':
      return { ...empty(flag(body.is_grant) ? 'grant' : 'revoke'), ddlObject: 'role' };
    case 'AlterDefaultPrivilegesStmt':
      return { ...empty('alter'), ddlObject: 'default_privileges' };
    default:
      return describeGeneric(a, type, body);
  }
}

function describeCopy(a: Analyzer, body: JsonObject): StatementFacts {
  const ctx = ROOT_CTX;
  const from = flag(body.is_from);
  const target: CopyInfo['target'] = flag(body.is_program) ? 'program' : str(body.filename) !== undefined ? 'file' : from ? 'stdin' : 'stdout';
  const copy: CopyInfo = { direction: from ? 'from' : 'to', target };
  a.walk(body.query, ctx);
  a.walk(body.whereClause, ctx);
  const rel = rangeVar(body.relation);
  if (rel !== undefined) {
    const ref = refOf(rel);
    a.tables.add(ref);
    if (from) a.addWrite(ref, ctx);
    else a.addUnrestricted(ref, ctx);
  }
  return finish(a, from ? 'copy_from' : 'copy_to', { copy });
}

function describeSet(body: JsonObject): StatementFacts {
  const setKind = str(body.kind);
  const name = (str(body.name) ?? '').toLowerCase();
  if (setKind === 'VAR_RESET_ALL') return { ...empty('reset'), setting: 'all' };
  if (setKind === 'VAR_RESET') return { ...empty('reset'), setting: name };
  const facts: StatementFacts = name === 'role' ? { ...empty('set_role'), setting: name }
    : name === 'session_authorization' ? { ...empty('set_session_authorization'), setting: name }
    : { ...empty('set'), setting: name };
  if (setsDefault(body)) facts.toDefault = true;
  return facts;
}

/**
 * SET x TO DEFAULT, SET SESSION AUTHORIZATION DEFAULT and SET ROLE NONE (PostgreSQL compares
 * 'none' case-sensitively) only return to what the session logged in with.
 */
function setsDefault(set: JsonObject): boolean {
  const kind = str(set.kind);
  if (kind === 'VAR_RESET' || kind === 'VAR_RESET_ALL' || kind === 'VAR_SET_DEFAULT') return true;
  const args = list(set.args);
  return str(set.name) === 'role' && kind === 'VAR_SET_VALUE' && args.length === 1 && stringConstant(args[0]) === 'none';
}

/** The `language` option of a DO block or CREATE FUNCTION (lower case), if given. */
function languageOf(options: unknown): string | undefined {
  for (const option of list(options)) {
    const def = nodeOfType(option, 'DefElem');
    if (def !== undefined && str(def.defname) === 'language') return stringNode(def.arg)?.toLowerCase();
  }
  return undefined;
}

/** The volatility options of a CREATE/ALTER FUNCTION, lower case. */
function volatilities(options: unknown): string[] {
  const out: string[] = [];
  for (const option of list(options)) {
    const def = nodeOfType(option, 'DefElem');
    if (def !== undefined && str(def.defname) === 'volatility') out.push((stringNode(def.arg) ?? 'volatile').toLowerCase());
  }
  return out;
}

/** Relations named anywhere under `tree` (a view's query, a rule's actions), without NEW/OLD. */
function relationsUnder(...trees: unknown[]): TableRef[] {
  const a = new Analyzer();
  for (const t of trees) a.walk(t, ROOT_CTX);
  return a.tables.values().filter((t) => t.schema !== undefined || (t.name !== 'new' && t.name !== 'old'));
}

/** What writing a relation reaches after this DDL runs (see RelationLink). */
function linksOf(type: NodeTag, body: JsonObject): RelationLink[] {
  const rel = rangeVar(body.relation);
  switch (type) {
    case 'ViewStmt': {
      const view = rangeVar(body.view);
      return view === undefined ? [] : [{ relation: refOf(view), reaches: relationsUnder(body.query) }];
    }
    case 'RuleStmt':
      return rel === undefined ? [] : [{ relation: refOf(rel), reaches: relationsUnder(body.actions, body.whereClause), rule: true }];
    case 'CreateTrigStmt':
      // tgtype bit 64: INSTEAD OF. Other triggers are not followed (see docs/policy.md).
      return rel === undefined || ((num(body.timing) ?? 0) & 64) === 0 ? [] : [{ relation: refOf(rel), reaches: [], instead: true }];
    case 'CreateStmt': {
      const parents = list(body.inhRelations).map(rangeVar).filter((r): r is JsonObject => r !== undefined).map(refOf);
      return rel === undefined || parents.length === 0 ? [] : [{ relation: refOf(rel), reaches: parents }];
    }
    case 'AlterTableStmt': {
      if (rel === undefined) return [];
      const out: RelationLink[] = [];
      for (const c of list(body.cmds)) {
        const cmd = nodeOfType(c, 'AlterTableCmd');
        const subtype = str(cmd?.subtype);
        if (subtype === 'AT_AttachPartition') {
          const part = rangeVar(nodeOfType(cmd?.def, 'PartitionCmd')?.name);
          if (part !== undefined) out.push({ relation: refOf(part), reaches: [refOf(rel)] });
        } else if (subtype === 'AT_AddInherit') {
          const parent = rangeVar(cmd?.def);
          if (parent !== undefined) out.push({ relation: refOf(rel), reaches: [refOf(parent)] });
        }
      }
      return out;
    }
    default:
      return [];
  }
}

/** DDL relation targets whose rows or definition change (added to writes). */
function ddlTargets(a: Analyzer, type: NodeTag, body: JsonObject): void {
  const ctx = ROOT_CTX;
  const write = (v: unknown): void => {
    const rv = rangeVar(v);
    if (rv !== undefined) a.addWrite(refOf(rv), ctx);
  };
  switch (type) {
    case 'CreateStmt':
    case 'RefreshMatViewStmt':
    case 'AlterObjectSchemaStmt':
      write(body.relation);
      break;
    case 'CreateForeignTableStmt':
      write(obj(body.base)?.relation);
      break;
    case 'ViewStmt':
      write(body.view);
      break;
    case 'CreateSeqStmt':
    case 'AlterSeqStmt':
      write(body.sequence);
      break;
    case 'AlterTableStmt':
      if (str(body.objtype) !== 'OBJECT_INDEX') write(body.relation);
      break;
    case 'RenameStmt':
      if (str(body.renameType) !== 'OBJECT_INDEX') write(body.relation);
      break;
    case 'TruncateStmt':
      for (const rel of list(body.relations)) {
        write(rel);
        const rv = rangeVar(rel);
        if (rv !== undefined) a.addUnrestricted(refOf(rv), ctx);
      }
      break;
    case 'DropStmt': {
      const objtype = str(body.removeType);
      for (const object of list(body.objects)) {
        const ref = relationOfObject(objtype, object);
        if (ref === undefined) continue;
        const onRelation = objtype === 'OBJECT_TRIGGER' || objtype === 'OBJECT_POLICY' || objtype === 'OBJECT_RULE';
        if (objtype === 'OBJECT_INDEX' || onRelation) a.tables.add(ref);
        else a.addWrite(ref, ctx);
      }
      break;
    }
    case 'CommentStmt':
    case 'SecLabelStmt': {
      const ref = relationOfObject(str(body.objtype), body.object);
      if (ref !== undefined) a.tables.add(ref);
      break;
    }
  }
}

function ddlObjectOf(type: NodeTag, body: JsonObject): string | undefined {
  switch (type) {
    case 'DropStmt':
      return objectName(body.removeType);
    case 'CommentStmt':
    case 'SecLabelStmt':
    case 'AlterTableStmt':
    case 'DefineStmt':
    case 'AlterOwnerStmt':
    case 'AlterObjectDependsStmt':
    case 'AlterFunctionStmt':
      return objectName(body.objtype);
    case 'AlterObjectSchemaStmt':
      return objectName(body.objectType);
    case 'RenameStmt':
      return objectName(body.renameType);
    case 'CreateFunctionStmt':
      return flag(body.is_procedure) ? 'procedure' : 'function';
  }
  return DDL_OBJECT[type] ?? objectFromNodeName(type);
}

function describeGeneric(a: Analyzer, type: NodeTag, body: JsonObject): StatementFacts {
  a.walk({ [type]: body }, ROOT_CTX);
  const simple = SIMPLE_KINDS[type];
  const kind: StatementKind =
    simple ?? (type.startsWith('Create') ? 'create' : type.startsWith('Alter') ? 'alter' : type.startsWith('Drop') ? 'drop' : 'other');
  ddlTargets(a, type, body);
  const extra: Partial<StatementFacts> = {};
  if (kind === 'create' || kind === 'alter' || kind === 'drop' || kind === 'comment') {
    const ddl = ddlObjectOf(type, body);
    if (ddl !== undefined) extra.ddlObject = ddl;
  }
  if (type === 'CreateFunctionStmt') {
    extra.language = languageOf(body.options) ?? 'sql';
    // Volatile unless declared otherwise, as PostgreSQL defaults it.
    const v = volatilities(body.options);
    extra.routine = { name: nameList(body.funcname).join('.'), volatile: v.length === 0 || v.includes('volatile') };
  } else if (type === 'AlterFunctionStmt' && volatilities(body.actions).includes('volatile')) {
    extra.routine = { name: nameList(obj(body.func)?.objname).join('.'), volatile: true };
  }
  const set = type === 'AlterRoleSetStmt' || type === 'AlterDatabaseSetStmt' ? obj(body.setstmt) : undefined;
  if (set !== undefined) {
    extra.setting = (str(set.name) ?? 'all').toLowerCase();
    if (setsDefault(set)) extra.toDefault = true;
  }
  const links = linksOf(type, body);
  if (links.length > 0) extra.defines = links;
  return finish(a, kind, extra);
}
