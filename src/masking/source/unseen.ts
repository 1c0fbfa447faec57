// Refuses, for readers who see masked values, what the source rewrite cannot see into: functions and operators whose code or data path is out of sight, code-defining statements, and settings that echo statement text.
//
// The rewriter replaces masked tables where the statement names them. Anything that reads data some
// other way (SQL given as text, tables or files named by argument, bodies of user-defined functions,
// procedures, aggregates, operators, triggers, rules, policies, foreign tables, replication) would see
// raw values, and anything that shows statement text would show the HMAC pads of the rewrite. One walk
// over the parse tree (libpg-query JSON of one RawStmt's stmt) finds the first such thing:
// - every FuncCall (anywhere: targets, FROM, ROWS FROM, WHERE, CTEs, defaults, CHECK, CALL, FILTER,
//   window and aggregate ORDER BY, JSON_TABLE/XMLTABLE arguments, VALUES, RETURNING, ON CONFLICT):
//   a built-in must be on the allow-list (allowed-functions.ts), unqualified only when no
//   user-defined function of that name could be chosen by the search_path; anything else must be
//   listed under functions in the policy;
// - every name that attribute notation could turn into a call: PostgreSQL reads `t.f`, `s.t.f` and
//   `(x).f` as f(t) / f(x) when t or x has no column or field f, so `(1::oid).lo_get` calls lo_get and
//   `p.get_ssn` calls get_ssn(p). Such a name is refused when it is a denied built-in that takes an
//   ordinary argument or a user-defined function the policy does not list unqualified (a column that
//   happens to share that name is refused with it: phigate cannot tell them apart without the catalog);
// - every operator written or implied by name (A_Expr, OPERATOR(schema.op), ANY/ALL sublinks,
//   ORDER BY ... USING, BETWEEN, IN, LIKE, NULLIF, IS DISTINCT FROM, CASE x WHEN, JOIN USING,
//   exclusion constraints) whose symbol has a SQL or procedural definition outside pg_catalog;
// - statements that define code or foreign data paths (DO, CREATE/ALTER FUNCTION, TRIGGER, RULE, ...);
// - settings that make the server send statement text or plans to the client.
//
// Not seen here (the lead's or the catalog's concern): operators and casts that PostgreSQL picks
// without a name (ORDER BY, GROUP BY, DISTINCT, set operations, index scans use the type's default
// operator class; assignment and implicit casts), and code that runs because of the table rather than
// the statement (triggers, rules, policies, defaults, domain checks, views' bodies).
import { flag, list, nameList, node, obj, str, stringNode, type JsonObject, type NodeTag } from '../../sql/ast.js';
import { ALLOWED_FUNCTIONS, DENIED_BY_ATTRIBUTE, DENIED_FUNCTIONS } from './allowed-functions.js';

export interface UnseenContext {
  /** Names (lower-case, unqualified) of every function, procedure and aggregate outside pg_catalog and information_schema in the database. */
  userFunctions: ReadonlySet<string>;
  /** Policy-listed functions masked readers may call, as PostgreSQL spells them: 'schema.name' or 'name' (any schema). */
  allowedUserFunctions: ReadonlySet<string>;
  /** Operator symbols that have a definition outside pg_catalog backed by a function in a language other than C or internal. */
  untrustedOperators: ReadonlySet<string>;
}

/** Rows (name) for UnseenContext.userFunctions. */
export const USER_FUNCTIONS_SQL = `SELECT DISTINCT lower(p.proname) AS name
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`;

/**
 * Rows (name) for UnseenContext.untrustedOperators: operators outside pg_catalog whose function is
 * neither C nor internal, unless it is one of pg_catalog's own SQL functions (textanycat, ...).
 */
export const UNTRUSTED_OPERATORS_SQL = `SELECT DISTINCT o.oprname AS name
  FROM pg_catalog.pg_operator o
  JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
 WHERE o.oprnamespace <> 'pg_catalog'::pg_catalog.regnamespace
   AND p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace
   AND l.lanname NOT IN ('c', 'internal')`;

export interface Refusal {
  code: '42501';
  message: string;
}

const FOR_MASKED = 'is not allowed for readers who see masked values';

function refusal(message: string): Refusal {
  return { code: '42501', message: `phigate: ${message}` };
}

