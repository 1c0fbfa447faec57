// The replay player's model, apart from the components so it can be tested alone: which blocks of
// the session are on screen, the playback clock (session time), speed, pause and step mode.
import type { Block } from '../../recording/psql.js';

export interface PlayerState {
  blocks: readonly Block[];
  /** Blocks on screen (a prefix of `blocks`). */
  shown: number;
  /** Session time reached, ms. */
  clock: number;
  /** Session length, ms (time of the last block). */
  total: number;
  speed: number;
  paused: boolean;
  /** --step: nothing plays by itself; each advance shows the next statement and what it produced. */
  step: boolean;
}

export type PlayerAction =
  | { type: 'tick'; realMs: number }
  | { type: 'advance' }
  | { type: 'toggle' }
  | { type: 'speed'; factor: number };

export const MIN_SPEED = 0.125;
export const MAX_SPEED = 64;

export function initialPlayer(blocks: readonly Block[], opts: { speed?: number; step?: boolean } = {}): PlayerState {
  const total = blocks.length > 0 ? blocks[blocks.length - 1]!.t : 0;
  return reveal({ blocks, shown: 0, clock: 0, total, speed: opts.speed ?? 1, paused: false, step: opts.step ?? false });
}

/** Shows every block whose time has come. */
function reveal(s: PlayerState): PlayerState {
  let shown = s.shown;
  while (shown < s.blocks.length && s.blocks[shown]!.t <= s.clock && !s.step) shown++;
  return shown === s.shown ? s : { ...s, shown };
}

export function playerReducer(s: PlayerState, a: PlayerAction): PlayerState {
  switch (a.type) {
    case 'tick':
      if (s.paused || s.step || isDone(s)) return s;
      return reveal({ ...s, clock: Math.min(s.total, s.clock + a.realMs * s.speed) });
    case 'advance': {
      if (isDone(s)) return s;
      // Through the next statement's output: up to (not including) the statement after it.
      let i = s.shown;
      if (s.blocks[i]?.kind === 'statement') i++;
      while (i < s.blocks.length && s.blocks[i]!.kind !== 'statement') i++;
      return { ...s, shown: i, clock: Math.max(s.clock, s.blocks[i - 1]?.t ?? s.clock) };
    }
    case 'toggle':
      return s.step ? playerReducer(s, { type: 'advance' }) : { ...s, paused: !s.paused };
    case 'speed':
      return { ...s, speed: Math.min(MAX_SPEED, Math.max(MIN_SPEED, s.speed * a.factor)) };
  }
}

export function isDone(s: PlayerState): boolean {
  return s.shown >= s.blocks.length;
}

/** Statements on screen and in all. */
export function statementProgress(s: PlayerState): { current: number; total: number } {
  let current = 0;
  let total = 0;
  s.blocks.forEach((b, i) => {
    if (b.kind !== 'statement') return;
    total++;
    if (i < s.shown) current++;
  });
  return { current, total };
}

export function formatClock(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** `[██████░░░░]` for the fraction played. */
export function progressBar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 1));
  const full = Math.round(f * width);
  return `[${'█'.repeat(full)}${'░'.repeat(width - full)}]`;
}

export function formatSpeed(speed: number): string {
  return `×${speed >= 1 ? String(speed) : `1/${Math.round(1 / speed)}`}`;
}
