// The replay player's model: original pacing scaled by speed, pause, step mode, next statement.
import { describe, expect, it } from 'vitest';
import type { Block } from '../../src/recording/psql.js';
import { formatClock, formatSpeed, initialPlayer, isDone, playerReducer, progressBar, statementProgress } from '../../src/ui/replay/state.js';

const b = (t: number, kind: Block['kind'], n: number): Block => ({ t, kind, n, lines: [`${kind} ${n}`] });
const BLOCKS: Block[] = [b(0, 'statement', 1), b(40, 'result', 1), b(1000, 'statement', 2), b(1500, 'phigate', 2), b(3000, 'result', 2), b(3500, 'statement', 3), b(3600, 'message', 3), b(4000, 'end', 3)];

describe('replay player', () => {
  it('reveals blocks as session time passes, scaled by speed', () => {
    let s = initialPlayer(BLOCKS, { speed: 2 });
    expect(s.shown).toBe(1);
    s = playerReducer(s, { type: 'tick', realMs: 20 });
    expect(s).toMatchObject({ clock: 40, shown: 2 });
    s = playerReducer(s, { type: 'tick', realMs: 480 });
    expect(s.shown).toBe(3);
    expect(statementProgress(s)).toEqual({ current: 2, total: 3 });
    s = playerReducer(s, { type: 'toggle' });
    expect(playerReducer(s, { type: 'tick', realMs: 10_000 }).shown).toBe(3);
    s = playerReducer(playerReducer(s, { type: 'toggle' }), { type: 'tick', realMs: 10_000 });
    expect(isDone(s)).toBe(true);
    expect(s.clock).toBe(4000);
  });

  it('step mode: nothing plays by itself; each advance shows a statement and its output', () => {
    let s = initialPlayer(BLOCKS, { step: true });
    expect(s.shown).toBe(0);
    expect(playerReducer(s, { type: 'tick', realMs: 100_000 }).shown).toBe(0);
    s = playerReducer(s, { type: 'advance' });
    expect(s.shown).toBe(2);
    s = playerReducer(s, { type: 'toggle' });
    expect(s).toMatchObject({ shown: 5, clock: 3000 });
    s = playerReducer(s, { type: 'advance' });
    expect(isDone(s)).toBe(true);
  });

  it('speed stays within bounds; formatting', () => {
    let s = initialPlayer(BLOCKS);
    for (let i = 0; i < 20; i++) s = playerReducer(s, { type: 'speed', factor: 2 });
    expect(s.speed).toBe(64);
    for (let i = 0; i < 20; i++) s = playerReducer(s, { type: 'speed', factor: 0.5 });
    expect(formatSpeed(s.speed)).toBe('×1/8');
    expect(formatClock(3_723_000)).toBe('1:02:03');
    expect(formatClock(65_000)).toBe('01:05');
    expect(progressBar(0.5, 10)).toBe('[█████░░░░░]');
  });
});
