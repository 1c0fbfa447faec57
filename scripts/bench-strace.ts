// BENCH_STRACE=1 for `npm run bench`: counts the system calls each process of a hop makes per
// transaction (`strace -c -f -p PID`, one strace per process, all its threads) over a fixed number of
// pgbench transactions, so the hot path's writes, reads and wake-ups can be compared before and after.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProcRef } from './bench-measure.js';

/** Calls per syscall name, plus `total`. */
export type SyscallCounts = Record<string, number>;

/** Parses `strace -c` output: `% time  seconds  usecs/call  calls  [errors]  syscall` rows and the total row. */
export function parseStraceSummary(text: string): SyscallCounts {
  const counts: SyscallCounts = {};
  for (const line of text.split('\n')) {
    const cells = line.trim().split(/\s+/);
    if (cells.length < 5 || !/^[\d.]+$/.test(cells[0]!)) continue;
    const name = cells[cells.length - 1]!;
    // After %time and seconds come usecs/call (absent on some total rows), calls and errors.
    const nums = cells.slice(2, -1).map(Number);
    const calls = name === 'total' && nums.length === 1 ? nums[0]! : nums[1] ?? nums[0]!;
    if (/^\w+$/.test(name) && Number.isFinite(calls)) counts[name] = calls;
  }
  return counts;
}

/** Runs `during` with an `strace -c -f` attached to each of `procs`; returns each one's counts. */
export async function countSyscalls(procs: ProcRef[], during: () => Promise<void>): Promise<Record<string, SyscallCounts>> {
  const dir = mkdtempSync(join(tmpdir(), 'phigate-bench-strace-'));
  try {
    const tracers = procs.map((p) => {
      const file = join(dir, `${p.name}.txt`);
      const child = spawn('strace', ['-c', '-f', '-o', file, '-p', String(p.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((res) => child.once('exit', res));
      const attached = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`strace did not attach to ${p.name} (${p.pid}): ${err}`)), 10_000);
        child.stderr!.on('data', () => {
          if (/attached/.test(err)) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('error', (e) => reject(new Error(`strace: ${e.message}`)));
        void exited.then((code) => reject(new Error(`strace exited (${code}) before attaching to ${p.name}: ${err}`)));
      });
      return { p, file, child, exited, attached };
    });
    await Promise.all(tracers.map((t) => t.attached));
    // strace attaches to each thread in turn; let it finish before the measured work starts.
    await new Promise((r) => setTimeout(r, 300));
    await during();
    const out: Record<string, SyscallCounts> = {};
    for (const t of tracers) {
      t.child.kill('SIGINT');
      await t.exited;
      out[t.p.name] = parseStraceSummary(readFileSync(t.file, 'utf8'));
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The columns printed per process; everything else is summed into `other`. */
export const STRACE_COLUMNS = ['write', 'writev', 'sendmsg', 'sendto', 'read', 'readv', 'recvfrom', 'recvmsg', 'epoll_wait', 'epoll_pwait', 'epoll_ctl', 'futex'];
