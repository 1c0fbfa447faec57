// `npm run bench` (BENCH_ONLY=connect): how long a new session takes to be ready, as pgbench -C
// reports it (average connection time, one client, a new connection per transaction), direct and
// through the gateway with the upstream pool on and off, in the same run.
import { spawn } from 'node:child_process';

export interface ConnectTarget {
  label: string;
  host: string;
  port: number;
  user: string;
  env: NodeJS.ProcessEnv;
}

function pgbenchC(t: ConnectTarget, seconds: number): Promise<{ connMs: number; tps: number }> {
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
      if (code !== 0 || !conn || !tps) return reject(new Error(`pgbench -C against ${t.label} failed (${code}): ${out}`));
      resolve({ connMs: Number(conn[1]), tps: Number(tps[1]) });
    });
  });
}

/** Best (lowest) average connection time of `rounds` runs per target, the targets interleaved. */
export async function benchConnect(targets: ConnectTarget[], seconds: number, rounds: number, write: (s: string) => void): Promise<Record<string, number>> {
  const best = new Map<string, { connMs: number; tps: number }>();
  for (let round = 0; round < rounds; round++) {
    for (const t of targets) {
      const r = await pgbenchC(t, seconds);
      const b = best.get(t.label);
      if (!b || r.connMs < b.connMs) best.set(t.label, r);
    }
  }
  const direct = best.get(targets[0]!.label)!.connMs;
  write(`\nNew sessions (pgbench -C -S, 1 client, ${seconds}s, best of ${rounds}: average connection time)\n`);
  const summary: Record<string, number> = {};
  for (const t of targets) {
    const r = best.get(t.label)!;
    write(`  ${t.label.padEnd(28)} ${r.connMs.toFixed(3).padStart(8)} ms  ${(r.connMs / direct).toFixed(2).padStart(5)}x direct  (${r.tps.toFixed(0)} sessions/s)\n`);
    summary[`connect_ms_${t.label.replace(/[^a-z]+/gi, '_').replace(/_+$/, '')}`] = r.connMs;
  }
  return summary;
}
