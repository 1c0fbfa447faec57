// `phigate connect` outlives a server restart, and the gateway serves tunnels over TLS (wss://).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { auditRecords, run, startGateway, type Gw } from '../support/harness.js';
import { psql } from '../support/clients.js';
import { makeTestCerts } from '../support/certs.js';

let gw: Gw;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => gw?.close());

describe('server restart', () => {
  it('new client connections succeed once the server is back, including one made while it was down', async () => {
    const c = await gw.connect('ehr', await gw.token('alice'));
    expect((await psql(c.port, ['-tA', '-c', 'select 1'])).stdout.trim()).toBe('1');
    await gw.server.stop();
    // a connection attempt while the server is down waits (with backoff) instead of failing
    const during = psql(c.port, ['-tA', '-c', 'select 2']);
    await new Promise((r) => setTimeout(r, 800));
    await gw.restartServer();
    const r = await during;
    expect(r.stdout.trim()).toBe('2');
    expect((await psql(c.port, ['-tA', '-c', 'select 3'])).stdout.trim()).toBe('3');
    expect(c.stderr()).toMatch(/gateway unreachable at .*; retrying/);
    expect(c.stderr()).toMatch(/gateway is reachable again/);
    await c.stop();
  });

  it('ends live sessions with an admin-shutdown error when the server stops', async () => {
    const c = await gw.connect('ehr', await gw.token('alice'));
    const running = psql(c.port, ['-c', 'select pg_sleep(20)']);
    await new Promise((r) => setTimeout(r, 700));
    await gw.restartServer();
    const r = await running;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/phigate server is shutting down/);
    await c.stop();
    // The session the stop ended is recorded before server.stop, which names how many it ended.
    const records = auditRecords(gw);
    const stop = records.findLastIndex((x) => x['type'] === 'server.stop');
    expect(records[stop]).toMatchObject({ sessions: 1 });
    expect(records[stop - 1]).toMatchObject({ type: 'session.end' });
  });
});

describe('TLS listener', () => {
  it('serves tunnels over wss:// with --tls-cert/--tls-key', async () => {
    const certDir = join(gw.dir, 'tls');
    mkdirSync(certDir);
    const certs = makeTestCerts(certDir);
    const server = run(['server', '--config', gw.policyFile, '--listen', '127.0.0.1:0', '--data-dir', join(gw.dir, 'tlsdata'),
      '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey], { EHR_DB_PASSWORD: gw.pg.roles.scram.password });
    try {
      const m = await server.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/);
      const url = `https://localhost:${m[1]}`;
      const c = run(['connect', 'ehr', '--server', url], { PHIGATE_TOKEN: await gw.token('alice'), NODE_EXTRA_CA_CERTS: certs.caCert });
      const p = await c.waitFor(/port=(\d+)/);
      const r = await psql(Number(p[1]), ['-tA', '-c', 'select 5']);
      await c.stop();
      expect(r.stdout.trim()).toBe('5');
      // and an untrusted certificate is not silently accepted
      const bad = run(['connect', 'ehr', '--server', url], { PHIGATE_TOKEN: await gw.token('alice') });
      expect((await bad.exited).code).toBe(5);
    } finally {
      await server.stop();
    }
  });
});

describe('startup failures say what failed', () => {
  it('a data directory locked by another live process: the lock and its hint, not "cannot listen"', async () => {
    const holder = spawn('sleep', ['30']);
    try {
      const audit = join(gw.dir, 'locked', 'audit');
      mkdirSync(audit, { recursive: true });
      writeFileSync(join(audit, 'LOCK'), `${holder.pid}\n`);
      const s = run(['server', '--config', gw.policyFile, '--listen', '127.0.0.1:0', '--data-dir', join(gw.dir, 'locked')],
        { EHR_DB_PASSWORD: gw.pg.roles.scram.password, EHR_MD5_PASSWORD: gw.pg.roles.md5.password });
      const { code } = await s.exited;
      expect(code).toBe(1);
      expect(s.stderr()).toMatch(new RegExp(`cannot start: the audit log in .* is in use by process ${holder.pid}`));
      expect(s.stderr()).toMatch(/stop the other phigate server, or give this one its own --data-dir/);
      expect(s.stderr()).not.toMatch(/cannot listen/);
    } finally {
      holder.kill();
    }
  });

  it('a data directory this process cannot write: says so with a hint, no stack trace', async () => {
    // A file where the directory should be fails for root too; a bind mount owned by another uid (the
    // container's case, EACCES) gets the chown/named volume/fsGroup hint.
    const blocked = join(gw.dir, 'not-a-dir');
    writeFileSync(blocked, '');
    const s = run(['server', '--config', gw.policyFile, '--listen', '127.0.0.1:0', '--data-dir', join(blocked, 'data')],
      { EHR_DB_PASSWORD: gw.pg.roles.scram.password, EHR_MD5_PASSWORD: gw.pg.roles.md5.password });
    const { code } = await s.exited;
    expect(code).toBe(1);
    expect(s.stderr()).toMatch(/cannot start: the data directory .*not-a-dir\/data is not writable by this process: ENOTDIR/);
    expect(s.stderr()).toMatch(/hint: --data-dir must name a directory this process can create and write/);
    expect(s.stderr()).not.toMatch(/internal error|    at /);
  });
});
