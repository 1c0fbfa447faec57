// Progress lines for long waits (login polling, held statements, access requests, reconnects): an
// animated spinner with the time waited on a terminal, plain one-off lines everywhere else (a pipe,
// a log file, CI, NO_COLOR), so that what is written to a file reads like a log and not like
// carriage-return soup. Lines printed through `say` while a spinner runs land above it.
import { paint, type StreamLike } from './style.js';

export interface ProgressStream extends StreamLike {
  write(chunk: string): boolean;
  columns?: number;
}

export interface Progress {
  /** Replaces the text (plain mode prints it as a new line when it changed). */
  update(text: string): void;
  /** Stops; `final` (if any) is printed as a line of its own. Idempotent. */
  done(final?: string): void;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TICK_MS = 100;

/** Animate only on an interactive terminal that is not CI and has not asked for plain output. */
export function animates(stream: StreamLike, env: NodeJS.ProcessEnv = process.env): boolean {
  if (stream.isTTY !== true) return false;
  if (env['NO_COLOR'] || env['CI'] || env['TERM'] === 'dumb') return false;
  return true;
}

interface Active {
  stream: ProgressStream;
  render: () => void;
}

/** The one spinner that owns the bottom line of its stream; another waits its turn as plain lines. */
let active: Active | undefined;

function clearLine(stream: ProgressStream): void {
  stream.write('\r\x1b[2K');
}

/**
 * Writes one line to `stream` (stderr by default) without tearing a running spinner: the spinner's
 * line is cleared, the text printed, and the spinner drawn again below it.
 */
export function say(line: string, stream: ProgressStream = process.stderr): void {
  if (active && active.stream === stream) {
    clearLine(stream);
    stream.write(`${line}\n`);
    active.render();
    return;
  }
  stream.write(`${line}\n`);
}

function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

export interface ProgressOptions {
  stream?: ProgressStream;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

/** Starts a progress line for a wait of unknown length. */
export function progress(text: string, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const env = opts.env ?? process.env;
  const now = opts.now ?? Date.now;
  if (!animates(stream, env) || (active && active.stream === stream)) return plainProgress(text, stream);
  const c = paint(stream, env);
  const started = now();
  let frame = 0;
  let current = text;
  let stopped = false;
  const render = (): void => {
    const width = Math.max(20, (stream.columns ?? 80) - 1);
    const tail = ` · ${formatElapsed(now() - started)}`;
    // Keep to one terminal row: a wrapped line could not be cleared with \r.
    const body = current.length + tail.length + 2 > width ? `${current.slice(0, Math.max(0, width - tail.length - 3))}…` : current;
    clearLine(stream);
    stream.write(`${c.cyan(FRAMES[frame % FRAMES.length] ?? '*')} ${body}${c.dim(tail)}`);
  };
  const me: Active = { stream, render };
  active = me;
  render();
  const timer = setInterval(() => {
    frame++;
    render();
  }, TICK_MS);
  // A spinner must never be what keeps the process alive.
  timer.unref();
  return {
    update(next) {
      if (stopped) return;
      current = next;
      render();
    },
    done(final) {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      clearLine(stream);
      if (active === me) active = undefined;
      if (final !== undefined) stream.write(`${final}\n`);
    },
  };
}

function plainProgress(text: string, stream: ProgressStream): Progress {
  let current = text;
  let stopped = false;
  say(text, stream);
  return {
    update(next) {
      if (stopped || next === current) return;
      current = next;
      say(next, stream);
    },
    done(final) {
      if (stopped) return;
      stopped = true;
      if (final !== undefined) say(final, stream);
    },
  };
}
