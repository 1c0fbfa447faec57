// Frontend parser tests: cross-checked against pg-protocol's serializer, plus property tests for round-trips, split-invariance and garbage handling.
import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { FrontendParser, ProtocolError, type FrontendMessage } from '../../src/pg/index.js';
import {
  bytes,
  encodeAll,
  encodeFrontend,
  norm,
  normAll,
  normalMessage,
  ownChunks,
  session,
  splitAt,
  splitPoints,
  startupMessage,
  withoutRaw,
  type FrontendSpec,
} from './helpers.js';
import { caseBytes, fuzzCase } from '../support/pg-fuzz.js';

const STARTUP = serialize.startup({ user: 'alice', database: 'clinic' });

function parseAll(chunks: Buffer[], parser = new FrontendParser()): FrontendMessage[] {
  const out: FrontendMessage[] = [];
  for (const c of chunks) out.push(...parser.push(c));
  return out;
}

/** Parses one message sent after a Startup. */
function one(msg: Buffer): FrontendMessage {
  const p = new FrontendParser();
  p.push(STARTUP);
  const out = p.push(msg);
  expect(out).toHaveLength(1);
  return out[0] as FrontendMessage;
}

function errorOf(chunks: Buffer[], parser?: FrontendParser): string {
  const out = parseAll(chunks, parser);
  const last = out[out.length - 1];
  if (last?.type !== 'ProtocolError') throw new Error(`expected a ProtocolError, got ${JSON.stringify(out.map((m) => m.type))}`);
  expect(last.error).toBeInstanceOf(ProtocolError);
  expect(last.error.sqlstate).toBe('08P01');
  return last.error.message;
}

const afterStartup = (...msgs: Buffer[]): Buffer[] => [STARTUP, ...msgs];

