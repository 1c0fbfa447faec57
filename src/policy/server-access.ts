// The server-access baseline (docs/policy.md `server_access`): what no reader may make the database server do, whatever
// the rules say, unless the policy's `server_access:` section lifts it for named groups. Pure.
//
// Each capability is something that reaches past the database into the server it runs on (files,
// programs, configuration, installed code), changes who the session acts as, or connects onwards.
// The baseline is checked on what the classifier sees; code it cannot see (function bodies, DO
// blocks in a trusted language) runs with the upstream role's privileges, which is why
// docs/operator.md asks for an upstream role that holds none of these (the server warns at start).
import type { Node } from 'yaml';
import type { Reader } from './yaml-reader.js';
import { classify, type CopyInfo } from './classify/index.js';

export const SERVER_CAPABILITIES = ['files', 'programs', 'alter_system', 'extensions', 'roles', 'remote'] as const;
export type ServerCapability = (typeof SERVER_CAPABILITIES)[number];

/** Groups allowed each capability; an empty list (the default) means nobody. */
export type ServerAccess = Readonly<Record<ServerCapability, readonly string[]>>;

export const NO_SERVER_ACCESS: ServerAccess = Object.freeze({
  files: [], programs: [], alter_system: [], extensions: [], roles: [], remote: [],
});

/** The statement facts the baseline looks at (a subset of the classifier's Statement). */
export interface BaselineFacts {
  kind: string;
  functions: readonly string[];
  copy?: CopyInfo;
  ddlObject?: string;
  language?: string;
  setting?: string;
  toDefault?: true;
  setConfigNames?: readonly (string | null)[];
  sqlTexts?: readonly (string | null)[];
  writes?: readonly { schema?: string; name: string }[];
}

export interface BaselineRefusal {
  capability: ServerCapability;
  /** Fit for the client's error message: what the statement would do, and how the policy lifts it. */
  reason: string;
}

/** Functions that read, write or list files on the database server (core and adminpack). */
const FILE_FUNCTIONS = new Set([
  'pg_read_file', 'pg_read_binary_file', 'pg_stat_file', 'pg_ls_dir', 'lo_import', 'lo_export',
  'pg_file_write', 'pg_file_rename', 'pg_file_unlink', 'pg_file_sync', 'pg_logdir_ls',
]);

/**
 * Procedural languages that run inside the database's sandbox. Anything else (plpython3u, plperlu,
 * pltclu, plsh, c, internal, ...) runs code as the server's operating-system user: an allow-list,
 * so an unknown language counts as untrusted.
 */
const TRUSTED_LANGUAGES = new Set(['sql', 'plpgsql', 'plperl', 'pltcl', 'plv8', 'pljs', 'plrust']);

const ROLE_SETTINGS = new Set(['role', 'session_authorization']);

function bare(fn: string): string {
  return fn.slice(fn.lastIndexOf('.') + 1);
}

export interface BaselineNeed {
  capability: ServerCapability;
  /** What the statement would do, in words fit for the client's error message. */
  what: string;
}

/** The first capability the statement needs that the baseline withholds, with what it would do. */
export function baselineNeeds(st: BaselineFacts): BaselineNeed | undefined {
  return allNeeds(st, 0)[0];
}

/** SQL text inside SQL text (query_to_xml('select query_to_xml(...)')) is followed this deep. */
const MAX_TEXT_DEPTH = 4;

