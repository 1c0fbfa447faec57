// Real PostgreSQL clients for end-to-end tests: psql and pgbench processes, node-postgres clients,
// and a raw protocol connection for what no client library sends (pipelines, smuggling attempts).
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { spawnFailure } from './prereqs.js';

export interface CmdResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded by timeoutMs) with optional stdin; a missing command's error names its package. */
export function runCmd(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number; onSpawn?: (pid: number) => void } = {},
): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(spawnFailure(file, err));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // let the pipes drain
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
    if (child.pid) opts.onSpawn?.(child.pid);
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

export function psqlArgs(port: number, extra: string[] = []): string[] {
  return [`host=127.0.0.1 port=${port} dbname=ehr user=alice sslmode=prefer connect_timeout=10`, '-X', '-v', 'ON_ERROR_STOP=1', ...extra];
}

export function psql(port: number, args: string[], opts: Parameters<typeof runCmd>[2] = {}): Promise<CmdResult> {
  return runCmd('psql', psqlArgs(port, args), { ...opts, env: { PGCONNECT_TIMEOUT: '10', ...opts.env } });
}

export function pgClient(port: number, extra: Partial<pg.ClientConfig> = {}): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'ehr', ...extra });
}

export interface RawPg {
  /** Everything received since the connection was made. */
  received(): Buffer;
  send(bytes: Buffer): void;
  /** Waits until `n` ReadyForQuery messages arrived after the startup's (or the connection closed). */
  readyForQuery(n: number, timeoutMs?: number): Promise<void>;
  closed: Promise<void>;
  close(): void;
}

const READY_FOR_QUERY = /Z\x00\x00\x00\x05[ITE]/g;

/** A connection that speaks the protocol by hand, logged in as alice once startup completed. */
export async function rawPg(port: number): Promise<RawPg> {
  const sock = connect(port, '127.0.0.1');
  let received = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
  sock.on('error', () => {});
  let isClosed = false;
  const closed = new Promise<void>((r) => sock.once('close', () => {
    isClosed = true;
    r();
  }));
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const ready = (): number => received.toString('latin1').match(READY_FOR_QUERY)?.length ?? 0;
  const waitReady = async (n: number, timeoutMs = 10_000): Promise<void> => {
    for (let waited = 0; ready() < n && !isClosed; waited += 20) {
      if (waited > timeoutMs) throw new Error(`timed out waiting for ${n} ReadyForQuery messages (have ${ready()})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  sock.write(serialize.startup({ user: 'alice', database: 'ehr' }));
  await waitReady(1);
  return {
    received: () => received,
    send: (bytes) => sock.write(bytes),
    readyForQuery: (n, timeoutMs) => waitReady(n + 1, timeoutMs),
    closed,
    close: () => sock.destroy(),
  };
}