// --- functions ---------------------------------------------------------------------------------

function builtinRefusal(display: string, name: string): Refusal {
  const reason = DENIED_FUNCTIONS.get(name);
  if (reason !== undefined) return refusal(`function ${display} ${FOR_MASKED}: ${reason}`);
  return refusal(
    `function ${display} ${FOR_MASKED}: it is neither on phigate's list of reviewed built-in functions nor listed under functions in the policy`,
  );
}

function userRefusal(display: string): Refusal {
  return refusal(
    `user-defined function ${display} is not listed under functions in the policy: phigate cannot see what it reads, so readers who see masked values may not call it`,
  );
}

/** A call of the function named by `names` (as FuncCall.funcname spells it), or why not. */
export function functionReason(names: readonly string[], ctx: UnseenContext): Refusal | undefined {
  const name = names[names.length - 1];
  if (name === undefined) return refusal(`a function call without a name ${FOR_MASKED}`);
  // catalog.schema.name: PostgreSQL insists the catalog is the current database, so the schema decides.
  const schema = names.length >= 2 ? names[names.length - 2] : undefined;
  if (schema === 'pg_catalog') return ALLOWED_FUNCTIONS.has(name) ? undefined : builtinRefusal(`pg_catalog.${name}`, name);
  if (schema !== undefined) {
    const display = `${schema}.${name}`;
    if (ctx.allowedUserFunctions.has(display) || ctx.allowedUserFunctions.has(name)) return undefined;
    return schema === 'information_schema' ? builtinRefusal(display, name) : userRefusal(display);
  }
  // Unqualified: the search_path decides, and pg_catalog comes first only unless the session says otherwise.
  const shadowed = ctx.userFunctions.has(name.toLowerCase());
  if (DENIED_FUNCTIONS.has(name)) return builtinRefusal(name, name);
  if (ALLOWED_FUNCTIONS.has(name)) {
    if (!shadowed || ctx.allowedUserFunctions.has(name)) return undefined;
    return refusal(
      `function ${name} ${FOR_MASKED} when called without a schema: a user-defined function of that name exists and the search_path could choose it; write pg_catalog.${name}`,
    );
  }
  if (ctx.allowedUserFunctions.has(name)) return undefined;
  return shadowed ? userRefusal(name) : builtinRefusal(name, name);
}

/** A name after a dot (`t.name`, `(x).name`) that PostgreSQL may resolve as a call of name(t), or why not. */
function attributeReason(name: string, ctx: UnseenContext): Refusal | undefined {
  if (DENIED_BY_ATTRIBUTE.has(name)) {
    return refusal(`function ${name} (called as .${name}) ${FOR_MASKED}: ${DENIED_FUNCTIONS.get(name) ?? 'it is denied'}`);
  }
  if (!ctx.userFunctions.has(name.toLowerCase()) || ctx.allowedUserFunctions.has(name)) return undefined;
  return refusal(
    `.${name} ${FOR_MASKED}: it may call the user-defined function ${name}, which is not listed under functions in the policy (phigate cannot see what it reads); if ${name} is a column, select it from a subquery or under another name`,
  );
}

// --- operators ---------------------------------------------------------------------------------

function operatorReason(names: readonly string[], ctx: UnseenContext, implied?: string): Refusal | undefined {
  const symbol = names[names.length - 1];
  if (symbol === undefined) return undefined;
  const schema = names.length >= 2 ? names[names.length - 2] : undefined;
  if (schema === 'pg_catalog' || !ctx.untrustedOperators.has(symbol)) return undefined;
  const display = schema === undefined ? symbol : `OPERATOR(${schema}.${symbol})`;
  const how = implied === undefined ? '' : ` (implied by ${implied})`;
  const fix = schema === undefined ? `; write OPERATOR(pg_catalog.${symbol}) for the built-in one` : '';
  return refusal(
    `operator ${display}${how} ${FOR_MASKED}: a user-defined operator ${symbol} runs a SQL or procedural function that phigate cannot see into${fix}`,
  );
}

const BETWEEN_KINDS = new Set(['AEXPR_BETWEEN', 'AEXPR_NOT_BETWEEN', 'AEXPR_BETWEEN_SYM', 'AEXPR_NOT_BETWEEN_SYM']);
// BETWEEN is spelled as a keyword in A_Expr.name; PostgreSQL looks up these operators by name for it.
const BETWEEN_OPERATORS = [['<='], ['>='], ['<'], ['>']];

