// The server image for real (when a Docker engine answers `docker info`): built from the Dockerfile,
// run as Kubernetes runs it (non-root, read-only root, /tmp a tmpfs, no capabilities, a volume for
// the data directory, host network, loopback only), statements through it from the host's
// `phigate connect`, `docker kill -s KILL` with a session live, started again on the same volume:
// the evidence is intact, the killed session closed as interrupted, SIGTERM as PID 1 stops cleanly.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inject } from 'vitest';
import pg from 'pg';
import { startTestIdp, type TestIdp } from '../support/oidc.js';
import { freePort } from '../support/postgres.js';
import { run, type Proc } from '../support/proc.js';
import { psql, runCmd, type CmdResult } from '../support/clients.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const IMAGE = 'phigate:e2e';
const ENGINE = spawnSync('docker', ['info'], { timeout: 20_000, stdio: 'ignore' }).status === 0;
if (!ENGINE) {
  console.warn('container.test.ts: no Docker engine answers `docker info`: the container test is SKIPPED ' +
    '(bash ../shared/tools/docker-base.sh starts one on these machines; .ci/run does in CI)');
}
const NAME = `phigate-e2e-${process.pid}`;
const VOLUME = `phigate-e2e-data-${process.pid}`;

let idp: TestIdp | undefined;
let dir: string | undefined;
const procs: Proc[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await idp?.close();
  if (ENGINE) {
    await docker(['rm', '-f', NAME]);
    await docker(['volume', 'rm', '-f', VOLUME]);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function docker(args: string[], timeoutMs = 60_000): Promise<CmdResult> {
  return runCmd('docker', args, { timeoutMs });
}

async function healthy(port: number): Promise<Record<string, unknown>> {
  let last = '';
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok) return await r.json() as Record<string, unknown>;
      last = `HTTP ${r.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const logs = await docker(['logs', NAME]);
  throw new Error(`/healthz never answered (${last}); container logs:\n${logs.stdout}${logs.stderr}`);
}

/** The data directory's audit log, read through the image itself (a named volume has no host path to read). */
async function auditRecords(): Promise<Record<string, unknown>[]> {
  const r = await docker(['run', '--rm', '--network', 'none', '-v', `${VOLUME}:/var/lib/phigate:ro`, '--entrypoint', 'cat', IMAGE, '/var/lib/phigate/audit/audit.jsonl']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('container image', () => {
  it.skipIf(!ENGINE)(`builds, serves, survives docker kill -s KILL on its volume with its evidence intact${ENGINE ? '' : ' (SKIPPED: no Docker engine answers `docker info`)'}`, async () => {
    const t0 = Date.now();
    const build = await docker(['build', '--network', 'host', '-t', IMAGE, ROOT], 900_000);
    expect(build.code, build.stdout.slice(-3000) + build.stderr.slice(-3000)).toBe(0);
    const buildSec = (Date.now() - t0) / 1000;
    const size = Number((await docker(['image', 'inspect', '-f', '{{.Size}}', IMAGE])).stdout.trim());
    console.log(`container: image ${IMAGE} built in ${buildSec.toFixed(1)} s (layer cache as found), size ${(size / 1e6).toFixed(1)} MB (${size} bytes)`);
    expect(size).toBeGreaterThan(0);

    const db = inject('pg');
    idp = await startTestIdp({ identities: { alice: ['engineering'] } });
    dir = mkdtempSync(join(tmpdir(), 'phigate-container-'));
    const policyFile = join(dir, 'phigate.yaml');
    writeFileSync(policyFile, `version: 1
identity: { issuers: [{ issuer: "${idp.issuer}", audience: phigate }] }
connections:
  ehr: { upstream: "postgres://${db.roles.scram.user}@127.0.0.1:${db.port}/${db.database}", password_env: EHR_DB_PASSWORD, tls: disable, allow_groups: [engineering] }
default: allow
`);
    chmodSync(policyFile, 0o644); // the server runs as uid 10001 in the container
    const port = await freePort();
    await docker(['rm', '-f', NAME]);
    await docker(['volume', 'rm', '-f', VOLUME]);
    const started = await docker(['run', '-d', '--name', NAME, '--network', 'host',
      // As deploy/kubernetes/phigate.yaml runs it.
      '--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '-v', `${VOLUME}:/var/lib/phigate`, '-v', `${policyFile}:/etc/phigate/phigate.yaml:ro`, '-e', `EHR_DB_PASSWORD=${db.roles.scram.password}`,
      IMAGE, 'server', '--config', '/etc/phigate/phigate.yaml', '--listen', `127.0.0.1:${port}`, '--data-dir', '/var/lib/phigate']);
    expect(started.code, started.stderr).toBe(0);
    expect(await healthy(port)).toMatchObject({ status: 'ok' });

    // The data path: the host's `phigate connect` against the container's listener, psql through it.
    const connect = run(['connect', 'ehr', '--server', `http://127.0.0.1:${port}`], { PHIGATE_TOKEN: await idp.mint('alice') });
    procs.push(connect);
    const local = Number((await connect.waitFor(/Listening on 127\.0\.0\.1:(\d+)/))[1]);
    const before = await psql(local, ['-tA', '-c', 'DROP TABLE IF EXISTS ctr_probe', '-c', 'CREATE TABLE ctr_probe (id int)',
      '-c', 'INSERT INTO ctr_probe AS ctr_before_kill VALUES (1)', '-c', 'SELECT count(*) AS ctr_count FROM ctr_probe']);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout.trim().split('\n').at(-1)).toBe('1');

    // Killed with a session live: its recording is open, its session.end never written.
    const live = psql(local, ['-c', 'SELECT pg_sleep(30) AS ctr_live']);
    const admin = new pg.Client({ host: db.host, port: db.port, user: db.superuser.user, password: db.superuser.password, database: db.database });
    await admin.connect();
    try {
      const running = async (): Promise<boolean> => (await admin.query(
        "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%ctr_live%' AND pid <> pg_backend_pid()")).rowCount === 1;
      for (let i = 0; i < 200 && !(await running()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await running(), 'the live statement reached PostgreSQL').toBe(true);
    } finally {
      await admin.end();
    }
    const kill = await docker(['kill', '-s', 'KILL', NAME]);
    expect(kill.code, kill.stderr).toBe(0);
    expect((await live).code).not.toBe(0);

    // Same container, same volume: node is PID 1 again, and its stale lock names PID 1.
    const again = await docker(['start', NAME]);
    expect(again.code, again.stderr).toBe(0);
    await healthy(port);
    const after = await psql(local, ['-tA', '-c', 'INSERT INTO ctr_probe AS ctr_after_restart VALUES (2)', '-c', 'SELECT count(*) FROM ctr_probe']);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout.trim().split('\n').at(-1)).toBe('2');

    // The evidence, checked inside the running container.
    const verify = await docker(['exec', NAME, 'node', '/opt/phigate/bin/phigate.js', 'audit', 'verify', '--data-dir', '/var/lib/phigate']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/recordings\s+\d+ sealed, all match/);

    // SIGTERM to PID 1 (docker stop) ends the sessions and the server cleanly.
    await connect.stop();
    const stop = await docker(['stop', '-t', '20', NAME]);
    expect(stop.code, stop.stderr).toBe(0);
    expect((await docker(['inspect', '-f', '{{.State.ExitCode}}', NAME])).stdout.trim()).toBe('0');

    const recs = await auditRecords();
    const sql = recs.filter((r) => r['type'] === 'statement').map((r) => String(r['sql']));
    for (const marker of ['CREATE TABLE ctr_probe', 'AS ctr_before_kill', 'AS ctr_count', 'AS ctr_live', 'AS ctr_after_restart']) {
      expect(sql.some((s) => s.includes(marker)), marker).toBe(true);
    }
    expect(recs.filter((r) => r['type'] === 'server.start')).toHaveLength(2);
    const interrupted = recs.filter((r) => r['type'] === 'session.end' && r['reason'] === 'interrupted');
    expect(interrupted).toHaveLength(1);
    expect(interrupted[0]!['recording']).toBeDefined();
    expect(recs.at(-1)).toMatchObject({ type: 'server.stop', reason: 'SIGTERM' });
    const offline = await docker(['run', '--rm', '--network', 'none', '-v', `${VOLUME}:/var/lib/phigate:ro`, IMAGE, 'audit', 'verify', '--data-dir', '/var/lib/phigate']);
    expect(offline.code, offline.stdout + offline.stderr).toBe(0);
    console.log(`container: ${recs.length} audit records after kill -9 and restart, ${sql.length} statements, 1 session closed as interrupted; verify: ${offline.stdout.trim().split('\n')[0]}`);
  }, 1_200_000);
});
