// A lock file per credential so that two phigate processes never spend the same refresh token:
// issuers rotate refresh tokens and treat a second use of a spent one as theft, revoking the login.
import { mkdirSync, openSync, closeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { locksDir } from './paths.js';

/** A holder that died mid-refresh leaves its lock behind; after this long it is taken over. */
const STALE_MS = 30_000;
const WAIT_MS = 40_000;

export async function withCredentialLock<T>(home: string, key: string, fn: () => Promise<T>): Promise<T> {
  const dir = locksDir(home);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.lock`);
  const deadline = Date.now() + WAIT_MS;
  let delay = 20;
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (isStale(path) || Date.now() > deadline) {
        rmSync(path, { force: true });
        continue;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 250);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}

function isStale(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > STALE_MS;
  } catch {
    return false;
  }
}
