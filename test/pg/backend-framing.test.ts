// BackendFramer tests: frames match the serialized messages, views not copies, push and pushWhole agree under arbitrary splits, and bad streams fail closed.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  BackendFramer,
  ProtocolError,
  bindComplete,
  commandComplete,
  copyData,
  dataRow,
  errorResponse,
  noticeResponse,
  parameterStatus,
  readyForQuery,
  rowDescription,
  type BackendFrame,
} from '../../src/pg/index.js';
import { bytes, ownChunks, splitAt, splitPoints, text } from './helpers.js';

const backendMessage: fc.Arbitrary<Buffer> = fc.oneof(
  fc.array(fc.option(text(10), { nil: null }), { maxLength: 4 }).map((v) => dataRow(v)),
  text(20).map((t) => commandComplete(t)),
  fc.constantFrom<'I' | 'T' | 'E'>('I', 'T', 'E').map((s) => readyForQuery(s)),
  fc.tuple(text(), text()).map(([a, b]) => parameterStatus(a, b)),
  fc.constant(bindComplete()),
  bytes(60).map((d) => copyData(d)),
  text(30).map((m) => errorResponse({ severity: 'ERROR', code: '42601', message: m })),
  text(30).map((m) => noticeResponse({ severity: 'NOTICE', code: '00000', message: m })),
  fc.constant(rowDescription([{ name: 'ssn', tableOid: 16400, columnAttr: 3, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }])),
);

const stream = fc.array(backendMessage, { minLength: 1, maxLength: 10 }).map((msgs) => ({ msgs, wire: Buffer.concat(msgs) }));

function frames(result: BackendFrame[] | ProtocolError): BackendFrame[] {
  if (result instanceof ProtocolError) throw result;
  return result;
}

function hexFrames(list: BackendFrame[]): string[] {
  return list.map((f) => `${f.type.toString(16)}:${f.body.toString('hex')}:${f.raw.toString('hex')}`);
}

/** Outcome of feeding chunks with push, as the concatenated raw bytes per push or the error text. */
function viaPush(chunks: Buffer[], framer = new BackendFramer()): string[] {
  return chunks.map((c) => {
    const r = framer.push(c);
    return r instanceof ProtocolError ? `error: ${r.message}` : Buffer.concat(r.map((f) => f.raw)).toString('hex');
  });
}

function viaWhole(chunks: Buffer[], framer = new BackendFramer()): string[] {
  return chunks.map((c) => {
    const r = framer.pushWhole(c);
    return r instanceof ProtocolError ? `error: ${r.message}` : r.toString('hex');
  });
}

