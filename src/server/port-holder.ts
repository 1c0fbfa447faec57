// Before listening: is a TCP port free, and if not, which process (best effort, Linux /proc, only
// processes this user may inspect) holds it, so that the error can say what to stop.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

/** Resolves to the listen error's code ('EADDRINUSE', 'EACCES', ...) or undefined when the port is free. */
export function probeListen(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
}

/** The first free port above `port` on `host` among the next `tries`, for a hint. */
export async function nextFreePort(host: string, port: number, tries = 20): Promise<number | undefined> {
  for (let p = port + 1; p <= Math.min(65535, port + tries); p++) {
    if ((await probeListen(host, p)) === undefined) return p;
  }
  return undefined;
}

export interface PortHolder {
  pid: number;
  /** Its command line, arguments separated by spaces. */
  command: string;
}

/** The process listening on TCP `port` (any local address), when /proc tells. */
export function portHolder(port: number, proc = '/proc'): PortHolder | undefined {
  const inodes = new Set<string>();
  for (const table of ['net/tcp', 'net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(`${proc}/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (f.length < 10 || f[3] !== '0A') continue; // 0A: LISTEN
      if (parseInt(f[1]!.split(':')[1] ?? '', 16) === port && f[9] !== '0') inodes.add(f[9]!);
    }
  }
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`${proc}/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to inspect
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`${proc}/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1]!)) return { pid: Number(pid), command: commandOf(proc, pid) };
    }
  }
  return undefined;
}

function commandOf(proc: string, pid: string): string {
  try {
    return readFileSync(`${proc}/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}
