// Real PostgreSQL clients for end-to-end tests: psql and pgbench processes, node-postgres clients.
import { spawn } from 'node:child_process';
import pg from 'pg';

export interface CmdResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded by timeoutMs) with optional stdin. */
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
    child.once('error', reject);
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
