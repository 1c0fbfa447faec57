// Does a connection's upstream role reach past the database into the server it runs on? The
// server-access baseline (policy/server-access.ts) refuses what phigate can see, but function
// bodies and DO blocks run with the upstream role's privileges unseen; a superuser, or a member of
// pg_execute_server_program / pg_read_server_files / pg_write_server_files, can run programs and
// read or write files through them. The gateway checks each connection at start (and when its
// catalog first loads) and warns; docs/operator.md gives the least-privilege role to use instead.
import { runSqlSets } from './simple-query.js';
import type { UpstreamTarget } from './upstream.js';
import type { LogFields } from '../common/log.js';

export const SERVER_ROLES = ['pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'] as const;

export interface UpstreamPrivileges {
  role: string;
  superuser: boolean;
  /** The SERVER_ROLES the role is a member of (directly or not, with or without INHERIT). */
  serverRoles: string[];
  /** CREATEROLE: may create roles and grant them memberships (`phigate doctor` warns). */
  createRole: boolean;
  /** BYPASSRLS: row-level security policies do not apply to it. */
  bypassRls: boolean;
  /** Tables, views and sequences outside the system schemas it owns: an owner can add triggers, rules and views to them. */
  ownedRelations: number;
}

/** MEMBER, not USAGE: a member without INHERIT can still SET ROLE to it from code phigate cannot see. */
const PRIVILEGES_SQL = `SELECT r.rolname, r.rolsuper,
  (SELECT pg_catalog.string_agg(b.rolname, ',' ORDER BY b.rolname) FROM pg_catalog.pg_roles b
   WHERE b.rolname IN (${SERVER_ROLES.map((n) => `'${n}'`).join(', ')})
     AND pg_catalog.pg_has_role(r.oid, b.oid, 'MEMBER')),
  r.rolcreaterole, r.rolbypassrls,
  (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%')
FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER`;

export async function checkUpstreamPrivileges(target: UpstreamTarget): Promise<UpstreamPrivileges> {
  const sets = await runSqlSets(target, PRIVILEGES_SQL, 'phigate-privilege-check');
  const row = sets[0]?.[0];
  if (row === undefined) throw new Error('the upstream role was not found in pg_roles');
  const [role, superuser, roles, createRole, bypassRls, owned] = row;
  return {
    role: role ?? '', superuser: superuser === 't', serverRoles: roles ? roles.split(',') : [],
    createRole: createRole === 't', bypassRls: bypassRls === 't', ownedRelations: Number(owned ?? 0),
  };
}

/** The warning to log for a connection, or undefined when its role holds none of these. */
export function privilegeWarning(connection: string, p: UpstreamPrivileges): { message: string; fields: LogFields } | undefined {
  if (!p.superuser && p.serverRoles.length === 0) return undefined;
  const holds = p.superuser ? 'superuser' : p.serverRoles.join(',');
  return {
    message: 'upstream role can run programs or reach files on the database server: code phigate cannot see (function bodies, DO blocks) runs with its privileges',
    fields: {
      connection, role: p.role, holds,
      fix: `connect as a role without ${p.superuser ? 'SUPERUSER' : 'these roles'}: see "Least-privilege upstream role" in docs/operator.md`,
    },
  };
}
