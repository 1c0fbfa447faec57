// kill -9 of the gateway under load loses no evidence: after a restart the audit log verifies, and
// every statement PostgreSQL executed (log_statement=all) has its audit record.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import { startTestIdp, type TestIdp } from '../support/oidc.js';
import { run, type Proc } from '../support/proc.js';
import { runCmd } from '../support/clients.js';
import { verifyLog } from '../../src/audit/verify.js';

let db: { info: TestPostgres; stop: () => Promise<void> };
let idp: TestIdp;
let dir: string;
const pgLog: string[] = [];

beforeAll(async () => {
  db = await startTestPostgres({ onLog: (l) => pgLog.push(l), flags: ['-c', 'log_statement=all', '-c', 'log_line_prefix=%a|'] });
  idp = await startTestIdp({ identities: { alice: ['engineering'] } });
  dir = mkdtempSync(join(tmpdir(), 'phigate-crash-'));
  const role = db.info.roles.scram;
  const init = await runCmd('pgbench', ['-i', '-q', '-s', '1', '-h', db.info.host, '-p', String(db.info.port), '-U', role.user, 'ehr'],
    { env: { PGPASSWORD: role.password } });
  expect(init.code).toBe(0);
  writeFileSync(join(dir, 'p.yaml'), `version: 1
identity: { issuers: [{ issuer: "${idp.issuer}", audience: phigate }] }
connections:
  ehr: { upstream: "postgres://${role.user}@127.0.0.1:${db.info.port}/ehr", password_env: PW, tls: disable, allow_groups: [engineering] }
`);
}, 120_000);
afterAll(async () => {
  await idp?.close();
  await db?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function startServer(): Proc {
  return run(['server', '--config', join(dir, 'p.yaml'), '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'), '--log-level', 'warn'],
    { PW: db.info.roles.scram.password });
}

describe('crash under load', () => {
  it('kill -9 during pgbench: the log verifies and covers every executed statement', async () => {
    const server = startServer();
    const url = (await server.waitFor(/listening on (http:\/\/[\d.:]+)/))[1]!;
    const connect = run(['connect', 'ehr', '--server', url], { PHIGATE_TOKEN: await idp.mint('alice') });
    const port = Number((await connect.waitFor(/port=(\d+)/))[1]);
    const bench = runCmd('pgbench', ['-n', '-S', '-c', '4', '-T', '30', '-h', '127.0.0.1', '-p', String(port), '-U', 'alice', 'ehr'], { timeoutMs: 60_000 });
    // Killed once the load is under way (a fixed delay found none on a busy machine); the kill ends pgbench's sessions.
    const executedSoFar = (): number => pgLog.join('').split('\n').filter((l) => /statement: SELECT abalance FROM pgbench_accounts WHERE aid =/.test(l)).length;
    for (let i = 0; i < 300 && executedSoFar() < 200; i++) await new Promise((r) => setTimeout(r, 100));
    server.proc.kill('SIGKILL');
    await server.exited;
    await bench;
    await connect.stop();

    // restart on the same data directory: a torn tail is repaired (and the repair recorded)
    const again = startServer();
    await again.waitFor(/listening on/);
    await again.stop('SIGTERM');

    const auditDir = join(dir, 'data', 'audit');
    const report = await verifyLog(auditDir);
    expect(report.problems).toEqual([]);
    const records = readFileSync(join(auditDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const recorded = records.filter((r) => r['type'] === 'statement' && String(r['sql']).startsWith('SELECT abalance FROM pgbench_accounts WHERE aid =')).length;
    await new Promise((r) => setTimeout(r, 300)); // let PostgreSQL's last log lines arrive
    const executed = pgLog.join('').split('\n').filter((l) => /statement: SELECT abalance FROM pgbench_accounts WHERE aid =/.test(l)).length;
    expect(executed).toBeGreaterThan(100);
    expect(recorded).toBeGreaterThanOrEqual(executed);
    expect(records.some((r) => r['type'] === 'server.start')).toBe(true);
  });
});
