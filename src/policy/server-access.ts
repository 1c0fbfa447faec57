// The server-access baseline (SPEC.md §4): what no reader may make the database server do, whatever
// the rules say, unless the policy's `server_access:` section lifts it for named groups. Pure.
//
// Each capability is something that reaches past the database into the server it runs on (files,
// programs, configuration, installed code), changes who the session acts as, or connects onwards.
// The baseline is checked on what the classifier sees; code it cannot see (function bodies, DO
// blocks in a trusted language) runs with the upstream role's privileges, which is why
// docs/operator.md asks for an upstream role that holds none of these (the server warns at start).
import type { Node } from 'yaml';
import type { Reader } from './yaml-reader.js';
import type { CopyInfo } from './classify/index.js';

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

/** The first capability the statement needs and the baseline withholds, with what it would do. */
export function baselineNeeds(st: BaselineFacts): { capability: ServerCapability; what: string } | undefined {
  const { kind, ddlObject } = st;
  const defines = kind === 'create' || kind === 'alter';
  if (st.copy?.target === 'program') return { capability: 'programs', what: `COPY ${st.copy.direction === 'to' ? 'TO' : 'FROM'} PROGRAM runs a program on the database server` };
  if (st.language !== undefined && !TRUSTED_LANGUAGES.has(st.language) && (kind === 'do' || (kind === 'create' && (ddlObject === 'function' || ddlObject === 'procedure')))) {
    return { capability: 'programs', what: `${kind === 'do' ? 'a DO block' : `CREATE ${(ddlObject ?? 'function').toUpperCase()}`} in language ${st.language} (not a trusted language) runs code as the database server's operating-system user` };
  }
  if (st.copy?.target === 'file') return { capability: 'files', what: `COPY ${st.copy.direction === 'to' ? 'TO' : 'FROM'} a file ${st.copy.direction === 'to' ? 'writes' : 'reads'} a file on the database server` };
  for (const fn of st.functions) {
    const name = bare(fn);
    if (FILE_FUNCTIONS.has(name) || name.startsWith('pg_ls_')) return { capability: 'files', what: `${name}() reaches files on the database server` };
  }
  if (kind === 'alter' && ddlObject === 'system') return { capability: 'alter_system', what: "ALTER SYSTEM rewrites the database server's configuration" };
  if (defines && ddlObject === 'extension') return { capability: 'extensions', what: `${kind.toUpperCase()} EXTENSION installs code into the database` };
  if (kind === 'create' && ddlObject === 'language') return { capability: 'extensions', what: 'CREATE LANGUAGE installs a procedural language into the database' };
  if (kind === 'load') return { capability: 'extensions', what: 'LOAD loads a shared library into the database server' };
  if ((kind === 'set_role' || kind === 'set_session_authorization') && !st.toDefault) {
    return { capability: 'roles', what: `${kind === 'set_role' ? 'SET ROLE' : 'SET SESSION AUTHORIZATION'} changes the database role the session acts as` };
  }
  for (const name of st.setConfigNames ?? []) {
    if (name === null) return { capability: 'roles', what: 'set_config() with a setting name that is not a literal cannot be decided (it could change the role)' };
    if (ROLE_SETTINGS.has(name)) return { capability: 'roles', what: `set_config('${name}', ...) changes the database role the session acts as` };
  }
  if (kind === 'alter' && (ddlObject === 'role' || ddlObject === 'database') && st.setting !== undefined && ROLE_SETTINGS.has(st.setting) && !st.toDefault) {
    return { capability: 'roles', what: `ALTER ${ddlObject.toUpperCase()} ... SET ${st.setting} changes the database role later sessions act as` };
  }
  for (const fn of st.functions) {
    if (bare(fn).startsWith('dblink')) return { capability: 'remote', what: `${bare(fn)}() connects from the database server to another server` };
  }
  if (defines && (ddlObject === 'server' || ddlObject === 'user_mapping' || ddlObject === 'subscription')) {
    return { capability: 'remote', what: `${kind.toUpperCase()} ${ddlObject.replace('_', ' ').toUpperCase()} sets up connections from the database server to another server` };
  }
  return undefined;
}

/** Why the baseline refuses this statement for a member of `groups`, or undefined when it does not. */
export function baselineRefusal(st: BaselineFacts, groups: readonly string[], access: ServerAccess = NO_SERVER_ACCESS): BaselineRefusal | undefined {
  const need = baselineNeeds(st);
  if (need === undefined) return undefined;
  const lifted = access[need.capability];
  if (lifted.some((g) => groups.includes(g))) {
    // Lifted for this capability; another capability the statement needs may still be withheld.
    return baselineRefusal({ ...st, ...without(st, need.capability) }, groups, access);
  }
  return {
    capability: need.capability,
    reason: `${need.what}; the server-access baseline allows it only for groups listed under server_access.${need.capability} in the policy`,
  };
}

/** The statement's facts with those that need `capability` taken out (so the next need shows). */
function without(st: BaselineFacts, capability: ServerCapability): Partial<BaselineFacts> {
  switch (capability) {
    case 'programs':
      return { copy: st.copy?.target === 'program' ? undefined : st.copy, language: undefined };
    case 'files':
      return { copy: st.copy?.target === 'file' ? undefined : st.copy, functions: st.functions.filter((f) => !FILE_FUNCTIONS.has(bare(f)) && !bare(f).startsWith('pg_ls_')) };
    case 'roles':
      return { setConfigNames: [], setting: undefined, toDefault: true };
    case 'remote':
      return { functions: st.functions.filter((f) => !bare(f).startsWith('dblink')), ddlObject: undefined };
    case 'alter_system':
    case 'extensions':
      return { ddlObject: undefined, kind: st.kind === 'load' ? 'other' : st.kind };
  }
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