/** Every capability the statement needs, most specific first. */
function allNeeds(st: BaselineFacts, depth: number): BaselineNeed[] {
  const out: BaselineNeed[] = [];
  const need = (capability: ServerCapability, what: string): void => void out.push({ capability, what });
  const { kind, ddlObject } = st;
  const defines = kind === 'create' || kind === 'alter';
  if (st.copy?.target === 'program') need('programs', `COPY ${st.copy.direction === 'to' ? 'TO' : 'FROM'} PROGRAM runs a program on the database server`);
  if (st.language !== undefined && !TRUSTED_LANGUAGES.has(st.language) && (kind === 'do' || (kind === 'create' && (ddlObject === 'function' || ddlObject === 'procedure')))) {
    need('programs', `${kind === 'do' ? 'a DO block' : `CREATE ${(ddlObject ?? 'function').toUpperCase()}`} in language ${st.language} (not a trusted language) runs code as the database server's operating-system user`);
  }
  if (st.copy?.target === 'file') need('files', `COPY ${st.copy.direction === 'to' ? 'TO' : 'FROM'} a file ${st.copy.direction === 'to' ? 'writes' : 'reads'} a file on the database server`);
  for (const fn of st.functions) {
    const name = bare(fn);
    if (FILE_FUNCTIONS.has(name) || name.startsWith('pg_ls_')) need('files', `${name}() reaches files on the database server`);
  }
  if (kind === 'alter' && ddlObject === 'system') need('alter_system', "ALTER SYSTEM rewrites the database server's configuration");
  if (defines && ddlObject === 'extension') need('extensions', `${kind.toUpperCase()} EXTENSION installs code into the database`);
  if (kind === 'create' && ddlObject === 'language') need('extensions', 'CREATE LANGUAGE installs a procedural language into the database');
  if (kind === 'load') need('extensions', 'LOAD loads a shared library into the database server');
  if ((kind === 'set_role' || kind === 'set_session_authorization') && !st.toDefault) {
    need('roles', `${kind === 'set_role' ? 'SET ROLE' : 'SET SESSION AUTHORIZATION'} changes the database role the session acts as`);
  }
  for (const name of st.setConfigNames ?? []) {
    if (name === null) need('roles', 'set_config() with a setting name that is not a literal cannot be decided (it could change the role)');
    else if (ROLE_SETTINGS.has(name)) need('roles', `set_config('${name}', ...) changes the database role the session acts as`);
  }
  if (st.writes?.some((w) => w.name === 'pg_settings' && (w.schema === undefined || w.schema === 'pg_catalog'))) {
    need('roles', 'a write to pg_settings runs set_config() for every row it changes, so it could change the role');
  }
  if (kind === 'alter' && (ddlObject === 'role' || ddlObject === 'database') && st.setting !== undefined && ROLE_SETTINGS.has(st.setting) && !st.toDefault) {
    need('roles', `ALTER ${ddlObject.toUpperCase()} ... SET ${st.setting} changes the database role later sessions act as`);
  }
  for (const fn of st.functions) {
    if (bare(fn).startsWith('dblink')) need('remote', `${bare(fn)}() connects from the database server to another server`);
  }
  if (defines && (ddlObject === 'server' || ddlObject === 'user_mapping' || ddlObject === 'subscription')) {
    need('remote', `${kind.toUpperCase()} ${ddlObject.replace('_', ' ').toUpperCase()} sets up connections from the database server to another server`);
  }
  for (const text of st.sqlTexts ?? []) out.push(...textNeeds(text, depth));
  return out;
}

/**
 * SQL given as text to a function that runs it (query_to_xml, ts_stat, ...) is read like a
 * statement when it is a literal; anything else cannot be decided, so it needs the widest capability.
 */
function textNeeds(text: string | null, depth: number): BaselineNeed[] {
  const undecidable: BaselineNeed = {
    capability: 'programs',
    what: 'a function that runs SQL given as text (query_to_xml, ts_stat, ...) was given text phigate cannot read as a statement, so what it runs cannot be decided',
  };
  if (text === null || depth >= MAX_TEXT_DEPTH) return [undecidable];
  const c = classify(text);
  if (!c.ok) return [undecidable];
  return c.statements.flatMap((inner) => allNeeds(inner, depth + 1)).map((n) => ({ ...n, what: `in SQL text run by a function, ${n.what}` }));
}

/** Why the baseline refuses this statement for a member of `groups`, or undefined when it does not. */
export function baselineRefusal(st: BaselineFacts, groups: readonly string[], access: ServerAccess = NO_SERVER_ACCESS): BaselineRefusal | undefined {
  const need = allNeeds(st, 0).find((n) => !access[n.capability].some((g) => groups.includes(g)));
  if (need === undefined) return undefined;
  return {
    capability: need.capability,
    reason: `${need.what}; the server-access baseline allows it only for groups listed under server_access.${need.capability} in the policy`,
  };
}

/** The `server_access:` section: capability → groups. */
export function parseServerAccess(r: Reader, node: Node | null | undefined): ServerAccess {
  if (node === undefined) return NO_SERVER_ACCESS;
  const m = r.map(node, 'server_access', new Set(SERVER_CAPABILITIES));
  const out: Record<ServerCapability, readonly string[]> = { ...NO_SERVER_ACCESS };
  for (const cap of SERVER_CAPABILITIES) {
    if (m.has(cap)) out[cap] = r.strings(m.get(cap), `server_access.${cap}`);
  }
  return Object.freeze(out);
}