function aExprReason(body: JsonObject, ctx: UnseenContext): Refusal | undefined {
  if (BETWEEN_KINDS.has(str(body.kind) ?? '')) {
    for (const op of BETWEEN_OPERATORS) {
      const r = operatorReason(op, ctx, 'BETWEEN');
      if (r !== undefined) return r;
    }
    return undefined;
  }
  return operatorReason(nameList(body.name), ctx);
}

// --- statements --------------------------------------------------------------------------------

const CODE = 'it defines code that runs out of sight of phigate\'s rewrite';
const FOREIGN = 'foreign data is read and written out of sight of phigate\'s rewrite';
const REPLICATION = 'replication copies data out of sight of phigate\'s rewrite';
const SERVER_CODE = 'it installs or loads server code that runs out of sight of phigate\'s rewrite';

/** Statement node → [what, why]. */
const REFUSED_STATEMENTS: ReadonlyMap<string, readonly [string, string]> = new Map([
  ['DoStmt', ['a DO block', 'it runs procedural code that phigate cannot see into']],
  ['AlterFunctionStmt', ['ALTER FUNCTION', CODE]],
  ['AlterObjectDependsStmt', ['ALTER ... DEPENDS ON EXTENSION', CODE]],
  ['AlterOperatorStmt', ['ALTER OPERATOR', CODE]],
  ['CreateCastStmt', ['CREATE CAST', CODE]],
  ['CreateTrigStmt', ['CREATE TRIGGER', CODE]],
  ['CreateEventTrigStmt', ['CREATE EVENT TRIGGER', CODE]],
  ['AlterEventTrigStmt', ['ALTER EVENT TRIGGER', CODE]],
  ['RuleStmt', ['CREATE RULE', CODE]],
  ['CreatePolicyStmt', ['CREATE POLICY', CODE]],
  ['AlterPolicyStmt', ['ALTER POLICY', CODE]],
  ['CreatePLangStmt', ['CREATE LANGUAGE', CODE]],
  ['CreateTransformStmt', ['CREATE TRANSFORM', CODE]],
  ['CreateOpClassStmt', ['CREATE OPERATOR CLASS', CODE]],
  ['CreateOpFamilyStmt', ['CREATE OPERATOR FAMILY', CODE]],
  ['AlterOpFamilyStmt', ['ALTER OPERATOR FAMILY', CODE]],
  ['CreateConversionStmt', ['CREATE CONVERSION', CODE]],
  ['AlterTypeStmt', ['ALTER TYPE ... SET', CODE]],
  ['CreateAmStmt', ['CREATE ACCESS METHOD', CODE]],
  ['CreateForeignTableStmt', ['CREATE FOREIGN TABLE', FOREIGN]],
  ['CreateForeignServerStmt', ['CREATE SERVER', FOREIGN]],
  ['AlterForeignServerStmt', ['ALTER SERVER', FOREIGN]],
  ['CreateUserMappingStmt', ['CREATE USER MAPPING', FOREIGN]],
  ['AlterUserMappingStmt', ['ALTER USER MAPPING', FOREIGN]],
  ['CreateFdwStmt', ['CREATE FOREIGN DATA WRAPPER', FOREIGN]],
  ['AlterFdwStmt', ['ALTER FOREIGN DATA WRAPPER', FOREIGN]],
  ['ImportForeignSchemaStmt', ['IMPORT FOREIGN SCHEMA', FOREIGN]],
  ['CreatePublicationStmt', ['CREATE PUBLICATION', REPLICATION]],
  ['AlterPublicationStmt', ['ALTER PUBLICATION', REPLICATION]],
  ['CreateSubscriptionStmt', ['CREATE SUBSCRIPTION', REPLICATION]],
  ['AlterSubscriptionStmt', ['ALTER SUBSCRIPTION', REPLICATION]],
  ['CreateExtensionStmt', ['CREATE EXTENSION', SERVER_CODE]],
  ['AlterExtensionStmt', ['ALTER EXTENSION', SERVER_CODE]],
  ['AlterExtensionContentsStmt', ['ALTER EXTENSION', SERVER_CODE]],
  ['LoadStmt', ['LOAD', SERVER_CODE]],
]);

