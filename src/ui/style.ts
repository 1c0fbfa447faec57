// Colours for the CLI's plain-text output (chalk 5), decided per stream: none when NO_COLOR is set,
// when the stream is not a terminal (pipes, files, --json consumers) or when TERM is dumb.
import { Chalk, type ChalkInstance } from 'chalk';

export interface StreamLike {
  isTTY?: boolean;
}

/** Whether `stream` should get ANSI colours under `env` (https://no-color.org: any non-empty value). */
export function colourEnabled(stream: StreamLike, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env['NO_COLOR']) return false;
  if (env['FORCE_COLOR'] && env['FORCE_COLOR'] !== '0') return true;
  if (env['TERM'] === 'dumb') return false;
  return stream.isTTY === true;
}

const cache = new WeakMap<object, ChalkInstance>();

/** A chalk instance for `stream`: level 0 (plain text) unless colourEnabled says otherwise. */
export function paint(stream: StreamLike = process.stdout, env: NodeJS.ProcessEnv = process.env): ChalkInstance {
  const enabled = colourEnabled(stream, env);
  // The cache keeps one instance per stream; the env is read once per process, as chalk itself does.
  if (env === process.env) {
    const hit = cache.get(stream);
    if (hit) return hit;
  }
  const level = enabled ? Math.max(1, new Chalk().level) as 1 | 2 | 3 : 0;
  const c = new Chalk({ level });
  if (env === process.env) cache.set(stream, c);
  return c;
}

/** stderr's palette: errors, hints and progress lines. */
export const errPaint = (): ChalkInstance => paint(process.stderr);
/** stdout's palette: tables, the demo tour. */
export const outPaint = (): ChalkInstance => paint(process.stdout);
