// The tunnel liveness decision without sockets: when a silent peer counts as gone, and when silence
// is this end's own doing (it paused reading, or it was stopped itself).
import { describe, expect, it } from 'vitest';
import { HEADER_LIVENESS, Liveness, livenessHeader, parseLivenessHeader, roughly } from '../../src/tunnel/liveness.js';

const T = { intervalMs: 100, timeoutMs: 300 };

describe('Liveness', () => {
  it('gives up on a peer silent for the timeout, not before', () => {
    const l = new Liveness(T, 0);
    expect(l.tick(100, false).dead).toBe(false);
    expect(l.tick(200, false).dead).toBe(false);
    expect(l.tick(300, false)).toEqual({ dead: true, silentMs: 300 });
  });

  it('counts any frame heard since the last tick', () => {
    const l = new Liveness(T, 0);
    l.tick(100, false);
    l.tick(200, false);
    l.heard();
    expect(l.tick(300, false).dead).toBe(false);
    expect(l.tick(400, false).dead).toBe(false);
    expect(l.tick(500, false).dead).toBe(false);
    expect(l.tick(600, false).dead).toBe(true);
  });

  it('does not count silence while this end is not reading', () => {
    const l = new Liveness(T, 0);
    for (let t = 100; t <= 1_000; t += 100) expect(l.tick(t, true).dead).toBe(false);
    expect(l.tick(1_100, false).dead).toBe(false);
    expect(l.tick(1_200, false).dead).toBe(false);
    expect(l.tick(1_300, false).dead).toBe(true);
  });

  it('gives the peer a fresh timeout after a tick that came far too late (this process was stopped)', () => {
    const l = new Liveness(T, 0);
    l.tick(100, false);
    expect(l.tick(5_000, false).dead).toBe(false);
    expect(l.tick(5_100, false).dead).toBe(false);
    expect(l.tick(5_200, false).dead).toBe(false);
    expect(l.tick(5_300, false).dead).toBe(true);
  });
});

describe('the liveness header', () => {
  it('carries the server timing to the CLI; absent or broken means the defaults', () => {
    const [name, value] = livenessHeader({ intervalMs: 200, timeoutMs: 1_000 }).split(': ');
    expect(name).toBe(HEADER_LIVENESS);
    expect(parseLivenessHeader({ [HEADER_LIVENESS]: value })).toEqual({ intervalMs: 200, timeoutMs: 1_000 });
    expect(parseLivenessHeader({})).toEqual({ intervalMs: 15_000, timeoutMs: 45_000 });
    expect(parseLivenessHeader({ [HEADER_LIVENESS]: 'interval=500; timeout=100' })).toEqual({ intervalMs: 15_000, timeoutMs: 45_000 });
  });

  it('rounds silences for messages', () => {
    expect(roughly(250)).toBe('250ms');
    expect(roughly(1_203)).toBe('1s');
    expect(roughly(45_600)).toBe('46s');
  });
});