/** DefineStmt kinds that name functions or read server files; collations, text search configurations and dictionaries, and shell types do not. */
const REFUSED_DEFINE: ReadonlyMap<string, string> = new Map([
  ['OBJECT_AGGREGATE', 'CREATE AGGREGATE'],
  ['OBJECT_OPERATOR', 'CREATE OPERATOR'],
  ['OBJECT_TYPE', 'CREATE TYPE with support functions'],
  ['OBJECT_TSPARSER', 'CREATE TEXT SEARCH PARSER'],
  ['OBJECT_TSTEMPLATE', 'CREATE TEXT SEARCH TEMPLATE'],
]);

/** Object kinds whose rename, owner or schema change alters code or foreign data paths. */
const CODE_OBJECTS: ReadonlyMap<string, string> = new Map([
  ['OBJECT_FUNCTION', 'FUNCTION'],
  ['OBJECT_PROCEDURE', 'PROCEDURE'],
  ['OBJECT_ROUTINE', 'ROUTINE'],
  ['OBJECT_AGGREGATE', 'AGGREGATE'],
  ['OBJECT_OPERATOR', 'OPERATOR'],
  ['OBJECT_OPCLASS', 'OPERATOR CLASS'],
  ['OBJECT_OPFAMILY', 'OPERATOR FAMILY'],
  ['OBJECT_CONVERSION', 'CONVERSION'],
  ['OBJECT_TRIGGER', 'TRIGGER'],
  ['OBJECT_EVENT_TRIGGER', 'EVENT TRIGGER'],
  ['OBJECT_RULE', 'RULE'],
  ['OBJECT_POLICY', 'POLICY'],
  ['OBJECT_LANGUAGE', 'LANGUAGE'],
  ['OBJECT_TRANSFORM', 'TRANSFORM'],
  ['OBJECT_FOREIGN_TABLE', 'FOREIGN TABLE'],
  ['OBJECT_FOREIGN_SERVER', 'SERVER'],
  ['OBJECT_FDW', 'FOREIGN DATA WRAPPER'],
  ['OBJECT_PUBLICATION', 'PUBLICATION'],
  ['OBJECT_SUBSCRIPTION', 'SUBSCRIPTION'],
  ['OBJECT_EXTENSION', 'EXTENSION'],
]);

function statementRefusal(what: string, why: string): Refusal {
  return refusal(`${what} ${FOR_MASKED}: ${why}`);
}

function alterObjectReason(verb: string, kind: string | undefined): Refusal | undefined {
  const object = kind === undefined ? undefined : CODE_OBJECTS.get(kind);
  return object === undefined ? undefined : statementRefusal(`ALTER ${object} ... ${verb}`, CODE);
}

// --- settings ----------------------------------------------------------------------------------

const QUIET_CLIENT_MESSAGES = new Set(['notice', 'warning', 'error']);
const OFF = new Set(['off', 'false', 'no', '0', 'f', 'n', 'of']);
const TREE_SETTINGS = new Set(['debug_print_parse', 'debug_print_rewritten', 'debug_print_plan']);

/** Text of a constant (through casts), or undefined when it is not one. */
function constantText(v: unknown): string | undefined {
  const n = node(v);
  if (n === undefined) return undefined;
  const [type, body] = n;
  if (type === 'TypeCast') return constantText(body.arg);
  if (type === 'String') return str(body.sval) ?? '';
  if (type !== 'A_Const' || flag(body.isnull)) return undefined;
  const s = obj(body.sval);
  if (s !== undefined) return str(s.sval) ?? '';
  const i = obj(body.ival);
  if (i !== undefined) return String(typeof i.ival === 'number' ? i.ival : 0);
  const b = obj(body.boolval);
  if (b !== undefined) return b.boolval === true ? 'true' : 'false';
  return undefined;
}

