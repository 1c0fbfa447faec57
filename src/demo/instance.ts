// Before `phigate demo` starts anything (a database, a file written): its gateway port must be free
// and its data directory must not be another live demo's. The data directory's lock (demo.lock,
// the owner's pid and address) is held until the demo has stopped, so that a second demo never
// rewrites a running one's policy file or evidence.
import { errnoOf } from '../common/errors.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, PhigateError } from '../cli/errors.js';
import { takePidLock } from '../server/pid-lock.js';
import { shellWord } from './try-it.js';
import { nextFreePort, portHolder, probeListen, type PortHolder } from '../server/port-holder.js';

export const DEMO_LOCK_FILE = 'demo.lock';

export interface DemoClaim {
  host: string;
  port: number;
  dataDir: string;
  /** How the user runs this CLI (`npx phigate`), for the commands the hints suggest. */
  cli: string;
}

/** Checks the port, then locks the data directory; returns the lock's release. */
export async function claimDemo(c: DemoClaim): Promise<() => void> {
  const lockFile = join(c.dataDir, DEMO_LOCK_FILE);
  if (c.port !== 0) {
    const code = await probeListen(c.host, c.port);
    if (code !== undefined) throw await portProblem(c, code);
  }
  try {
    mkdirSync(c.dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new PhigateError(`cannot create the demo data directory ${c.dataDir}: ${errnoOf(err) ?? (err as Error).message}`,
      ExitCode.Error, 'give a directory this user may write with --data-dir DIR');
  }
  return takePidLock(lockFile, (holder) => new PhigateError(
    `the demo data directory ${c.dataDir} is in use by another phigate demo (pid ${holder.pid}${holder.detail ? `, ${holder.detail}` : ''})`,
    ExitCode.Error, `stop that demo (Ctrl-C in its terminal, or kill ${holder.pid}), or give this one its own: ${c.cli} demo --data-dir ${shellWord(`${c.dataDir}-2`)}`,
  ), `listening on ${c.host}:${c.port}`);
}

async function portProblem(c: DemoClaim, code: string): Promise<PhigateError> {
  const addr = `${c.host}:${c.port}`;
  if (code !== 'EADDRINUSE') {
    return new PhigateError(`cannot listen on ${addr}: ${code}`, ExitCode.Error,
      code === 'EACCES' ? `ports below 1024 need privileges: ${c.cli} demo --listen ${c.host}:7432` : `pick another address with --listen ${c.host}:PORT`);
  }
  const holder = portHolder(c.port);
  const free = await nextFreePort(c.host, c.port);
  // Another demo holds the default data directory too: the one suggested here is new.
  const elsewhere = `${c.cli} demo --listen ${c.host}:${free ?? 'PORT'}${holder && isDemo(holder) ? ` --data-dir ${shellWord(`${c.dataDir}-${free ?? 2}`)}` : ''}`;
  return new PhigateError(`${addr} is in use (${describe(holder)})`, ExitCode.Error,
    `stop it${holder ? ` (kill ${holder.pid}${isDemo(holder) ? ', or Ctrl-C in its terminal' : ''})` : ''}, or run this one elsewhere: ${elsewhere}`);
}

const isDemo = (h: PortHolder): boolean => /phigate(\.js)?\s+demo\b/.test(h.command);

function describe(h: PortHolder | undefined): string {
  if (!h) return 'another phigate demo or server? `ss -ltnp` tells which process';
  if (isDemo(h)) return `another phigate demo, pid ${h.pid}`;
  if (/phigate(\.js)?\s+server\b/.test(h.command)) return `a phigate server, pid ${h.pid}`;
  const cmd = h.command.length > 60 ? `${h.command.slice(0, 57)}...` : h.command;
  return `pid ${h.pid}${cmd ? `: ${cmd}` : ''}`;
}

