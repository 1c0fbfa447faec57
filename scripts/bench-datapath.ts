// `npm run bench` data path sections: pgbench -S through each hop (direct, PgBouncer, the bare Node
// relay, phigate) in the same run, with TPS, ratio to direct, latency, CPU per transaction of every
// process of the hop and the gateway's CPU against the relay's; connection setup (pgbench -C); and,
// with BENCH_STRACE=1, system calls per transaction per process.
import { countSyscalls, STRACE_COLUMNS, type SyscallCounts } from './bench-strace.js';
import { fmt, loadAverage, measure, pgbench, table, type PgbenchResult, type PgbenchTarget, type ProcRef } from './bench-measure.js';

/** One way from pgbench to PostgreSQL, and the processes on it whose CPU is counted. */
export interface Path {
  /** phigate: a masked reader (statement analysis, masking plan, detectors); phigate-unmasked: a reader in unmasked_groups. */
  key: 'direct' | 'pgbouncer' | 'relay' | 'relay-evidence' | 'phigate' | 'phigate-unmasked' | 'phigate-nopool';
  label: string;
  target: PgbenchTarget;
  procs: ProcRef[];
}

interface PathFigures {
  best: PgbenchResult;
  /** Least CPU microseconds per transaction of each process over the rounds. */
  cpuPerTx: Record<string, number>;
  /** CPU seconds per wall second of each process, in the round with its least CPU per transaction. */
  busy: Record<string, number>;
  /** Share of that CPU spent in the kernel, same round. */
  kernelShare: Record<string, number>;
  hostBusyCores: number;
}

async function runPath(path: Path, clients: number, seconds: number, rate?: number): Promise<PathFigures> {
  const m = await measure(path.procs, () => pgbench(path.target, { clients, seconds, ...(rate ? { rate } : {}) }));
  const f: PathFigures = { best: m.result, cpuPerTx: {}, busy: {}, kernelShare: {}, hostBusyCores: m.hostBusyCores };
  for (const p of path.procs) {
    f.cpuPerTx[p.name] = m.cpuMicros[p.name]! / m.result.transactions;
    f.busy[p.name] = m.cpuMicros[p.name]! / 1e6 / m.wallSeconds;
    f.kernelShare[p.name] = m.kernelMicros[p.name]! / Math.max(1, m.cpuMicros[p.name]!);
  }
  return f;
}

export interface DataPathOptions {
  paths: Path[];
  seconds: number;
  rounds: number;
  clients: number[];
  skipped: string[];
  summary: Record<string, number>;
}

