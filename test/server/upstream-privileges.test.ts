// The upstream role check against the real PostgreSQL: a superuser and a member of a server-file
// role are warned about, and the least-privilege role that docs/operator.md gives (its SQL, run as
// written) passes the check and its own verification query.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { checkUpstreamPrivileges, privilegeWarning } from '../../src/server/upstream-privileges.js';

const info = inject('pg');
const ROLE = 'phigate_lp_test';
const admin = new pg.Client({ host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password, database: 'ehr' });
const target = (user: string, password: string) => ({ host: info.host, port: info.port, user, password, database: 'ehr', tls: 'disable' as const });

/** The SQL block of the "Least-privilege upstream role" section, with the role renamed for this test. */
function operatorSql(): { setup: string; check: string; password: string } {
  const doc = readFileSync(new URL('../../docs/operator.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Least-privilege upstream role'));
  const sql = /```sql\n([\s\S]*?)```/.exec(section)?.[1];
  if (!sql) throw new Error('no SQL block in the section');
  const renamed = sql.replaceAll('phigate_svc', ROLE);
  const at = renamed.indexOf('-- Check:');
  return { setup: renamed.slice(0, at), check: renamed.slice(at), password: /PASSWORD '([^']+)'/.exec(renamed)![1]! };
}

beforeAll(async () => {
  await admin.connect();
  await admin.query(`DROP OWNED BY ${ROLE} CASCADE`).catch(() => {});
  await admin.query(`DROP ROLE IF EXISTS ${ROLE}, ${ROLE}_files`);
  await admin.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_owner') THEN CREATE ROLE app_owner; END IF; END $$`);
});
afterAll(async () => {
  await admin.query(`DROP OWNED BY ${ROLE} CASCADE`).catch(() => {});
  await admin.query(`DROP OWNED BY ${ROLE}_files CASCADE`).catch(() => {});
  await admin.query(`DROP ROLE IF EXISTS ${ROLE}, ${ROLE}_files`).catch(() => {});
  await admin.end();
});

describe('upstream role check', () => {
  it('warns about a superuser, naming the role, what it holds and the fix', async () => {
    const p = await checkUpstreamPrivileges(target(info.roles.scram.user, info.roles.scram.password));
    // A superuser passes every membership test; the warning names the superuser attribute.
    expect(p).toMatchObject({ role: info.roles.scram.user, superuser: true, serverRoles: ['pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'], createRole: false, bypassRls: false });
    expect(privilegeWarning('ehr', p)?.fields).toMatchObject({ connection: 'ehr', role: info.roles.scram.user, holds: 'superuser' });
    expect(String(privilegeWarning('ehr', p)?.fields.fix)).toMatch(/Least-privilege upstream role.*docs\/operator\.md/);
  });

  it('warns about a member of pg_read_server_files, even without INHERIT', async () => {
    await admin.query(`CREATE ROLE ${ROLE}_files LOGIN NOINHERIT PASSWORD 'files-pw'; GRANT pg_read_server_files TO ${ROLE}_files; GRANT CONNECT ON DATABASE ehr TO ${ROLE}_files`);
    const p = await checkUpstreamPrivileges(target(`${ROLE}_files`, 'files-pw'));
    expect(p).toEqual({ role: `${ROLE}_files`, superuser: false, serverRoles: ['pg_read_server_files'], createRole: false, bypassRls: false, ownedRelations: 0 });
    expect(privilegeWarning('ehr', p)?.fields).toMatchObject({ holds: 'pg_read_server_files' });
  });

  it("does not warn about the role docs/operator.md creates, whose own check query shows all false", async () => {
    const { setup, check, password } = operatorSql();
    await admin.query(setup);
    const row = (await admin.query(check)).rows[0] as Record<string, boolean>;
    expect(Object.values(row)).toEqual([false, false, false, false, false, false]);
    const p = await checkUpstreamPrivileges(target(ROLE, password));
    expect(p).toEqual({ role: ROLE, superuser: false, serverRoles: [], createRole: false, bypassRls: false, ownedRelations: 0 });
    expect(privilegeWarning('ehr', p)).toBeUndefined();
  });

  it('reports CREATEROLE, BYPASSRLS and owned tables (what `phigate doctor` warns about)', async () => {
    await admin.query(`ALTER ROLE ${ROLE}_files CREATEROLE BYPASSRLS`);
    await admin.query(`CREATE TABLE lp_owned_probe (id int); ALTER TABLE lp_owned_probe OWNER TO ${ROLE}_files`);
    try {
      const p = await checkUpstreamPrivileges(target(`${ROLE}_files`, 'files-pw'));
      expect(p).toMatchObject({ createRole: true, bypassRls: true, ownedRelations: 1 });
    } finally {
      await admin.query('DROP TABLE lp_owned_probe');
    }
  });
});
