// A lock per credential so that two phigate processes never spend the same refresh token: issuers
// rotate refresh tokens and treat a second use of a spent one as theft, revoking the login.
//
// proper-lockfile keeps the lock's mtime fresh while its holder lives, so a waiter takes the lock
// over only from a holder that died (or stalled past `staleMs`), never from one whose refresh is
// merely slow. A waiter that runs out of patience gives up with CredentialLockBusy; it does not
// break the lock.
import { mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { ExitCode, PhigateError } from '../errors.js';
import { locksDir } from './paths.js';

export interface CredentialLockOptions {
  /** A lock whose mtime is older than this belongs to a dead (or frozen) holder (min 2 s). */
  staleMs?: number;
  /** How long to wait for a live holder before giving up. */
  waitMs?: number;
  /** Told when this process lost the lock while holding it (frozen past staleMs, or the lock deleted). */
  onCompromised?: (err: Error) => void;
}

const STALE_MS = 10_000;
const WAIT_MS = 60_000;
/** The waiter's backoff: 20 ms, growing by half each time, at most 250 ms between tries. */
const RETRY = { minTimeout: 20, maxTimeout: 250, factor: 1.5 };

/** Another process holds the credential's lock and kept it fresh for longer than we were willing to wait. */
export class CredentialLockBusy extends PhigateError {
  constructor(readonly lockPath: string, waitedMs: number) {
    super(`another phigate process has been renewing this login for more than ${Math.round(waitedMs / 1000)} s`, ExitCode.Error,
      `try again in a moment; the lock is ${lockPath} and goes away when that process ends`);
    this.name = 'CredentialLockBusy';
  }
}

/** The lock directory for a credential key (a hash: keys hold server URLs). */
export function credentialLockPath(home: string, key: string): string {
  // `.lock.d`, not the `.lock` files of earlier versions: proper-lockfile's locks are directories.
  return join(locksDir(home), `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.lock.d`);
}

export async function withCredentialLock<T>(home: string, key: string, fn: () => Promise<T>, opts: CredentialLockOptions = {}): Promise<T> {
  mkdirSync(locksDir(home), { recursive: true, mode: 0o700 });
  const path = credentialLockPath(home, key);
  const staleMs = Math.max(2_000, opts.staleMs ?? STALE_MS);
  const waitMs = opts.waitMs ?? WAIT_MS;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(path, {
      realpath: false,
      lockfilePath: path,
      stale: staleMs,
      update: staleMs / 4,
      retries: { ...RETRY, retries: retriesFor(waitMs) },
      // The default throws from a timer, which would crash the CLI mid-session.
      onCompromised: opts.onCompromised ?? (() => {}),
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED') throw new CredentialLockBusy(path, waitMs);
    throw err;
  }
  try {
    return await fn();
  } finally {
    // Already released (compromised) is fine: there is nothing of ours left to remove.
    await release().catch(() => {});
  }
}

/** How many tries of the backoff above add up to about `waitMs`. */
function retriesFor(waitMs: number): number {
  let total = 0;
  let delay = RETRY.minTimeout;
  let n = 0;
  while (total < waitMs) {
    total += delay;
    delay = Math.min(delay * RETRY.factor, RETRY.maxTimeout);
    n++;
  }
  return n;
}