describe('BackendFramer', () => {
  it('frames each message with its type, body and raw bytes', () => {
    const msgs = [readyForQuery('I'), dataRow(['1', null]), commandComplete('SELECT 1')];
    const out = frames(new BackendFramer().push(Buffer.concat(msgs)));
    expect(out.map((f) => String.fromCharCode(f.type))).toEqual(['Z', 'D', 'C']);
    out.forEach((f, i) => {
      expect(f.raw.equals(msgs[i] as Buffer)).toBe(true);
      expect(f.body.equals((msgs[i] as Buffer).subarray(5))).toBe(true);
    });
  });

  it('returns views of the chunk for whole messages and a joined buffer for split ones', () => {
    const chunk = Buffer.concat([readyForQuery('I'), dataRow(['x']), commandComplete('SELECT 1')]);
    const out = frames(new BackendFramer().push(chunk));
    for (const f of out) {
      expect(f.raw.buffer).toBe(chunk.buffer);
      expect(f.body.buffer).toBe(chunk.buffer);
    }
    const f = new BackendFramer();
    const row = dataRow(['hello']);
    expect(frames(f.push(row.subarray(0, 7)))).toEqual([]);
    expect(f.pendingBytes).toBe(7);
    const [joined] = frames(f.push(row.subarray(7)));
    expect(joined?.raw.equals(row)).toBe(true);
    expect(f.pendingBytes).toBe(0);
  });

  it('pushWhole returns the chunk itself, a prefix view, an empty buffer, or a join', () => {
    const a = dataRow(['a']);
    const b = commandComplete('SELECT 1');
    const f = new BackendFramer();
    const whole = Buffer.concat([a, b]);
    expect(f.pushWhole(whole)).toBe(whole);
    const withTail = Buffer.concat([a, b.subarray(0, 3)]);
    const prefix = f.pushWhole(withTail) as Buffer;
    expect(prefix.buffer).toBe(withTail.buffer);
    expect(prefix.equals(a)).toBe(true);
    expect(f.pushWhole(b.subarray(3, 6))).toHaveLength(0);
    const rest = Buffer.concat([b.subarray(6), a]);
    expect((f.pushWhole(rest) as Buffer).equals(Buffer.concat([b, a]))).toBe(true);
    expect(f.pendingBytes).toBe(0);
  });

  it('feed and next walk the same messages as push, positioned in the chunk, a joined one first', () => {
    const row = dataRow(['hello']);
    const msgs = [readyForQuery('I'), dataRow(['1', null]), commandComplete('SELECT 1')];
    const f = new BackendFramer();
    expect(f.feed(row.subarray(0, 7))).toBeUndefined();
    expect(f.next()).toBe(-1);
    const chunk = Buffer.concat([row.subarray(7), ...msgs, row.subarray(0, 3)]);
    expect(f.feed(chunk)).toBeUndefined();
    const seen: string[] = [];
    const inChunk: boolean[] = [];
    for (let t = f.next(); t >= 0; t = f.next()) {
      expect(f.buf[f.start]).toBe(t);
      seen.push(f.buf.subarray(f.start, f.end).toString('hex'));
      inChunk.push(f.buf === chunk);
      expect(f.current().raw.equals(f.buf.subarray(f.start, f.end))).toBe(true);
    }
    expect(seen).toEqual([row, ...msgs].map((m) => m.toString('hex')));
    expect(inChunk).toEqual([false, true, true, true]);
    expect(f.pendingBytes).toBe(3);
    expect(frames(f.push(row.subarray(3))).map((x) => x.raw.toString('hex'))).toEqual([row.toString('hex')]);
  });

  it('fails when a chunk is fed before the previous one was read to its end, instead of reordering', () => {
    const f = new BackendFramer();
    expect(f.feed(Buffer.concat([readyForQuery('I'), readyForQuery('I')]))).toBeUndefined();
    expect(f.next()).toBe(0x5a);
    const err = f.feed(readyForQuery('T'));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err?.message).toMatch(/before the previous one was read to its end/);
    expect(f.pushWhole(readyForQuery('I'))).toBe(err);
    expect(f.next()).toBe(-2);
  });

  it('reports bad streams precisely and stays failed', () => {
    const err = (chunk: Buffer, opts?: { maxMessageSize: number }): string => {
      const f = new BackendFramer(opts);
      const r = f.push(chunk);
      expect(r).toBeInstanceOf(ProtocolError);
      expect(f.push(readyForQuery('I'))).toBe(r);
      expect(f.pushWhole(readyForQuery('I'))).toBe(r);
      expect(f.error).toBe(r);
      return (r as ProtocolError).message;
    };
    expect(err(Buffer.from('x'))).toBe('unknown backend message type 0x78');
    expect(err(Buffer.from([0x44, 0, 0, 0, 3]))).toBe("invalid message length 3 for type 'D'");
    expect(err(Buffer.from([0x5a, 0, 0, 0, 6, 0x49, 0]))).toBe("invalid message length 6 for type 'Z'");
    expect(err(Buffer.from([0x31, 0, 0, 0, 5, 0]))).toBe("invalid message length 5 for type '1'");
    expect(err(Buffer.from([0x44, 0x11, 0xe1, 0xa3, 0]))).toBe("message of 300000000 bytes exceeds limit of 268435456 (type 'D')");
    expect(err(dataRow(['abcdefgh']), { maxMessageSize: 10 })).toBe("message of 18 bytes exceeds limit of 10 (type 'D')");
    expect(err(Buffer.concat([readyForQuery('I'), Buffer.from([0xff])]))).toBe('unknown backend message type 0xff');
  });

  it('push gives the same frames however the stream is split', () => {
    fc.assert(
      fc.property(
        stream.chain((s) => fc.tuple(fc.constant(s), splitPoints(s.wire.length))),
        ([{ msgs, wire }, points]) => {
          const f = new BackendFramer();
          const out = splitAt(wire, points).flatMap((c) => frames(f.push(c)));
          expect(out.map((x) => x.raw.toString('hex'))).toEqual(msgs.map((m) => m.toString('hex')));
          expect(hexFrames(out)).toEqual(hexFrames(frames(new BackendFramer().push(wire))));
          expect(f.pendingBytes).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('push and pushWhole agree chunk by chunk, even when mixed', () => {
    fc.assert(
      fc.property(
        stream.chain((s) => fc.tuple(fc.constant(s.wire), splitPoints(s.wire.length), fc.array(fc.boolean(), { minLength: 13, maxLength: 13 }))),
        ([wire, points, picks]) => {
          const chunks = ownChunks(splitAt(wire, points));
          const p = viaPush(chunks);
          expect(viaWhole(chunks)).toEqual(p);
          expect(p.join('')).toBe(wire.toString('hex'));
          // Switching method at every chunk must not change the outcome either.
          const mixed = new BackendFramer();
          const m = chunks.map((c, i) => (picks[i] ? viaWhole([c], mixed)[0] : viaPush([c], mixed)[0]));
          expect(m).toEqual(p);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('agrees byte by byte', () => {
    fc.assert(
      fc.property(stream, ({ wire }) => {
        const chunks = [...wire].map((b) => Buffer.from([b]));
        expect(viaWhole(chunks)).toEqual(viaPush(chunks));
        expect(viaPush(chunks).join('')).toBe(wire.toString('hex'));
      }),
      { numRuns: 100 },
    );
  });

  it('never throws on garbage or corrupted streams, and push and pushWhole fail at the same chunk', () => {
    const corrupted = fc.oneof(
      bytes(80),
      fc.tuple(stream, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 })).map(([s, flips]) => {
        const b = Buffer.from(s.wire);
        for (const [at, v] of flips) b[at % b.length] = v;
        return b;
      }),
    );
    fc.assert(
      fc.property(
        corrupted.chain((wire) => fc.tuple(fc.constant(wire), splitPoints(wire.length))),
        ([wire, points]) => {
          const chunks = splitAt(wire, points);
          const p = viaPush(chunks);
          expect(viaWhole(chunks)).toEqual(p);
          const firstError = p.findIndex((r) => r.startsWith('error:'));
          if (firstError >= 0) {
            // Sticky: every later push reports the same error.
            for (const r of p.slice(firstError)) expect(r).toBe(p[firstError]);
            // And the verdict does not depend on how the stream was split.
            const unsplit = viaPush([wire])[0] as string;
            expect(unsplit).toBe(p[firstError]);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
