// The CLI's data frames, read back by ws's own server-side frame reader (what the gateway runs): every
// length encoding, both mask choices, frames cut at every byte, and where the zero key is chosen.
import { describe, expect, it } from 'vitest';
import * as ws from 'ws';
import { COPY_LIMIT, DataFrameWriter, gatewayFrame, maskingFor, type Masking } from '../../src/tunnel/frame.js';

/** ws's frame reader (a named export at runtime; @types/ws does not declare it). */
interface Receiver {
  on(ev: 'message', f: (data: Buffer, isBinary: boolean) => void): void;
  on(ev: 'error', f: (err: Error) => void): void;
  write(chunk: Buffer): boolean;
}
const ReceiverCtor = (ws as unknown as { Receiver: new (o: object) => Receiver }).Receiver;

/**
 * Reads `wire` with ws's frame reader, in pieces of `step` bytes: as the gateway does (`isServer`:
 * frames must be masked) or as the CLI does (frames must not be).
 */
function readFrames(isServer: boolean, wire: Buffer, step = wire.length || 1): { messages: Buffer[]; errors: Error[] } {
  const r = new ReceiverCtor({ isServer, maxPayload: 0 });
  const messages: Buffer[] = [];
  const errors: Error[] = [];
  r.on('message', (d, isBinary) => {
    expect(isBinary).toBe(true);
    messages.push(Buffer.from(d));
  });
  r.on('error', (e) => errors.push(e));
  for (let i = 0; i < wire.length; i += step) r.write(wire.subarray(i, i + step));
  return { messages, errors };
}
const readAsGateway = (wire: Buffer, step?: number): ReturnType<typeof readFrames> => readFrames(true, wire, step);
const readAsClient = (wire: Buffer, step?: number): ReturnType<typeof readFrames> => readFrames(false, wire, step);

function payload(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

const SIZES = [0, 1, 125, 126, 127, 65535, 65536, COPY_LIMIT, COPY_LIMIT + 1, 200_000];

describe('gatewayFrame', () => {
  for (const n of SIZES) {
    it(`a ${n}-byte payload reads back unchanged on the client side, unmasked, with the right length encoding`, () => {
      const sent = payload(n, n + 7);
      const parts = gatewayFrame(Buffer.from(sent));
      expect(parts.length).toBe(n > COPY_LIMIT ? 2 : 1);
      const wire = Buffer.concat(parts);
      expect(wire[0]).toBe(0x82);
      expect(wire[1]! & 0x80).toBe(0); // a server frame is never masked
      const len7 = wire[1]! & 0x7f;
      expect(len7).toBe(n < 126 ? n : n < 65536 ? 126 : 127);
      expect(wire.length).toBe(2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + n);
      const whole = readAsClient(wire);
      expect(whole.errors).toEqual([]);
      // Buffer.equals, not toEqual: a deep comparison of 200 KB takes seconds.
      expect(whole.messages.map((m) => m.equals(sent))).toEqual([true]);
      // Cut at every byte where that is cheap, else in odd-sized pieces (ws reads byte by byte slowly).
      const bytewise = readAsClient(Buffer.concat([wire, wire]), n < 1024 ? 1 : 4093);
      expect(bytewise.errors).toEqual([]);
      expect(bytewise.messages.map((m) => m.equals(sent))).toEqual([true, true]);
    });
  }
});

describe('DataFrameWriter', () => {
  for (const masking of ['zero', 'random'] as Masking[]) {
    for (const n of SIZES) {
      it(`a ${n}-byte payload with the ${masking} key reads back unchanged, with the right length encoding`, () => {
        const w = new DataFrameWriter(masking);
        const sent = payload(n, n);
        const wire = Buffer.concat(w.frame(Buffer.from(sent)));
        expect(wire[0]).toBe(0x82); // FIN, binary
        expect(wire[1]! & 0x80).toBe(0x80); // masked, as a client frame must be
        const len7 = wire[1]! & 0x7f;
        expect(len7).toBe(n < 126 ? n : n < 65536 ? 126 : 127);
        const head = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + 4;
        expect(wire.length).toBe(head + n);
        const key = wire.subarray(head - 4, head);
        if (masking === 'zero') {
          expect([...key]).toEqual([0, 0, 0, 0]);
          expect(wire.subarray(head).equals(sent)).toBe(true);
        } else if (n >= 4) {
          expect(wire.subarray(head).equals(sent)).toBe(false);
        }
        const { messages, errors } = readAsGateway(wire);
        expect(errors).toEqual([]);
        expect(messages).toHaveLength(1);
        expect(messages[0]!.equals(sent)).toBe(true);
      });
    }
  }

  it('copies small payloads behind the header (one buffer) and sends large ones as a second buffer', () => {
    const w = new DataFrameWriter('zero');
    expect(w.frame(payload(COPY_LIMIT, 1))).toHaveLength(1);
    const big = payload(COPY_LIMIT + 1, 2);
    const parts = w.frame(big);
    expect(parts).toHaveLength(2);
    expect(parts[1]).toBe(big);
  });

  it('reads back a run of frames cut at every byte, across refills of the random key pool', () => {
    for (const masking of ['zero', 'random'] as Masking[]) {
      const w = new DataFrameWriter(masking);
      // 2,100 frames use 8,400 key bytes: more than one 8 KiB pool of random bytes.
      const sent = Array.from({ length: 2_100 }, (_, i) => payload(i % 300, i));
      const wire = Buffer.concat(sent.flatMap((p) => w.frame(Buffer.from(p))));
      const { messages, errors } = readAsGateway(wire, 1);
      expect(errors).toEqual([]);
      expect(messages.map((m) => m.toString('hex'))).toEqual(sent.map((p) => p.toString('hex')));
    }
  });

  it('draws a fresh random key for each frame', () => {
    const w = new DataFrameWriter('random');
    const keys = new Set<string>();
    for (let i = 0; i < 64; i++) keys.add(w.frame(Buffer.alloc(8))[0].subarray(2, 6).toString('hex'));
    // 64 draws of 32 random bits: a repeat has odds of about 5e-7.
    expect(keys.size).toBe(64);
  });
});

describe('maskingFor', () => {
  it('uses the zero key only behind TLS or on loopback', () => {
    expect(maskingFor('wss://gateway.example.com/v1/tunnel/ehr')).toBe('zero');
    expect(maskingFor('ws://127.0.0.1:8080/v1/tunnel/ehr')).toBe('zero');
    expect(maskingFor('ws://localhost:8080/v1/tunnel/ehr')).toBe('zero');
    expect(maskingFor('ws://[::1]:8080/v1/tunnel/ehr')).toBe('zero');
    expect(maskingFor('ws://gateway.example.com/v1/tunnel/ehr')).toBe('random');
    expect(maskingFor('ws://10.0.0.7:8080/v1/tunnel/ehr')).toBe('random');
    expect(maskingFor('ws://127.0.0.1.example.com/v1/tunnel/ehr')).toBe('random');
  });
});