/** Why setting `name` to `value` (undefined: not a constant) would echo statement text, if it would. */
function settingReason(name: string, value: string | undefined): Refusal | undefined {
  const setting = name.toLowerCase();
  const v = value?.trim().toLowerCase();
  if (setting === 'client_min_messages' && (v === undefined || !QUIET_CLIENT_MESSAGES.has(v))) {
    return refusal(
      `setting client_min_messages to ${value ?? 'a computed value'} ${FOR_MASKED}: below NOTICE the server sends log lines that quote statement text, which holds the secrets of phigate's rewrite`,
    );
  }
  if (TREE_SETTINGS.has(setting) && (v === undefined || !OFF.has(v))) {
    return refusal(
      `setting ${setting} ${FOR_MASKED}: the server would send parse trees and plans, which hold the statement's literals`,
    );
  }
  return undefined;
}

function variableSetReason(set: JsonObject | undefined): Refusal | undefined {
  if (set === undefined || str(set.kind) !== 'VAR_SET_VALUE') return undefined;
  const name = str(set.name);
  if (name === undefined) return undefined;
  const args = list(set.args);
  return settingReason(name, args.length === 1 ? constantText(args[0]) : undefined);
}

/** set_config(name, value, is_local) changes a setting that only its arguments name. */
function setConfigReason(names: readonly string[], args: unknown): Refusal | undefined {
  const fn = names[names.length - 1];
  if (fn !== 'set_config' || (names.length >= 2 && names[names.length - 2] !== 'pg_catalog')) return undefined;
  const [nameArg, valueArg] = list(args);
  const name = constantText(nameArg);
  if (name === undefined) {
    return refusal(`set_config with a computed setting name ${FOR_MASKED}: phigate cannot see which setting it changes`);
  }
  return settingReason(name, constantText(valueArg));
}

// --- the walk ----------------------------------------------------------------------------------

function callReason(call: JsonObject, ctx: UnseenContext): Refusal | undefined {
  const names = nameList(call.funcname);
  return functionReason(names, ctx) ?? setConfigReason(names, call.args);
}

function nodeReason(type: string, body: JsonObject, ctx: UnseenContext): Refusal | undefined {
  switch (type) {
    case 'FuncCall':
      return callReason(body, ctx);
    case 'CallStmt': {
      // CallStmt.funccall is typed FuncCall in C, so the JSON carries it without the node wrapper.
      const call = obj(body.funccall);
      return call === undefined ? refusal(`a CALL without a procedure ${FOR_MASKED}`) : callReason(call, ctx);
    }
    case 'ColumnRef': {
      // a.b, s.t.b, db.s.t.b: the last name may be a function of the row (a single name never is).
      const fields = list(body.fields);
      if (fields.length < 2) return undefined;
      const last = stringNode(fields[fields.length - 1]);
      return last === undefined ? undefined : attributeReason(last, ctx);
    }
    case 'A_Indirection':
      // (x).f.g: every field name may be a function of what precedes it.
      for (const item of list(body.indirection)) {
        const name = stringNode(item);
        const r = name === undefined ? undefined : attributeReason(name, ctx);
        if (r !== undefined) return r;
      }
      return undefined;
    case 'A_Expr':
      return aExprReason(body, ctx);
    case 'SubLink': {
      // x IN (SELECT ...) is an ANY sublink without operName; PostgreSQL then looks up = by name.
      const names = nameList(body.operName);
      if (names.length > 0) return operatorReason(names, ctx);
      return str(body.subLinkType) === 'ANY_SUBLINK' ? operatorReason(['='], ctx, 'IN (SELECT ...)') : undefined;
    }
    case 'SortBy':
      return operatorReason(nameList(body.useOp), ctx);
    case 'CaseExpr':
      return body.arg === undefined ? undefined : operatorReason(['='], ctx, 'CASE x WHEN');
    case 'JoinExpr':
      return list(body.usingClause).length > 0 || flag(body.isNatural) ? operatorReason(['='], ctx, 'JOIN USING') : undefined;
    case 'Constraint': {
      // EXCLUDE USING gist (c WITH op): each item is [IndexElem, operator name list].
      for (const item of list(body.exclusions)) {
        const pair = listOf(item);
        const r = operatorReason(nameList(listOf(pair[1])), ctx, 'EXCLUDE');
        if (r !== undefined) return r;
      }
      return undefined;
    }
    case 'VariableSetStmt':
      return variableSetReason(body);
    case 'AlterSystemStmt':
    case 'AlterRoleSetStmt':
    case 'AlterDatabaseSetStmt':
      // setstmt is typed VariableSetStmt in C: no node wrapper, so the walk would not recognise it.
      return variableSetReason(obj(body.setstmt));
    case 'CreateFunctionStmt': {
      const what = `${flag(body.replace) ? 'CREATE OR REPLACE' : 'CREATE'} ${flag(body.is_procedure) ? 'PROCEDURE' : 'FUNCTION'}`;
      return statementRefusal(what, CODE);
    }
    case 'DefineStmt': {
      const kind = str(body.kind);
      const what = kind === undefined ? undefined : REFUSED_DEFINE.get(kind);
      // CREATE TYPE name; (a shell type) names no function.
      if (what === undefined || (kind === 'OBJECT_TYPE' && list(body.definition).length === 0)) return undefined;
      return statementRefusal(what, CODE);
    }
    case 'CreateRangeStmt':
      for (const param of list(body.params)) {
        const def = node(param);
        if (def === undefined || def[0] !== 'DefElem') continue;
        const option = str(def[1].defname)?.toLowerCase();
        if (option !== 'subtype_diff' && option !== 'canonical') continue;
        const typeName = node(def[1].arg);
        const r = functionReason(typeName === undefined ? [] : nameList(typeName[1].names), ctx);
        if (r !== undefined) return r;
      }
      return undefined;
    case 'AlterTableStmt':
      return str(body.objtype) === 'OBJECT_FOREIGN_TABLE' ? statementRefusal('ALTER FOREIGN TABLE', FOREIGN) : undefined;
    case 'RenameStmt':
      // relationType is only meaningful for columns and constraints (it defaults to the first enum value otherwise).
      if (str(body.relationType) === 'OBJECT_FOREIGN_TABLE' && str(body.renameType) !== 'OBJECT_FOREIGN_TABLE') {
        return statementRefusal('ALTER FOREIGN TABLE ... RENAME', FOREIGN);
      }
      return alterObjectReason('RENAME', str(body.renameType));
    case 'AlterOwnerStmt':
      return alterObjectReason('OWNER TO', str(body.objectType));
    case 'AlterObjectSchemaStmt':
      return alterObjectReason('SET SCHEMA', str(body.objectType));
    default: {
      const refused = REFUSED_STATEMENTS.get(type);
      return refused === undefined ? undefined : statementRefusal(refused[0], refused[1]);
    }
  }
}