/** The table of issue 13: every path at each client count, measured round-robin in the same run. */
export async function benchDataPath(o: DataPathOptions): Promise<void> {
  const rows: string[][] = [];
  const perCore: string[] = [];
  const sameRate: string[] = [];
  // Warm-up, not measured: first connections, JIT, the gateway's catalog and caches.
  for (const path of o.paths) await pgbench(path.target, { clients: 2, transactionsPerClient: 500 });
  for (const clients of o.clients) {
    const figures = new Map<Path['key'], PathFigures>();
    // Round-robin over the paths so load from other users of the machine spreads over all of them.
    for (let round = 0; round < o.rounds; round++) {
      for (const path of o.paths) {
        const r = await runPath(path, clients, o.seconds);
        const prev = figures.get(path.key);
        if (!prev) figures.set(path.key, r);
        else {
          if (r.best.tps > prev.best.tps) prev.best = r.best;
          for (const [name, us] of Object.entries(r.cpuPerTx)) {
            if (us < prev.cpuPerTx[name]!) {
              prev.cpuPerTx[name] = us;
              prev.busy[name] = r.busy[name]!;
              prev.kernelShare[name] = r.kernelShare[name]!;
              prev.hostBusyCores = r.hostBusyCores;
            }
          }
        }
      }
    }
    const direct = figures.get('direct')!.best;
    const relayUs = figures.get('relay')?.cpuPerTx['relay'];
    // CPU per transaction falls as throughput rises (more work per wake-up), and the relay runs several
    // times faster than phigate: the relay again, held by pgbench -R to phigate's rate, gives the
    // connect's figure a like-for-like floor.
    const relayPath = o.paths.find((p) => p.key === 'relay');
    const phigate = figures.get('phigate');
    if (relayPath && phigate) {
      const r = await runPath(relayPath, clients, o.seconds, phigate.best.tps);
      const us = r.cpuPerTx['relay']!;
      const connectUs = phigate.cpuPerTx['connect'];
      sameRate.push(`  ${clients} clients: relay ${fmt(us)} us per tx at ${fmt(r.best.tps)} TPS` +
        (connectUs === undefined ? '' : `; connect ${fmt(connectUs)} us at ${fmt(phigate.best.tps)} TPS = ${fmt(connectUs / us, 2)}x`));
      o.summary[`relay_same_rate_${clients}_relay_cpu_us`] = us;
      if (connectUs !== undefined) o.summary[`connect_vs_relay_same_rate_${clients}`] = connectUs / us;
    }
    for (const path of o.paths) {
      const f = figures.get(path.key)!;
      const ratio = f.best.tps / direct.tps;
      const cpu = path.procs.map((p) => `${p.name} ${fmt(f.cpuPerTx[p.name]!)}`).join(', ') || '-';
      const vsRelay = relayUs === undefined || path.key === 'direct' ? '-'
        : path.procs.map((p) => `${path.procs.length > 1 ? `${p.name} ` : ''}${fmt(f.cpuPerTx[p.name]! / relayUs, 2)}x`).join(', ');
      rows.push([String(clients), path.label, fmt(f.best.tps), `${fmt(ratio, 2)}x`, fmt(f.best.latencyMs, 3),
        path.key === 'direct' ? '-' : fmt(f.best.latencyMs - direct.latencyMs, 3), cpu, vsRelay]);
      const tag = `${path.key.replace('-', '_')}_${clients}`;
      if (path.key !== 'direct') o.summary[`${path.key.replace('-', '_')}_tps_ratio_${clients}`] = ratio;
      if (path.key === 'phigate-unmasked') o.summary[`phigate_unmasked_added_ms_${clients}`] = f.best.latencyMs - direct.latencyMs;
      if (path.key === 'phigate') {
        o.summary[`tps_ratio_${clients}`] = ratio; // the key earlier runs printed
        o.summary[`phigate_added_ms_${clients}`] = f.best.latencyMs - direct.latencyMs;
      }
      for (const p of path.procs) {
        o.summary[`${tag}_${p.name}_cpu_us`] = f.cpuPerTx[p.name]!;
        if (relayUs !== undefined && path.key === 'phigate') o.summary[`${p.name}_vs_relay_${clients}`] = f.cpuPerTx[p.name]! / relayUs;
        if (relayUs !== undefined && path.key === 'phigate-unmasked') o.summary[`${p.name}_unmasked_vs_relay_${clients}`] = f.cpuPerTx[p.name]! / relayUs;
      }
      // TPS per core: transactions per CPU-second of the process (1e6 / CPU us per tx); busy says how
      // close the process came to a whole core, i.e. whether it was the ceiling.
      if (clients === Math.max(...o.clients) && path.key !== 'direct') {
        for (const p of path.procs) {
          perCore.push(`  ${`${path.label}: ${p.name}`.padEnd(34)} ${fmt(1e6 / f.cpuPerTx[p.name]!).padStart(8)} TPS per core,` +
            ` busy ${fmt(f.busy[p.name]!, 2)} of a core at ${fmt(f.best.tps)} TPS, ${fmt(f.kernelShare[p.name]! * 100)}% of it in the kernel` +
            ` (host busy ${fmt(f.hostBusyCores, 2)} cores)`);
          if (path.key === 'phigate') o.summary[`${p.name}_tps_per_core`] = 1e6 / f.cpuPerTx[p.name]!;
        }
      }
    }
  }
  process.stdout.write(`\nData path: pgbench -S (simple protocol), ${o.seconds} s per run, best of ${o.rounds}; ` +
    `load average ${loadAverage()} (shared host: read CPU per transaction and ratios, not TPS)\n`);
  for (const s of o.skipped) process.stdout.write(`  skipped: ${s}\n`);
  process.stdout.write(`${table(['clients', 'path', 'TPS', 'ratio', 'mean ms', 'added ms', 'CPU us per tx', 'CPU vs relay'], rows)}\n`);
  if (sameRate.length > 0) process.stdout.write(`The relay at phigate's rate (pgbench -R), against phigate connect\n${sameRate.join('\n')}\n`);
  if (perCore.length > 0) process.stdout.write(`Per core (${Math.max(...o.clients)} clients; TPS per core = 1e6 / CPU us per tx)\n${perCore.join('\n')}\n`);
}

