// ByteSink: unchanged runs stay views of the input, rewritten bytes are copied in order, and the output is one buffer.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ByteSink } from '../../src/pg/index.js';

describe('ByteSink', () => {
  it('returns the input itself, or a view of it, when only contiguous runs of it were appended', () => {
    const input = Buffer.from('abcdefgh');
    const sink = new ByteSink();
    sink.begin(input.length);
    sink.append(input, 0, 3);
    sink.append(input, 3, 8);
    expect(sink.take()).toBe(input);
    sink.begin(input.length);
    sink.append(input, 2, 4);
    sink.append(input, 4, 6);
    const view = sink.take();
    expect(view.toString()).toBe('cdef');
    expect(view.buffer === input.buffer && view.byteOffset === input.byteOffset + 2).toBe(true);
    sink.begin(0);
    expect(sink.take()).toHaveLength(0);
  });

  it('copies once something is rewritten, keeping the order of appends and writes', () => {
    const input = Buffer.from('0123456789');
    const sink = new ByteSink();
    sink.begin(4);
    sink.append(input, 0, 2);
    const at = sink.reserve(3);
    sink.buf.write('XYZ', at, 'latin1');
    sink.commit(3);
    sink.append(input, 5, 10);
    sink.append(Buffer.from('!'));
    const out = sink.take();
    expect(out.toString()).toBe('01XYZ56789!');
    // Written bytes never land in the input.
    expect(input.toString()).toBe('0123456789');
  });

  it('gives the concatenation of any mix of appends and writes, however small its size hint', () => {
    const op = fc.oneof(
      fc.tuple(fc.constant('append' as const), fc.nat(40), fc.nat(40)),
      fc.tuple(fc.constant('write' as const), fc.uint8Array({ maxLength: 50 }).map((b) => Buffer.from(b)), fc.constant(0)),
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 40, maxLength: 40 }), fc.array(op, { maxLength: 20 }), fc.nat(100), (bytes, ops, hint) => {
        const input = Buffer.from(bytes);
        const sink = new ByteSink();
        sink.begin(hint);
        const expected: Buffer[] = [];
        for (const [kind, a, b] of ops) {
          if (kind === 'append') {
            const [from, to] = a <= b ? [a, b] : [b, a];
            sink.append(input, from, to);
            expected.push(input.subarray(from, to));
          } else {
            const at = sink.reserve(a.length);
            a.copy(sink.buf, at);
            sink.commit(a.length);
            expected.push(a);
          }
        }
        expect(sink.take().equals(Buffer.concat(expected))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
