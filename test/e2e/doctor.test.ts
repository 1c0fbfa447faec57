// `phigate doctor` against real components: the test PostgreSQL (TLS, a least-privilege role, a
// superuser, a shared store) and real OpenID Providers. A good configuration passes every check; an
// unreachable database, a wrong password, a superuser role and bad issuer URLs each give the right
// fail line with a fix, exit 1, and neither passwords nor tokens are ever printed.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import pg from 'pg';
import { run } from '../support/proc.js';
import { startTestIdp, type TestIdp } from '../support/oidc.js';
import { freePort, scratchDatabase, type ScratchDatabase } from '../support/postgres.js';
import { makeTestCerts } from '../support/certs.js';
import { IDENTITIES, startGateway } from '../support/harness.js';
import { SharedDatabase } from '../../src/store/shared-db.js';

const info = inject('pg');
const ROLE = 'phigate_doctor_svc';
const ROLE_PW = 'doctor-svc-pw-Ω-7';
const WRONG_PW = 'wrong-pw-Zq93x';

interface Check { check: string; subject?: string; status: 'ok' | 'warn' | 'fail'; message: string; fix?: string }
interface Report { ok: boolean; summary: { ok: number; warn: number; fail: number }; checks: Check[] }

let idp: TestIdp;
let noDeviceIdp: TestIdp;
let store: ScratchDatabase;
let dir: string;
const admin = new pg.Client({ host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password, database: 'ehr' });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'phigate-doctor-'));
  idp = await startTestIdp({ identities: IDENTITIES, deviceFlow: true });
  noDeviceIdp = await startTestIdp({ identities: { alice: ['engineering'] } });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS ${ROLE}`);
  await admin.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${ROLE_PW}' NOSUPERUSER NOCREATEROLE NOBYPASSRLS; GRANT CONNECT ON DATABASE ehr TO ${ROLE}`);
  store = await scratchDatabase(info, 'phigate_doctor_store');
  // A store a server has already set up (the schema phigate and its version).
  await (await SharedDatabase.open(store.url)).close();
});

