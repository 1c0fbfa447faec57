// One process at a time per directory: a lock file holding the owner's pid (and a line of detail
// for whoever finds it taken). Used by the audit log (one writer per log) and by `phigate demo`
// (one demo per data directory).
import { errnoOf } from '../common/errors.js';
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';

/** Who holds a lock: their pid (NaN when unreadable) and the detail line they wrote. */
export interface LockHolder {
  pid: number;
  detail: string;
}

/** Lock files this process holds (a second taker in the same process is refused too). */
const heldLocks = new Set<string>();

/**
 * Takes `file`, or calls `taken` with its live holder and throws what it returns. A dead owner's
 * lock is taken over. A lock naming this process's own pid or its parent's, when this process does
 * not hold it, is left by an earlier process that had the same pid (PostgreSQL's postmaster.pid
 * rule): in a container the server is pid 1 at every start, so after `kill -9` its lock names a
 * live pid, its own. Returns the release function (idempotent).
 */
export function takePidLock(file: string, taken: (holder: LockHolder) => Error, detail = ''): () => void {
  if (heldLocks.has(file)) throw taken({ pid: process.pid, detail });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n${detail ? `${detail}\n` : ''}`);
      closeSync(fd);
      heldLocks.add(file);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        heldLocks.delete(file);
        try {
          unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
    const holder = readHolder(file);
    const ours = holder.pid === process.pid || holder.pid === process.ppid;
    if (Number.isSafeInteger(holder.pid) && holder.pid > 0 && !ours && isAlive(holder.pid)) throw taken(holder);
    try {
      unlinkSync(file);
    } catch {
      // someone else took it over first; the next attempt tells
    }
  }
  throw taken({ pid: NaN, detail: '' });
}

function readHolder(file: string): LockHolder {
  try {
    const [pid, detail] = readFileSync(file, 'utf8').split('\n');
    return { pid: Number(pid?.trim()), detail: detail?.trim() ?? '' };
  } catch {
    return { pid: NaN, detail: '' }; // removed meanwhile: retry
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
}
