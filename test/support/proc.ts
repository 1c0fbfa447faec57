// Child processes of the phigate binary for tests and benchmarks: collects output, waits for a line.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** bin/phigate.js of this checkout, found from here whether running from test/ or dist/test/. */
export const BIN = ((): string => {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'bin', 'phigate.js');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('bin/phigate.js not found above ' + import.meta.dirname);
})();

export interface Proc {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the first stdout match of `re` (rejects if the process exits first). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

let home: string | undefined;
function isolatedHome(): string {
  home ??= mkdtempSync(join(tmpdir(), 'phigate-home-'));
  return home;
}

/** `detached`: the child leads a process group of its own (signal it and its children as a terminal's Ctrl-C does: kill(-pid)). */
export function run(args: string[], env: NodeJS.ProcessEnv = {}, opts: { cwd?: string; nodeArgs?: string[]; detached?: boolean } = {}): Proc {
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), BIN, ...args], {
    // A private PHIGATE_HOME unless the test names one: tests never see a developer's stored logins.
    env: { ...process.env, NO_COLOR: '1', PHIGATE_HOME: isolatedHome(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: opts.cwd,
    detached: opts.detached === true,
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    proc.once('exit', (code, signal) => res({ code, signal })));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(re, timeoutMs = 15_000) {
      return new Promise((res, rej) => {
        const check = (): boolean => {
          const m = re.exec(out);
          if (m) {
            cleanup();
            res(m);
            return true;
          }
          return false;
        };
        const onData = (): void => void check();
        const timer = setTimeout(() => {
          cleanup();
          rej(new Error(`timed out waiting for ${re} in stdout; stdout=${out} stderr=${err}`));
        }, timeoutMs);
        const onExit = (): void => {
          if (!check()) {
            cleanup();
            rej(new Error(`process exited before ${re}; stdout=${out} stderr=${err}`));
          }
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          proc.stdout!.off('data', onData);
          proc.off('exit', onExit);
        };
        proc.stdout!.on('data', onData);
        proc.once('exit', onExit);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}