/** pgbench -C: a new connection for every transaction; mean connection time and CPU per connection. */
export async function benchConnections(o: { paths: Path[]; seconds: number; rounds: number; summary: Record<string, number>; notes: Record<string, string> }): Promise<void> {
  const rows: string[][] = [];
  let directMs: number | undefined;
  for (const path of o.paths) {
    let best: { ms: number; cpu: Record<string, number> } | undefined;
    for (let round = 0; round < o.rounds; round++) {
      const m = await measure(path.procs, () => pgbench(path.target, { clients: 1, seconds: o.seconds, connectEach: true }));
      const ms = m.result.connectionMs;
      if (ms === undefined) throw new Error('pgbench -C printed no average connection time (pgbench 14 or later needed)');
      const cpu = Object.fromEntries(path.procs.map((p) => [p.name, m.cpuMicros[p.name]! / m.result.transactions]));
      if (!best || ms < best.ms) best = { ms, cpu };
    }
    directMs ??= best!.ms; // the first path is direct (SCRAM)
    const key = path.key.replace('-', '_');
    o.summary[`connect_ms_${key}${path.key === 'direct' && rows.length > 0 ? '_trust' : ''}`] = best!.ms;
    if (path.key !== 'direct') o.summary[`connect_ratio_${key}`] = best!.ms / directMs;
    rows.push([path.label, fmt(best!.ms, 2), `${fmt(best!.ms / directMs, 2)}x`,
      path.procs.map((p) => `${p.name} ${fmt(best!.cpu[p.name]!)}`).join(', ') || '-', o.notes[path.label] ?? '']);
  }
  process.stdout.write(`\nNew connections: pgbench -S -C (a connection per transaction), 1 client, ${o.seconds} s, best of ${o.rounds}; load average ${loadAverage()}\n`);
  process.stdout.write(`${table(['path', 'connect ms', 'vs direct', 'CPU us per connection', 'how the client authenticates'], rows)}\n`);
}

/** Syscalls per transaction of each process of each path, over a fixed number of transactions. */
export async function benchStrace(o: { paths: Path[]; clients: number; transactionsPerClient: number; summary: Record<string, number> }): Promise<void> {
  const rows: string[][] = [];
  const others: string[] = [];
  for (const path of o.paths) {
    let tx = 0;
    const counts: Record<string, SyscallCounts> = await countSyscalls(path.procs, async () => {
      tx = (await pgbench(path.target, { clients: o.clients, transactionsPerClient: o.transactionsPerClient })).transactions;
    });
    for (const p of path.procs) {
      const c = counts[p.name]!;
      const per = (n: number | undefined): string => fmt((n ?? 0) / tx, 2);
      rows.push([`${path.label}: ${p.name}`, per(c['total']), ...STRACE_COLUMNS.map((k) => per(c[k]))]);
      o.summary[`strace_${path.key}_${p.name}_per_tx`] = (c['total'] ?? 0) / tx;
      const rest = Object.entries(c).filter(([k, n]) => k !== 'total' && !STRACE_COLUMNS.includes(k) && n / tx >= 0.01)
        .sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${fmt(n / tx, 2)}`);
      if (rest.length > 0) others.push(`  ${path.label}: ${p.name}: ${rest.join(', ')}`);
    }
  }
  process.stdout.write(`\nSystem calls per transaction (strace -c -f -p, pgbench -S, ${o.clients} clients x ${fmt(o.transactionsPerClient)} transactions; ` +
    'figures from a traced run, so no timings)\n');
  process.stdout.write(`${table(['process', 'total', ...STRACE_COLUMNS], rows)}\n`);
  if (others.length > 0) process.stdout.write(`other calls per transaction (>= 0.01):\n${others.join('\n')}\n`);
}