describe('FrontendParser against pg-protocol serialize', () => {
  it('parses a Startup with its parameters', () => {
    const p = new FrontendParser();
    expect(p.phase).toBe('startup');
    const [m] = p.push(serialize.startup({ user: 'alice', database: 'clinic', application_name: 'psql', options: '-c x=é' }));
    expect(m?.type).toBe('Startup');
    if (m?.type !== 'Startup') return;
    expect(m.protocolVersion).toBe(196608);
    expect({ ...m.parameters }).toEqual({ user: 'alice', database: 'clinic', application_name: 'psql', options: '-c x=é', client_encoding: 'UTF8' });
    expect(p.phase).toBe('normal');
  });

  it('keeps the startup phase across SSLRequest and GSSENCRequest', () => {
    const p = new FrontendParser();
    expect(p.push(serialize.requestSsl()).map((m) => m.type)).toEqual(['SSLRequest']);
    expect(p.phase).toBe('startup');
    expect(p.push(encodeFrontend({ type: 'GSSENCRequest' })).map((m) => m.type)).toEqual(['GSSENCRequest']);
    expect(p.phase).toBe('startup');
    expect(p.push(STARTUP).map((m) => m.type)).toEqual(['Startup']);
    expect(p.phase).toBe('normal');
  });

  it('parses a CancelRequest and then accepts nothing more', () => {
    const p = new FrontendParser();
    const [m] = p.push(serialize.cancel(4242, -123456789));
    expect(m?.type).toBe('CancelRequest');
    if (m?.type !== 'CancelRequest') return;
    expect(m.processId).toBe(4242);
    expect(m.secretKey.readInt32BE(0)).toBe(-123456789);
    expect(m.secretKey).toHaveLength(4);
    expect(p.phase).toBe('done');
    const [e] = p.push(Buffer.from([0]));
    expect(e?.type).toBe('ProtocolError');
    expect(p.phase).toBe('failed');
    expect(p.push(Buffer.from([0]))).toEqual([]);
  });

  it('parses Query', () => {
    expect(norm(one(serialize.query('select 1; -- é😀')))).toMatchObject({ type: 'Query', sql: 'select 1; -- é😀' });
  });

  it('parses Parse with and without parameter types', () => {
    expect(withoutRaw(norm(one(serialize.parse({ text: 'select $1, $2', name: 'stmt1', types: [23, 4294967295] }))))).toEqual({
      type: 'Parse',
      name: 'stmt1',
      sql: 'select $1, $2',
      paramTypes: [23, 4294967295],
    });
    expect(withoutRaw(norm(one(serialize.parse({ text: 'select 1' }))))).toEqual({ type: 'Parse', name: '', sql: 'select 1', paramTypes: [] });
  });

  it('parses Bind with text, binary and null parameters', () => {
    const m = one(serialize.bind({ portal: 'p1', statement: 's1', values: ['42', Buffer.from([0, 1, 2, 255]), null, '', 'ü'], binary: true }));
    expect(m.type).toBe('Bind');
    if (m.type !== 'Bind') return;
    expect(m.portal).toBe('p1');
    expect(m.statement).toBe('s1');
    expect(m.paramFormats).toEqual([0, 1, 0, 0, 0]);
    expect(m.params.map((v) => (v === null ? null : v.toString('hex')))).toEqual(['3432', '000102ff', null, '', 'c3bc']);
    expect(m.resultFormats).toEqual([1]);
    // Parameters are views into the message, not copies.
    for (const v of m.params) if (v) expect(v.buffer).toBe(m.raw.buffer);
    expect(withoutRaw(norm(one(serialize.bind())))).toEqual({ type: 'Bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [0] });
  });

  it('parses Describe, Close and Execute', () => {
    expect(withoutRaw(norm(one(serialize.describe({ type: 'S', name: 'stmt' }))))).toEqual({ type: 'Describe', kind: 'S', name: 'stmt' });
    expect(withoutRaw(norm(one(serialize.describe({ type: 'P' }))))).toEqual({ type: 'Describe', kind: 'P', name: '' });
    expect(withoutRaw(norm(one(serialize.close({ type: 'P', name: 'portal' }))))).toEqual({ type: 'Close', kind: 'P', name: 'portal' });
    expect(withoutRaw(norm(one(serialize.close({ type: 'S' }))))).toEqual({ type: 'Close', kind: 'S', name: '' });
    expect(withoutRaw(norm(one(serialize.execute())))).toEqual({ type: 'Execute', portal: '', maxRows: 0 });
    expect(withoutRaw(norm(one(serialize.execute({ portal: 'c1', rows: 100 }))))).toEqual({ type: 'Execute', portal: 'c1', maxRows: 100 });
  });

  it('parses Sync, Flush, Terminate and the COPY messages', () => {
    expect(one(serialize.sync()).type).toBe('Sync');
    expect(one(serialize.flush()).type).toBe('Flush');
    expect(one(serialize.end()).type).toBe('Terminate');
    expect(one(serialize.copyDone()).type).toBe('CopyDone');
    expect(withoutRaw(norm(one(serialize.copyData(Buffer.from('1\tAda\n')))))).toEqual({ type: 'CopyData', data: Buffer.from('1\tAda\n').toString('hex') });
    expect(withoutRaw(norm(one(serialize.copyFail('client gave up'))))).toEqual({ type: 'CopyFail', message: 'client gave up' });
  });

  it('parses password and SASL responses as opaque AuthResponse bytes', () => {
    const pw = one(serialize.password('s3cret'));
    expect(pw.type === 'AuthResponse' && pw.data.toString()).toBe('s3cret\0');
    const init = one(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abc'));
    expect(init.type).toBe('AuthResponse');
    if (init.type !== 'AuthResponse') return;
    const nul = init.data.indexOf(0);
    expect(init.data.toString('utf8', 0, nul)).toBe('SCRAM-SHA-256');
    expect(init.data.readInt32BE(nul + 1)).toBe(11);
    expect(init.data.toString('utf8', nul + 5)).toBe('n,,n=,r=abc');
    const fin = one(serialize.sendSCRAMClientFinalMessage('c=biws,r=abc,p=xyz'));
    expect(fin.type === 'AuthResponse' && fin.data.toString()).toBe('c=biws,r=abc,p=xyz');
  });

  it('accepts a whole pipelined batch in one chunk', () => {
    const chunk = Buffer.concat([
      STARTUP,
      serialize.parse({ text: 'select $1', types: [25] }),
      serialize.bind({ values: ['x'] }),
      serialize.describe({ type: 'P' }),
      serialize.execute(),
      serialize.sync(),
    ]);
    expect(parseAll([chunk]).map((m) => m.type)).toEqual(['Startup', 'Parse', 'Bind', 'Describe', 'Execute', 'Sync']);
  });

  it('the test encoder writes the same bytes as pg-protocol', () => {
    const pairs: [Buffer, FrontendSpec][] = [
      [serialize.query('select 1'), { type: 'Query', sql: 'select 1' }],
      [serialize.parse({ name: 'a', text: 'b', types: [1, 2] }), { type: 'Parse', name: 'a', sql: 'b', paramTypes: [1, 2] }],
      [serialize.bind({ portal: 'p', statement: 's', values: ['1', null], binary: true }), { type: 'Bind', portal: 'p', statement: 's', paramFormats: [0, 0], params: [Buffer.from('1'), null], resultFormats: [1] }],
      [serialize.describe({ type: 'S', name: 'n' }), { type: 'Describe', kind: 'S', name: 'n' }],
      [serialize.execute({ portal: 'p', rows: 5 }), { type: 'Execute', portal: 'p', maxRows: 5 }],
      [serialize.cancel(1, 2), { type: 'CancelRequest', processId: 1, secretKey: Buffer.from([0, 0, 0, 2]) }],
      [serialize.requestSsl(), { type: 'SSLRequest' }],
      [serialize.copyFail('x'), { type: 'CopyFail', message: 'x' }],
    ];
    for (const [theirs, spec] of pairs) expect(encodeFrontend(spec).toString('hex')).toBe(theirs.toString('hex'));
  });
});

describe('FrontendParser buffers', () => {
  it('returns raw as a view of the pushed chunk when the message is whole in it', () => {
    const chunk = Buffer.concat([STARTUP, serialize.query('select 1'), serialize.bind({ values: ['a'] }), serialize.sync()]);
    const out = new FrontendParser().push(chunk);
    let off = 0;
    for (const m of out) {
      if (m.type === 'ProtocolError') throw m.error;
      expect(m.raw.buffer).toBe(chunk.buffer);
      expect(m.raw.byteOffset).toBe(chunk.byteOffset + off);
      off += m.raw.length;
    }
    expect(off).toBe(chunk.length);
  });

  it('assembles a split message into its own buffer with the exact bytes', () => {
    const q = serialize.query('select 42');
    const p = new FrontendParser();
    p.push(STARTUP);
    expect(p.push(q.subarray(0, 3))).toEqual([]);
    const [m] = p.push(Buffer.concat([q.subarray(3), serialize.sync()]));
    expect(m?.type === 'Query' && m.raw.equals(q)).toBe(true);
  });

  it('joins a large message arriving in many small chunks once, not on every push', () => {
    const data = Buffer.alloc(2 * 1024 * 1024, 7);
    const msg = encodeFrontend({ type: 'CopyData', data });
    const p = new FrontendParser();
    p.push(STARTUP);
    const spy = vi.spyOn(Buffer, 'concat');
    try {
      const out: FrontendMessage[] = [];
      for (let i = 0; i < msg.length; i += 1000) out.push(...p.push(msg.subarray(i, i + 1000)));
      expect(out).toHaveLength(1);
      expect(out[0]?.type === 'CopyData' && out[0].data.equals(data)).toBe(true);
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('stores a startup parameter named __proto__', () => {
    const [m] = new FrontendParser().push(encodeFrontend({ type: 'Startup', protocolVersion: 196608, parameters: JSON.parse('{"__proto__":"x","user":"u"}') }));
    expect(m?.type === 'Startup' && Object.entries(m.parameters)).toEqual([
      ['__proto__', 'x'],
      ['user', 'u'],
    ]);
  });

  it('accepts 3.x minor versions and reports the one asked for', () => {
    const [m] = new FrontendParser().push(encodeFrontend({ type: 'Startup', protocolVersion: (3 << 16) | 2, parameters: { user: 'u' } }));
    expect(m?.type === 'Startup' && m.protocolVersion).toBe(196610);
  });
});

describe('FrontendParser protocol errors', () => {
  const typed = (type: string, len: number, body: number[] = []): Buffer => {
    const b = Buffer.alloc(5 + body.length);
    b.write(type, 0, 'latin1');
    b.writeInt32BE(len, 1);
    Buffer.from(body).copy(b, 5);
    return b;
  };

  it('names bad lengths, unknown types and oversize messages precisely', () => {
    expect(errorOf(afterStartup(typed('Q', 3)))).toBe("invalid message length 3 for type 'Q'");
    expect(errorOf(afterStartup(Buffer.from('z')))).toBe('unknown frontend message type 0x7a');
    expect(errorOf(afterStartup(Buffer.from([0])))).toBe('unknown frontend message type 0x00');
    expect(errorOf(afterStartup(typed('Q', 300000000)))).toBe("message of 300000000 bytes exceeds limit of 268435456 (type 'Q')");
    expect(errorOf(afterStartup(typed('S', 5, [0])))).toBe("invalid message length 5 for type 'S'");
    expect(errorOf(afterStartup(typed('D', 20000)))).toBe("message of 20000 bytes exceeds limit of 10000 (type 'D')");
    expect(errorOf([STARTUP, typed('Q', 300)], new FrontendParser({ maxMessageSize: 100 }))).toBe("message of 300 bytes exceeds limit of 100 (type 'Q')");
  });

  it('marks a message over the configured maximum (not a per-type limit) with its size, and reads a new maximum from the next header on', () => {
    const p = new FrontendParser({ maxMessageSize: 1000 });
    expect(p.push(STARTUP).map((m) => m.type)).toEqual(['Startup']);
    expect(p.push(serialize.query('select 1')).map((m) => m.type)).toEqual(['Query']);
    p.maxMessageSize = 10;
    const out = p.push(serialize.query('select 1'));
    const err = out[0]?.type === 'ProtocolError' ? out[0].error : undefined;
    expect(err?.size).toEqual({ length: 13, limit: 10 });
    const small = new FrontendParser();
    const typeLimited = parseAll([STARTUP, typed('D', 20000)], small).pop();
    expect(typeLimited?.type === 'ProtocolError' ? typeLimited.error.size : 'none').toBeUndefined();
  });

  it('rejects malformed bodies', () => {
    expect(errorOf(afterStartup(typed('Q', 7, [0x61, 0x62, 0x63])))).toBe('invalid Query message: string is missing its NUL terminator');
    expect(errorOf(afterStartup(typed('Q', 7, [0x61, 0, 0x63])))).toBe('invalid Query message: 1 trailing byte');
    expect(errorOf(afterStartup(typed('D', 7, [0x58, 0x61, 0])))).toBe("invalid Describe message: kind 'X' is neither 'S' nor 'P'");
    expect(errorOf(afterStartup(typed('E', 5, [0])))).toBe('invalid Execute message: field runs past the end of the message');
    // Parse declaring 3 parameter types but carrying one.
    expect(errorOf(afterStartup(typed('P', 12, [0, 0, 0, 3, 0, 0, 0, 23])))).toBe('invalid Parse message: 3 parameter types overflow the message');
    // Bind: one parameter of length -2.
    expect(errorOf(afterStartup(typed('B', 16, [0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0, 0])))).toBe('invalid Bind message: parameter 1 has length -2');
    // Bind: a parameter longer than the message.
    expect(errorOf(afterStartup(typed('B', 17, [0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 1, 0, 0])))).toBe('invalid Bind message: field runs past the end of the message');
    // Bind: 2 format codes for 3 parameters.
    const bind = encodeFrontend({ type: 'Bind', portal: '', statement: '', paramFormats: [0, 1], params: [null, null, null], resultFormats: [] });
    expect(errorOf(afterStartup(bind))).toBe('invalid Bind message: 2 parameter formats for 3 parameters');
  });

  it('rejects bad startup packets', () => {
    const startup = (code: number, body: number[] = []): Buffer => {
      const b = Buffer.alloc(8 + body.length);
      b.writeInt32BE(b.length, 0);
      b.writeUInt32BE(code, 4);
      Buffer.from(body).copy(b, 8);
      return b;
    };
    expect(errorOf([startup(2 << 16, [0])])).toBe('unsupported frontend protocol version 2.0');
    expect(errorOf([startup((1234 << 16) | 5681)])).toBe('unsupported frontend request code 1234.5681');
    expect(errorOf([startup(196608, [0x75, 0, 0x61, 0])])).toBe('invalid startup packet: parameter list is not terminated');
    expect(errorOf([startup(196608, [0x75, 0, 0x61])])).toBe('invalid startup packet: parameter without NUL terminator');
    expect(errorOf([startup(196608, [0x75, 0, 0x61, 0, 0, 0x78])])).toBe('invalid startup packet: 1 trailing bytes after the parameter list');
    expect(errorOf([startup(196608, [0x75, 0, 0x61, 0, 0x75, 0, 0x62, 0, 0])])).toBe('invalid startup packet: duplicate parameter "u"');
    expect(errorOf([startup(80877103, [0, 0, 0, 0])])).toBe('invalid SSLRequest: 4 trailing bytes');
    expect(errorOf([startup(80877102, [0, 0, 0, 1])])).toBe('invalid CancelRequest length 12');
    expect(errorOf([Buffer.from([0, 0, 0, 4])])).toBe('invalid startup packet length 4');
    expect(errorOf([Buffer.from([0, 0, 0x27, 0x11])])).toBe('invalid startup packet length 10001');
    expect(errorOf([Buffer.concat([serialize.cancel(1, 2), Buffer.from('x')])])).toBe('unexpected bytes after CancelRequest');
  });

  it('returns the good messages before the error, then nothing ever again', () => {
    const p = new FrontendParser();
    const out = p.push(Buffer.concat([STARTUP, serialize.query('a'), Buffer.from('z'), serialize.sync()]));
    expect(out.map((m) => m.type)).toEqual(['Startup', 'Query', 'ProtocolError']);
    expect(p.phase).toBe('failed');
    expect(p.push(serialize.sync())).toEqual([]);
  });

  it('reports an error carried by a chunk that completes a split message', () => {
    const p = new FrontendParser();
    p.push(STARTUP);
    const q = serialize.query('abc');
    expect(p.push(q.subarray(0, 2))).toEqual([]);
    expect(p.push(Buffer.concat([q.subarray(2), Buffer.from('Q\0\0\0\x02')])).map((m) => m.type)).toEqual(['Query', 'ProtocolError']);
  });
});

// ---------------------------------------------------------------------------------------------

function checkEnding(out: FrontendMessage[], parser: FrontendParser): void {
  const errors = out.filter((m) => m.type === 'ProtocolError');
  expect(errors.length).toBe(parser.phase === 'failed' ? 1 : 0);
  if (errors.length === 1) expect(out[out.length - 1]?.type).toBe('ProtocolError');
}

/** Valid sessions, or a Startup followed by arbitrary or corrupted bytes. */
const corrupted: fc.Arbitrary<Buffer> = fc.oneof(
  bytes(64),
  fc.tuple(startupMessage, bytes(64)).map(([s, g]) => Buffer.concat([encodeFrontend(s), g])),
  fc
    .tuple(session, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }), fc.nat())
    .map(([specs, flips, cut]) => {
      const b = Buffer.from(encodeAll(specs));
      for (const [at, v] of flips) b[at % b.length] = v;
      return b.subarray(0, b.length - (cut % 3));
    }),
);

describe('FrontendParser properties', () => {
  it('round-trips arbitrary valid sessions', () => {
    fc.assert(
      fc.property(session, (specs) => {
        const wire = encodeAll(specs);
        const p = new FrontendParser();
        const out = p.push(wire);
        expect(out.map((m) => withoutRaw(norm(m)))).toEqual(specs.map((s) => norm(s)));
        expect(out.map((m) => (m.type === 'ProtocolError' ? '' : m.raw.toString('hex')))).toEqual(specs.map((s) => encodeFrontend(s).toString('hex')));
        expect(p.phase).toBe(specs[0]?.type === 'CancelRequest' ? 'done' : 'normal');
      }),
      { numRuns: 300 },
    );
  });

  it('parses a stream split at every single byte boundary the same as unsplit', () => {
    fc.assert(
      fc.property(session, (specs) => {
        const wire = encodeAll(specs);
        const whole = normAll(parseAll([wire]));
        for (let i = 1; i < wire.length; i++) {
          expect(normAll(parseAll([wire.subarray(0, i), wire.subarray(i)]))).toEqual(whole);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('parses a stream split at random points (and byte by byte) the same as unsplit', () => {
    fc.assert(
      fc.property(
        session.chain((specs) => {
          const wire = encodeAll(specs);
          return fc.tuple(fc.constant(wire), splitPoints(wire.length));
        }),
        ([wire, points]) => {
          const whole = normAll(parseAll([wire]));
          expect(normAll(parseAll(ownChunks(splitAt(wire, points))))).toEqual(whole);
          expect(normAll(parseAll([...wire].map((b) => Buffer.from([b]))))).toEqual(whole);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('never throws on garbage or corrupted streams and ends in at most one ProtocolError, however split', () => {
    fc.assert(
      fc.property(
        corrupted.chain((wire) => fc.tuple(fc.constant(wire), splitPoints(wire.length))),
        ([wire, points]) => {
          const p1 = new FrontendParser();
          const whole = parseAll([wire], p1);
          checkEnding(whole, p1);
          const p2 = new FrontendParser();
          const split = parseAll(splitAt(wire, points), p2);
          checkEnding(split, p2);
          expect(normAll(split)).toEqual(normAll(whole));
          expect(p2.phase).toBe(p1.phase);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('parses the protocol fuzzer\'s cases (what npm run fuzz sends a gateway) the same however they are split', () => {
    fc.assert(
      fc.property(fuzzCase, (c) => {
        const wire = caseBytes(c);
        const p1 = new FrontendParser();
        const whole = parseAll([wire], p1);
        checkEnding(whole, p1);
        const p2 = new FrontendParser();
        const split = parseAll(splitAt(wire, c.splits), p2);
        checkEnding(split, p2);
        expect(normAll(split)).toEqual(normAll(whole));
        // A framed case (no mutation) is whole messages: nothing is left waiting for more bytes.
        if (c.framed && p1.phase !== 'failed' && p1.phase !== 'done') expect(parseAll([Buffer.from([0x53, 0, 0, 0, 4])], p1).length).toBe(1);
      }),
      { numRuns: 150 },
    );
  });

  it('fails closed on every normal-phase message corrupted by a shortened length', () => {
    fc.assert(
      fc.property(normalMessage, fc.integer({ min: 1, max: 8 }), (spec, cut) => {
        const msg = Buffer.from(encodeFrontend(spec));
        const len = msg.readInt32BE(1);
        fc.pre(len - cut >= 4);
        msg.writeInt32BE(len - cut, 1);
        const p = new FrontendParser();
        const out = parseAll([STARTUP, msg], p);
        // A shorter length either truncates a field (error) or, for opaque bodies, leaves the tail
        // to be read as the next message's header; both must end cleanly.
        checkEnding(out, p);
      }),
      { numRuns: 300 },
    );
  });
});

describe('FrontendParser spot checks on normal messages', () => {
  it('decodes every arbitrary normal message to its spec', () => {
    fc.assert(
      fc.property(normalMessage, (spec: FrontendSpec) => {
        expect(withoutRaw(norm(one(encodeFrontend(spec))))).toEqual(norm(spec));
      }),
      { numRuns: 300 },
    );
  });
});
