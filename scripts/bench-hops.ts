// The hops `npm run bench` compares phigate with, each its own process so its CPU can be read from
// /proc: the bare Node relay (scripts/relay.ts) and PgBouncer in transaction pooling mode, started on
// a free loopback port with a generated ini and userlist in a temporary directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/support/postgres.js';

export interface Hop {
  port: number;
  pid: number;
  stop: () => Promise<void>;
}

export const PGBOUNCER = process.env['BENCH_PGBOUNCER'] ?? '/usr/sbin/pgbouncer';

function stopper(child: ChildProcess, cleanup: () => void = () => {}): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((res) => child.once('exit', res));
      child.kill('SIGTERM');
      await exited;
    }
    cleanup();
  };
}

/** Resolves once something accepts on host:port, or rejects after `ms` (or when `child` exits). */
async function acceptsOn(host: string, port: number, child: ChildProcess, ms: number, output: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}): ${output()}`);
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing accepts on ${host}:${port} after ${ms} ms: ${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * scripts/relay.ts in a process of its own, between 127.0.0.1:(free port) and the target; with
 * `evidenceFile`, the relay that appends a hash-chained record of each client chunk before forwarding it.
 */
export async function startRelayProcess(targetHost: string, targetPort: number, evidenceFile?: string): Promise<Hop> {
  const script = fileURLToPath(new URL('./relay.js', import.meta.url));
  const args = [script, '127.0.0.1:0', `${targetHost}:${targetPort}`, ...(evidenceFile === undefined ? [] : ['--evidence', evidenceFile])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start: ${out}`)), 15_000);
    const check = (): void => {
      const m = /relay listening on [\d.]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited (${code}): ${out}`));
    });
  });
  return { port, pid: child.pid!, stop: stopper(child) };
}

export interface PgBouncerUpstream {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

/**
 * PgBouncer, pool_mode=transaction, in front of `up`. Clients authenticate with `trust` (as phigate's
 * local listener asks no password: the tunnel carries the identity), PgBouncer logs in upstream with
 * the password from its userlist and keeps those server connections. Returns the reason instead when
 * PgBouncer is not installed or does not start.
 */
export async function startPgBouncer(up: PgBouncerUpstream): Promise<Hop | { skipped: string }> {
  if (!existsSync(PGBOUNCER)) return { skipped: `${PGBOUNCER} is not installed (apt-get install pgbouncer, or BENCH_PGBOUNCER=path)` };
  const dir = mkdtempSync(join(tmpdir(), 'phigate-bench-pgbouncer-'));
  const port = await freePort();
  const q = (s: string): string => `"${s.replace(/"/g, '""')}"`;
  writeFileSync(join(dir, 'userlist.txt'), `${q(up.user)} ${q(up.password)}\n`, { mode: 0o644 });
  writeFileSync(join(dir, 'pgbouncer.ini'), `[databases]
${up.database} = host=${up.host} port=${up.port} dbname=${up.database} user=${up.user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${join(dir, 'userlist.txt')}
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
server_tls_sslmode = disable
`, { mode: 0o644 });
  // PgBouncer refuses to run as root; it drops to -u USER, which must read the directory.
  chmodSync(dir, 0o755);
  const asRoot = process.getuid?.() === 0;
  const child = spawn(PGBOUNCER, [...(asRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const spawned = await new Promise<Error | undefined>((res) => {
    child.once('spawn', () => res(undefined));
    child.once('error', res);
  });
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  if (spawned) {
    cleanup();
    return { skipped: `${PGBOUNCER} did not start: ${spawned.message}` };
  }
  try {
    await acceptsOn('127.0.0.1', port, child, 10_000, () => out.slice(-2000));
  } catch (err) {
    await stopper(child, cleanup)();
    return { skipped: `PgBouncer did not start: ${err instanceof Error ? err.message : String(err)}` };
  }
  return { port, pid: child.pid!, stop: stopper(child, cleanup) };
}
