// What `npm run bench` measures with: pgbench runs parsed into figures, CPU time of named processes
// from /proc/PID/stat over a run, the host's busy cores from /proc/stat, and number formatting.
import { readFileSync } from 'node:fs';
import { runCmd } from '../test/support/clients.js';

export interface PgbenchTarget {
  host: string;
  port: number;
  user: string;
  env: NodeJS.ProcessEnv;
}

export interface PgbenchResult {
  tps: number;
  latencyMs: number;
  transactions: number;
  /** pgbench -C: mean time to open a connection (it opens one per transaction). */
  connectionMs?: number;
}

/** `rate`: pgbench -R, transactions per second offered in all (a CPU comparison at equal throughput). */
export type PgbenchLoad = { clients: number; seconds: number; connectEach?: boolean; rate?: number } | { clients: number; transactionsPerClient: number };

/** pgbench -S (built-in select-only script, simple protocol) against `t`. */
export async function pgbench(t: PgbenchTarget, load: PgbenchLoad): Promise<PgbenchResult> {
  const length = 'seconds' in load ? ['-T', String(load.seconds)] : ['-t', String(load.transactionsPerClient)];
  const each = 'connectEach' in load && load.connectEach ? ['-C'] : [];
  const rate = 'rate' in load && load.rate ? ['-R', String(Math.max(1, Math.round(load.rate)))] : [];
  const args = ['-n', '-S', ...each, ...rate, '-c', String(load.clients), '-j', String(Math.min(load.clients, 2)), ...length,
    '-h', t.host, '-p', String(t.port), '-U', t.user, 'ehr'];
  const bound = 'seconds' in load ? load.seconds * 1000 + 60_000 : 300_000;
  const r = await runCmd('pgbench', args, { env: t.env, timeoutMs: bound });
  const tps = /tps = ([\d.]+) \((?:without initial connection time|including reconnection times)\)/.exec(r.stdout);
  const lat = /latency average = ([\d.]+) ms/.exec(r.stdout);
  const tx = /number of transactions actually processed: (\d+)/.exec(r.stdout);
  const conn = /average connection time = ([\d.]+) ms/.exec(r.stdout);
  if (r.code !== 0 || !tps || !lat || !tx) throw new Error(`pgbench ${args.join(' ')} failed (${r.code}): ${r.stdout}\n${r.stderr}`);
  return { tps: Number(tps[1]), latencyMs: Number(lat[1]), transactions: Number(tx[1]), ...(conn ? { connectionMs: Number(conn[1]) } : {}) };
}

/** utime + stime of a process (all its threads), in microseconds. */
export function cpuMicros(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.kernel;
}

/** utime and stime of a process (all its threads), in microseconds. */
export function cpuTimes(pid: number): { user: number; kernel: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // USER_HZ is 100 on Linux
  return { user: (Number(fields[11]) * 1_000_000) / 100, kernel: (Number(fields[12]) * 1_000_000) / 100 };
}

/** Busy jiffies of the whole host (all CPUs, everything but idle and iowait). */
function hostBusyTicks(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  return total - (cpu[3] ?? 0) - (cpu[4] ?? 0);
}

export interface ProcRef {
  name: string;
  pid: number;
}

export interface Measured<T> {
  result: T;
  wallSeconds: number;
  /** CPU microseconds each named process spent during the run. */
  cpuMicros: Record<string, number>;
  /** Of which in the kernel (stime): system calls, the loopback TCP work they do. */
  kernelMicros: Record<string, number>;
  /** Cores the whole host kept busy on average during the run (every process, other users' too). */
  hostBusyCores: number;
}

/** Runs `f` and reports the CPU each of `procs` spent meanwhile, and how busy the host was. */
export async function measure<T>(procs: ProcRef[], f: () => Promise<T>): Promise<Measured<T>> {
  const before = procs.map((p) => cpuTimes(p.pid));
  const h0 = hostBusyTicks();
  const t0 = process.hrtime.bigint();
  const result = await f();
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const hostBusyCores = (hostBusyTicks() - h0) / 100 / wallSeconds;
  const cpu: Record<string, number> = {};
  const kernel: Record<string, number> = {};
  procs.forEach((p, i) => {
    const t = cpuTimes(p.pid);
    cpu[p.name] = t.user + t.kernel - before[i]!.user - before[i]!.kernel;
    kernel[p.name] = t.kernel - before[i]!.kernel;
  });
  return { result, wallSeconds, cpuMicros: cpu, kernelMicros: kernel, hostBusyCores };
}

/** The 1-minute load average, printed beside timing figures so a reader knows how loaded the host was. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Text columns padded to the widest cell; a column whose cells are all numbers (or '-') is right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => i > 0 && rows.every((r) => /^([-+]?[\d,.]+x?|-)$/.test(r[i] ?? '-')));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
