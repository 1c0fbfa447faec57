// `npm run bench` replicas section (issue 13 item 4, one host, many cores): pgbench -S through one
// `phigate server` and through two replicas on the same host sharing a --store, each replica reached
// by its own `phigate connect` (connect targets one server URL), with TPS summed over the replicas.
// A second connect to the single replica separates what the extra connect process brings.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { run, type Proc } from '../test/support/proc.js';
import { fmt, loadAverage, measure, pgbench, table, type ProcRef } from './bench-measure.js';

export interface ReplicasOptions {
  policy: string;
  dir: string;
  storeUrl: string;
  serverEnv: NodeJS.ProcessEnv;
  token: string;
  clients: number;
  seconds: number;
  rounds: number;
  /** Processes the section starts; it stops them when it ends, so later sections run without them. */
  procs: Proc[];
  summary: Record<string, number>;
}

interface Replica {
  server: Proc;
  url: string;
}

async function startReplica(o: ReplicasOptions, name: string, keyFile: string): Promise<Replica> {
  const server = run(['server', '--config', o.policy, '--listen', '127.0.0.1:0', '--data-dir', join(o.dir, `replica-${name}`),
    '--store', o.storeUrl, '--masking-key-file', keyFile, '--log-level', 'warn'], o.serverEnv);
  o.procs.push(server);
  return { server, url: (await server.waitFor(/listening on (http:\/\/[\d.]+:\d+)/))[1]! };
}

async function startConnect(o: ReplicasOptions, url: string): Promise<{ proc: Proc; port: number }> {
  const proc = run(['connect', 'ehr', '--server', url], { PHIGATE_TOKEN: o.token });
  o.procs.push(proc);
  return { proc, port: Number((await proc.waitFor(/Listening on 127\.0\.0\.1:(\d+)/))[1]) };
}

export async function benchReplicas(o: ReplicasOptions): Promise<void> {
  const started = o.procs.length;
  try {
    await measureReplicas(o);
  } finally {
    await Promise.all(o.procs.splice(started).map((p) => p.stop()));
  }
}

async function measureReplicas(o: ReplicasOptions): Promise<void> {
  const keyFile = join(o.dir, 'masking-token.key');
  writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  const a = await startReplica(o, 'a', keyFile);
  const b = await startReplica(o, 'b', keyFile);
  const a1 = await startConnect(o, a.url);
  const a2 = await startConnect(o, a.url);
  const b1 = await startConnect(o, b.url);
  const ref = (name: string, p: Proc): ProcRef => ({ name, pid: p.proc.pid! });
  const layouts = [
    { label: '1 replica, 1 connect', ports: [a1.port], servers: [ref('server a', a.server)], connects: [ref('connect a1', a1.proc)] },
    { label: '1 replica, 2 connects', ports: [a1.port, a2.port], servers: [ref('server a', a.server)], connects: [ref('connect a1', a1.proc), ref('connect a2', a2.proc)] },
    { label: '2 replicas, 2 connects', ports: [a1.port, b1.port], servers: [ref('server a', a.server), ref('server b', b.server)], connects: [ref('connect a1', a1.proc), ref('connect b1', b1.proc)] },
  ];
  const target = (port: number) => ({ host: '127.0.0.1', port, user: 'alice', env: { PGSSLMODE: 'disable' } });
  // Warm-up, not measured: each replica's first sessions, catalog and JIT.
  for (const c of [a1, a2, b1]) await pgbench(target(c.port), { clients: 2, transactionsPerClient: 500 });
  const best = new Map<string, { tps: number; serverUs: number; connectUs: number; busy: string; host: number }>();
  for (let round = 0; round < o.rounds; round++) {
    for (const l of layouts) {
      const per = Math.max(1, Math.floor(o.clients / l.ports.length));
      const m = await measure([...l.servers, ...l.connects], () => Promise.all(l.ports.map((port) =>
        pgbench(target(port), { clients: per, seconds: o.seconds }))));
      const tps = m.result.reduce((s, r) => s + r.tps, 0);
      const tx = m.result.reduce((s, r) => s + r.transactions, 0);
      const sum = (refs: ProcRef[]): number => refs.reduce((s, p) => s + m.cpuMicros[p.name]!, 0);
      const busy = l.servers.map((p) => fmt(m.cpuMicros[p.name]! / 1e6 / m.wallSeconds, 2)).join(' + ');
      const prev = best.get(l.label);
      if (!prev || tps > prev.tps) best.set(l.label, { tps, serverUs: sum(l.servers) / tx, connectUs: sum(l.connects) / tx, busy, host: m.hostBusyCores });
    }
  }
  const base = best.get(layouts[0]!.label)!.tps;
  const rows = layouts.map((l) => {
    const f = best.get(l.label)!;
    return [l.label, fmt(f.tps), `${fmt(f.tps / base, 2)}x`, fmt(f.serverUs), fmt(f.connectUs), f.busy, fmt(f.host, 2)];
  });
  const two = best.get(layouts[2]!.label)!;
  o.summary['replicas_2_scaling'] = two.tps / base;
  o.summary['replicas_2_server_cpu_us'] = two.serverUs;
  process.stdout.write(`\nReplicas on one host (--store shared, each replica its own connect; pgbench -S, ${o.clients} clients split over the connects, ` +
    `${o.seconds} s, best of ${o.rounds}; load average ${loadAverage()}; this host has ${availableParallelism()} cores shared with PostgreSQL and pgbench)\n`);
  process.stdout.write(`${table(['layout', 'TPS (sum)', 'vs 1', 'server CPU us/tx', 'connect CPU us/tx', 'server busy (cores)', 'host busy (cores)'], rows)}\n`);
}
