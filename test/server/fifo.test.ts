// The O(1)-shift queue under the result tracker and the statement results: order kept across compactions.
import { describe, expect, it } from 'vitest';
import { Fifo } from '../../src/server/fifo.js';

describe('Fifo', () => {
  it('gives items back oldest first, through compactions and interleaved pushes', () => {
    const q = new Fifo<number>();
    const out: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 300; i++) q.push(next++);
      for (let i = 0; i < 250; i++) out.push(q.shift()!);
    }
    expect(q.length).toBe(50 * 50);
    expect(q.peek()).toBe(out.length);
    expect([...q]).toEqual(Array.from({ length: 2500 }, (_, i) => out.length + i));
    while (q.length > 0) out.push(q.shift()!);
    expect(out).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(q.shift()).toBeUndefined();
    expect(q.peek()).toBeUndefined();
  });
});
