// A private tmux server for terminal tests: drives a real pseudo-terminal (new session, keys, screen
// captures) without touching anyone else's sessions, and waits for text to appear on screen.
// Whether tmux is installed: expectTools('tmux') (test/support/expect-tools.ts).
import { execFileSync } from 'node:child_process';

export interface CaptureOptions {
  /** Keep escape sequences (colours). */
  escapes?: boolean;
  /** The whole scrollback, wrapped lines joined. */
  history?: boolean;
}

export class Tmux {
  private readonly socket: string;

  constructor(name: string) {
    this.socket = `phigate-${name}-${process.pid}`;
  }

  run(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }

  /** Starts `cmd` in a detached session of the given size, with extra environment variables. */
  start(session: string, cmd: string, size: { x: number; y: number }, env: Record<string, string> = {}): void {
    this.run('new-session', '-d', '-s', session, '-x', String(size.x), '-y', String(size.y),
      ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), cmd);
  }

  screen(session: string, opts: CaptureOptions = {}): string {
    return this.run('capture-pane', '-p', ...(opts.escapes ? ['-e'] : []), ...(opts.history ? ['-J', '-S', '-'] : []), '-t', session);
  }

  /** Polls the screen until `re` matches; `stop` ends the wait early (e.g. the program exited). */
  async waitFor(session: string, re: RegExp, opts: CaptureOptions & { timeoutMs?: number; pollMs?: number; stop?: (s: string) => string | undefined } = {}): Promise<string> {
    const until = Date.now() + (opts.timeoutMs ?? 40_000);
    for (;;) {
      const s = this.screen(session, opts);
      if (re.test(s)) return s;
      const stopped = opts.stop?.(s);
      if (stopped !== undefined) throw new Error(`${stopped} before ${re}:\n${s}`);
      if (Date.now() > until) throw new Error(`timed out waiting for ${re} on screen:\n${s}`);
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 100));
    }
  }

  kill(): void {
    try {
      this.run('kill-server');
    } catch {
      // already gone
    }
  }
}