/** Items of a List node (or of a plain array). */
function listOf(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  const n = node(v);
  return n !== undefined && n[0] === 'List' ? list(n[1].items) : [];
}

/** Node types that hold no expression: the walk does not descend into them. */
const LEAVES = new Set<NodeTag>(['String', 'Integer', 'Float', 'Boolean', 'BitString', 'A_Const', 'ParamRef', 'A_Star', 'SQLValueFunction']);

function walk(v: unknown, ctx: UnseenContext): Refusal | undefined {
  if (Array.isArray(v)) {
    for (const item of v) {
      if (typeof item !== 'object' || item === null) continue;
      const r = walk(item, ctx);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  const o = v as JsonObject;
  const keys = Object.keys(o);
  // A node wrapper has exactly one key, the upper-case type name (see ast.ts `node`).
  if (keys.length === 1) {
    const type = keys[0]!;
    const code = type.charCodeAt(0);
    const body = o[type];
    if (code >= 65 && code <= 90 && typeof body === 'object' && body !== null && !Array.isArray(body)) {
      const r = nodeReason(type, body, ctx);
      if (r !== undefined || LEAVES.has(type as NodeTag)) return r;
      return walkFields(body, ctx);
    }
  }
  return walkFields(o, ctx, keys);
}

function walkFields(o: JsonObject, ctx: UnseenContext, keys: string[] = Object.keys(o)): Refusal | undefined {
  for (const key of keys) {
    const value = o[key];
    if (typeof value !== 'object' || value === null) continue;
    const r = walk(value, ctx);
    if (r !== undefined) return r;
  }
  return undefined;
}

/**
 * Why a reader who sees masked values may not run this statement (one RawStmt's `stmt` node of
 * libpg-query's JSON), or undefined. The answer depends only on the tree and the context, so callers
 * may cache it per statement shape and context version.
 */
export function unseenReason(tree: unknown, ctx: UnseenContext): Refusal | undefined {
  return walk(tree, ctx);
}
