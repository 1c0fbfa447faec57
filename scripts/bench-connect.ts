// `npm run bench` (BENCH_ONLY=connect): how long a new session takes to be ready, as pgbench -C
// reports it (average connection time, one client, a new connection per transaction), direct and
// through the gateway with the upstream pool on and off, in the same run.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { serialize } from 'pg-protocol';
import { TUNNEL_PATH_PREFIX } from '../src/tunnel/protocol.js';

const READY = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

export interface ConnectTarget {
  label: string;
  host: string;
  port: number;
  user: string;
  env: NodeJS.ProcessEnv;
  /** Processes whose CPU time per session is reported (the gateway's server and CLI). */
  pids?: Record<string, number>;
}

/** utime + stime of a process, in microseconds (USER_HZ 100). */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / 100;
}

interface Run { connMs: number; tps: number; sessions: number; cpuUs: Record<string, number> }

async function measured(t: ConnectTarget, seconds: number): Promise<Run> {
  const pids = Object.entries(t.pids ?? {});
  const before = pids.map(([, pid]) => cpuMicros(pid));
  const r = await pgbenchC(t, seconds);
  const cpuUs = Object.fromEntries(pids.map(([name, pid], i) => [name, (cpuMicros(pid) - before[i]!) / r.sessions]));
  return { ...r, cpuUs };
}

function pgbenchC(t: ConnectTarget, seconds: number): Promise<{ connMs: number; tps: number; sessions: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn('pgbench', ['-n', '-C', '-S', '-c', '1', '-T', String(seconds), '-h', t.host, '-p', String(t.port), '-U', t.user, 'ehr'],
      { env: { ...process.env, ...t.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    p.once('error', reject);
    p.once('exit', (code) => {
      const conn = /average connection time = ([\d.]+) ms/.exec(out);
      const tps = /tps = ([\d.]+)/.exec(out);
      const tx = /number of transactions actually processed: (\d+)/.exec(out);
      if (code !== 0 || !conn || !tps || !tx) return reject(new Error(`pgbench -C against ${t.label} failed (${code}): ${out}`));
      resolve({ connMs: Number(conn[1]), tps: Number(tps[1]), sessions: Number(tx[1]) });
    });
  });
}

/** Best (lowest) average connection time of `rounds` runs per target, the targets interleaved. */
export async function benchConnect(targets: ConnectTarget[], seconds: number, rounds: number, write: (s: string) => void): Promise<Record<string, number>> {
  const best = new Map<string, Run>();
  for (let round = 0; round < rounds; round++) {
    for (const t of targets) {
      const r = await measured(t, seconds);
      const b = best.get(t.label);
      if (!b || r.connMs < b.connMs) best.set(t.label, r);
    }
  }
  const direct = best.get(targets[0]!.label)!.connMs;
  write(`\nNew sessions (pgbench -C -S, 1 client, ${seconds}s, best of ${rounds}: average connection time)\n`);
  const summary: Record<string, number> = {};
  for (const t of targets) {
    const r = best.get(t.label)!;
    const cpu = Object.entries(r.cpuUs).map(([name, us]) => `${name} ${us.toFixed(0)} us`).join(', ');
    write(`  ${t.label.padEnd(24)} ${r.connMs.toFixed(3).padStart(8)} ms  ${(r.connMs / direct).toFixed(2).padStart(5)}x direct  `
      + `(${r.tps.toFixed(0)} sessions/s${cpu ? `; CPU per session: ${cpu}` : ''})\n`);
    summary[`connect_ms_${t.label.replace(/[^a-z]+/gi, '_').replace(/_+$/, '')}`] = r.connMs;
  }
  return summary;
}

/**
 * The gateway's own part of a new session, without the CLI and pgbench hops: a tunnel stream opened
 * straight to the server, a StartupMessage, until ReadyForQuery; the average of `n`, one at a time.
 */
export async function gatewayReadyMs(serverUrl: string, connection: string, token: string, n: number): Promise<number> {
  const url = `${serverUrl.replace(/^http/, 'ws')}${TUNNEL_PATH_PREFIX}${encodeURIComponent(connection)}`;
  const once = (): Promise<number> => new Promise((resolve, reject) => {
    const t0 = performance.now();
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    let got = Buffer.alloc(0);
    ws.once('open', () => ws.send(serialize.startup({ user: 'bench', database: 'ehr', application_name: 'pgbench' }), { binary: true }));
    ws.on('message', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (!got.includes(READY)) return;
      const ms = performance.now() - t0;
      ws.once('close', () => resolve(ms));
      ws.send(TERMINATE, { binary: true });
      ws.close();
    });
    ws.once('error', reject);
  });
  await once();
  let total = 0;
  for (let i = 0; i < n; i++) total += await once();
  return total / n;
}
