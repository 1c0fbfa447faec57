// The whole approvals path through the real server process: psql's DELETE is held by an approve
// rule, shows up in `phigate approvals` for bob (literals redacted), the requester cannot release
// it, and `phigate approve ID` as bob lets it run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { gatewayCli, startGateway, type Gw } from '../support/harness.js';
import { psql } from '../support/clients.js';
import type { ApprovalsReport } from '../../src/cli/commands/approvals.js';

const RULES = `rules:
  - name: phi-writes
    when: { statement: [delete], tables: [apr_patients] }
    action: approve
    approvers: [privacy-officers]
    timeout: 2m
default: allow
`;

let gw: Gw;
let admin: pg.Client;

beforeAll(async () => {
  gw = await startGateway({ policy: RULES });
  admin = new pg.Client({ host: gw.pg.host, port: gw.pg.port, user: gw.pg.superuser.user, password: gw.pg.superuser.password, database: 'ehr' });
  await admin.connect();
  await admin.query('DROP TABLE IF EXISTS apr_patients; CREATE TABLE apr_patients (id int, name text); GRANT ALL ON apr_patients TO PUBLIC');
  await admin.query("INSERT INTO apr_patients VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Edsger')");
});
afterAll(async () => {
  await admin?.query('DROP TABLE IF EXISTS apr_patients').catch(() => {});
  await admin?.end();
  await gw?.close();
});

const cli = (name: string, args: string[]): ReturnType<typeof gatewayCli> => gatewayCli(gw, name, args);

describe('a held statement through psql', () => {
  it('waits for bob, who sees it redacted and approves it with the CLI; then it runs', async () => {
    const { port } = await gw.connect('ehr', await gw.token('alice'));
    const held = psql(port, ['-c', "DELETE FROM apr_patients WHERE name = 'Grace'"], { timeoutMs: 60_000 });

    let id: string | undefined;
    let statement = '';
    const until = Date.now() + 20_000;
    while (!id && Date.now() < until) {
      const r = await cli('bob', ['approvals', '--json']);
      expect(r.code).toBe(0);
      const a = (JSON.parse(r.stdout) as ApprovalsReport).approvals.find((x) => x.rule === 'phi-writes' && x.connection === 'ehr');
      if (a) ({ id, statement } = a);
      else await new Promise((res) => setTimeout(res, 200));
    }
    expect(id).toMatch(/^apr-/);
    expect(statement).toMatch(/^DELETE FROM apr_patients WHERE name = /);
    expect(statement).not.toContain('Grace');

    // The requester cannot release their own statement.
    const self = await cli('alice', ['approve', id!]);
    expect(self.code).toBe(4);
    expect((await admin.query('SELECT count(*)::int AS n FROM apr_patients')).rows[0].n).toBe(3);

    const ok = await cli('bob', ['approve', id!, '--reason', 'GDPR erasure request 17']);
    expect(ok.code).toBe(0);
    const r = await held;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('DELETE 1');
    expect((await admin.query('SELECT name FROM apr_patients ORDER BY id')).rows.map((x: { name: string }) => x.name)).toEqual(['Ada', 'Edsger']);
  });
});