afterAll(async () => {
  await store?.drop();
  // DROP OWNED also revokes its CONNECT on ehr, without which DROP ROLE refuses.
  await admin.query(`DROP OWNED BY ${ROLE}; DROP ROLE IF EXISTS ${ROLE}`).catch(() => {});
  await admin.end();
  await idp?.close();
  await noDeviceIdp?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function doctor(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = run(['doctor', ...args], env);
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

function find(r: Report, check: string, subject?: string): Check {
  const c = r.checks.find((x) => x.check === check && (subject === undefined || x.subject === subject));
  if (!c) throw new Error(`no ${check} ${subject ?? ''} check in ${JSON.stringify(r.checks)}`);
  return c;
}

describe('phigate doctor', () => {
  it('passes every check of a good configuration, and verifies a sample token', async () => {
    const policy = join(dir, 'good.yaml');
    writeFileSync(policy, `version: 1
identity:
  issuers:
    - issuer: ${idp.issuer}
      audience: phigate
      cli_client_id: phigate-cli
connections:
  ehr:
    upstream: postgres://${ROLE}@localhost:${info.port}/ehr
    password_env: DOCTOR_DB_PASSWORD
    tls: verify-full
    tls_ca_file: ${info.caCert}
    allow_groups: [engineering]
`);
    const token = await idp.mint('alice');
    const tokenFile = join(dir, 'alice.token');
    writeFileSync(tokenFile, token, { mode: 0o600 });
    const args = ['--config', policy, '--listen', `127.0.0.1:${await freePort()}`, '--data-dir', join(dir, 'good-data'),
      '--store', store.urlWithoutPassword, '--token-file', tokenFile];
    const env = { DOCTOR_DB_PASSWORD: ROLE_PW, PGPASSWORD: store.password };

    const json = await doctor([...args, '--json'], env);
    expect(json.stderr).toBe('');
    const report = JSON.parse(json.stdout) as Report;
    expect(report.checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(json.code).toBe(0);
    expect(report.checks.map((c) => c.check)).toEqual([
      'policy', 'listen', 'tls', 'data-dir', 'signing-key', 'masking-key', 'store', 'issuer', 'login', 'token', 'upstream', 'upstream-tls', 'upstream-role',
    ]);
    expect(find(report, 'upstream', 'ehr').message).toContain(`${ROLE}@localhost:${info.port}/ehr`);
    expect(find(report, 'token').message).toMatch(/groups engineering; may use ehr/);
    expect(find(report, 'store').message).toMatch(/schema phigate version 1/);

    const text = await doctor(args, env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ok {4}upstream-role +ehr: phigate_doctor_svc: no superuser/m);
    expect(text.stdout).toMatch(/^0 failed, 0 warnings, 13 ok$/m);
    for (const out of [json.stdout, text.stdout]) {
      for (const secret of [ROLE_PW, store.password, token]) expect(out).not.toContain(secret);
    }
  });

  it('names an unreachable database, a wrong password, a superuser role and bad issuer URLs, with fixes, and exits 1', async () => {
    const closed = await freePort();
    const policy = join(dir, 'bad.yaml');
    const port = new URL(idp.issuer).port;
    writeFileSync(policy, `version: 1
identity:
  issuers:
    - issuer: ${idp.issuer}/wrong-path
      audience: phigate
    - issuer: http://localhost:${port}
      audience: phigate
    - issuer: ${noDeviceIdp.issuer}
      audience: phigate
      cli_client_id: phigate-cli
connections:
  down:
    upstream: postgres://${ROLE}@127.0.0.1:${closed}/ehr
    password_env: DOCTOR_DB_PASSWORD
    tls: disable
    allow_groups: [engineering]
  wrongpw:
    upstream: postgres://${ROLE}@127.0.0.1:${info.port}/ehr
    password_env: DOCTOR_WRONG_PASSWORD
    tls: require
    allow_groups: [engineering]
  root:
    upstream: postgres://${info.roles.scram.user}@127.0.0.1:${info.port}/ehr
    password_env: DOCTOR_ROOT_PASSWORD
    tls: disable
    allow_groups: [engineering]
`);
    // Another program holds the address the server is to listen on.
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const held = (holder.address() as net.AddressInfo).port;
    // A certificate about to expire (the test CA's last 2 days), a store that refuses the password,
    // and a token for another audience.
    const certs = makeTestCerts(dir);
    const tokenFile = join(dir, 'other-audience.token');
    const token = await noDeviceIdp.mint('alice', { audience: 'not-phigate' });
    writeFileSync(tokenFile, token, { mode: 0o600 });
    const args = ['--config', policy, '--listen', `127.0.0.1:${held}`, '--data-dir', join(dir, 'bad-data'),
      '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--store', store.urlWithoutPassword, '--token-file', tokenFile];
    const env = { DOCTOR_DB_PASSWORD: ROLE_PW, DOCTOR_WRONG_PASSWORD: WRONG_PW, DOCTOR_ROOT_PASSWORD: info.roles.scram.password, PGPASSWORD: WRONG_PW };

    const json = await doctor([...args, '--json'], env).finally(() => holder.close());
    expect(json.code).toBe(1);
    const r = JSON.parse(json.stdout) as Report;
    expect(r.ok).toBe(false);
    expect(find(r, 'listen')).toMatchObject({ status: 'fail', message: 'cannot listen: EADDRINUSE', fix: expect.stringMatching(/ss -ltnp/) });
    expect(find(r, 'tls')).toMatchObject({ status: 'warn', message: expect.stringMatching(/^the certificate expires in [0-2] days? \(DNS:localhost, IP Address:127\.0\.0\.1\)$/) });
    expect(find(r, 'store')).toMatchObject({ status: 'fail', message: expect.stringMatching(/password authentication failed/), fix: expect.stringMatching(/PGPASSWORD/) });
    expect(find(r, 'token')).toMatchObject({ status: 'fail', message: expect.stringMatching(/audience "not-phigate" does not include "phigate"/), fix: expect.stringMatching(/Entra ID v2/) });

    const down = find(r, 'upstream', 'down');
    expect(down).toMatchObject({ status: 'fail', message: expect.stringMatching(/connection refused \(ECONNREFUSED\)/) });
    expect(down.fix).toMatch(/connections\.down\.upstream/);

    const wrong = find(r, 'upstream', 'wrongpw');
    expect(wrong).toMatchObject({ status: 'fail', message: expect.stringMatching(/password authentication failed/) });
    expect(wrong.fix).toMatch(/\$DOCTOR_WRONG_PASSWORD.*pg_hba\.conf/);
    expect(find(r, 'upstream-tls', 'wrongpw')).toMatchObject({ status: 'warn', fix: expect.stringMatching(/verify-full/) });

    expect(find(r, 'upstream', 'root').status).toBe('ok');
    const role = find(r, 'upstream-role', 'root');
    expect(role).toMatchObject({ status: 'fail', message: expect.stringMatching(/is a superuser/) });
    expect(role.fix).toMatch(/Least-privilege upstream role/);

    const notFound = find(r, 'issuer', `${idp.issuer}/wrong-path`);
    expect(notFound).toMatchObject({ status: 'fail', message: expect.stringMatching(/answered HTTP 404/) });
    expect(notFound.fix).toMatch(/well-known\/openid-configuration.*realms/);
    const mismatch = find(r, 'issuer', `http://localhost:${port}`);
    expect(mismatch).toMatchObject({ status: 'fail', message: expect.stringContaining(`names issuer "${idp.issuer}"`) });
    expect(mismatch.fix).toContain(`exactly what the discovery document names ("${idp.issuer}")`);

    expect(find(r, 'issuer', noDeviceIdp.issuer).status).toBe('ok');
    expect(find(r, 'login')).toMatchObject({ status: 'warn', message: expect.stringMatching(/no device_authorization_endpoint/) });

    const text = await doctor(args, env);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^fail +upstream +down: .*ECONNREFUSED/m);
    expect(text.stdout).toMatch(/^ +fix: the database refused phigate_doctor_svc/m);
    expect(text.stdout).toMatch(/^7 failed, \d+ warnings?, \d+ ok$/m); // the address is free again by now
    for (const out of [json.stdout, json.stderr, text.stdout, text.stderr]) {
      for (const secret of [ROLE_PW, WRONG_PW, info.roles.scram.password, token]) expect(out).not.toContain(secret);
    }
  });

  it('run next to a live gateway: its address is taken by phigate itself, and the signing key it made is checked', async () => {
    const gw = await startGateway({ idp });
    try {
      const args = ['--config', gw.policyFile, '--listen', new URL(gw.url).host, '--data-dir', join(gw.dir, 'data'), '--json'];
      const { stdout } = await doctor(args, { EHR_DB_PASSWORD: info.roles.scram.password, EHR_MD5_PASSWORD: info.roles.md5.password });
      const r = JSON.parse(stdout) as Report;
      expect(find(r, 'listen')).toMatchObject({ status: 'ok', message: expect.stringMatching(/running phigate gateway/) });
      expect(find(r, 'signing-key')).toMatchObject({ status: 'ok', message: expect.stringMatching(/^Ed25519 key ed25519:[0-9a-f]{16}, mode 0600$/) });
      expect(find(r, 'data-dir').status).toBe('ok');
    } finally {
      await gw.close();
    }
  });
});
