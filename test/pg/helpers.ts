// Test-only helpers for the codec tests: an independent frontend encoder, fast-check arbitraries, pg-protocol's backend parser behind a promise, and normalisers for readable deep equality.
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { parse } from 'pg-protocol';
import type { FrontendMessage } from '../../src/pg/index.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type FrontendSpec = DistributiveOmit<Exclude<FrontendMessage, { type: 'ProtocolError' }>, 'raw'>;

// ---------------------------------------------------------------------------------------------
// A deliberately naive encoder (arrays of parts, Buffer.concat), independent of the parser.

function i16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(v);
  return b;
}
function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}
function i32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return b;
}
function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}
function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}
function values(list: (Buffer | null)[]): Buffer[] {
  const out = [u16(list.length)];
  for (const v of list) out.push(v === null ? i32(-1) : Buffer.concat([i32(v.length), v]));
  return out;
}
function typed(type: string, body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  return Buffer.concat([Buffer.from(type, 'latin1'), i32(b.length + 4), b]);
}
function untyped(body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  return Buffer.concat([i32(b.length + 4), b]);
}

export function encodeFrontend(m: FrontendSpec): Buffer {
  switch (m.type) {
    case 'SSLRequest':
      return untyped([i32(80877103)]);
    case 'GSSENCRequest':
      return untyped([i32(80877104)]);
    case 'CancelRequest':
      return untyped([i32(80877102), i32(m.processId), m.secretKey]);
    case 'Startup': {
      const parts = [u32(m.protocolVersion)];
      for (const [k, v] of Object.entries(m.parameters)) parts.push(cstr(k), cstr(v));
      parts.push(Buffer.from([0]));
      return untyped(parts);
    }
    case 'Query':
      return typed('Q', [cstr(m.sql)]);
    case 'Parse':
      return typed('P', [cstr(m.name), cstr(m.sql), u16(m.paramTypes.length), ...m.paramTypes.map(u32)]);
    case 'Bind':
      return typed('B', [
        cstr(m.portal),
        cstr(m.statement),
        u16(m.paramFormats.length),
        ...m.paramFormats.map(i16),
        ...values(m.params),
        u16(m.resultFormats.length),
        ...m.resultFormats.map(i16),
      ]);
    case 'Describe':
      return typed('D', [Buffer.from(m.kind, 'latin1'), cstr(m.name)]);
    case 'Close':
      return typed('C', [Buffer.from(m.kind, 'latin1'), cstr(m.name)]);
    case 'Execute':
      return typed('E', [cstr(m.portal), i32(m.maxRows)]);
    case 'Sync':
      return typed('S', []);
    case 'Flush':
      return typed('H', []);
    case 'Terminate':
      return typed('X', []);
    case 'FunctionCall':
      return typed('F', [u32(m.functionOid), u16(m.argFormats.length), ...m.argFormats.map(i16), ...values(m.args), i16(m.resultFormat)]);
    case 'CopyData':
      return typed('d', [m.data]);
    case 'CopyDone':
      return typed('c', []);
    case 'CopyFail':
      return typed('f', [cstr(m.message)]);
    case 'AuthResponse':
      return typed('p', [m.data]);
  }
}

// ---------------------------------------------------------------------------------------------
// Normalisation: Buffers to hex, errors to their message, null-prototype records to plain ones.

export function norm(m: FrontendMessage | FrontendSpec): Record<string, unknown> {
  if (m.type === 'ProtocolError') return { type: m.type, message: m.error.message, code: m.error.sqlstate };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (Buffer.isBuffer(v)) out[k] = v.toString('hex');
    else if (Array.isArray(v)) out[k] = v.map((x: unknown) => (Buffer.isBuffer(x) ? x.toString('hex') : x));
    else if (k === 'parameters') out[k] = { ...(v as Record<string, string>) };
    else out[k] = v;
  }
  return out;
}

export function normAll(list: FrontendMessage[]): Record<string, unknown>[] {
  return list.map(norm);
}

/** Drops `raw` so a parsed message can be compared with the spec it was encoded from. */
export function withoutRaw(m: Record<string, unknown>): Record<string, unknown> {
  const { raw: _raw, ...rest } = m;
  return rest;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries.

/** Valid UTF-8 text without NUL (a NUL cannot live inside a C string). */
export const text = (maxLength = 12): fc.Arbitrary<string> =>
  fc.string({ unit: fc.oneof(fc.constantFrom('a', 'Z', ' ', ';', 'é', '€', '😀', '\n'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), maxLength }).map(
    (s) => s.replaceAll('\0', ''),
  );
export const bytes = (maxLength = 24): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));
const oid = fc.integer({ min: 0, max: 0xffffffff });
const format = fc.integer({ min: -32768, max: 32767 });
const nullableBytes = fc.option(bytes(), { nil: null, freq: 4 });

/** Format-code lists PostgreSQL accepts for n values: none, one for all, or one each. */
const formatsFor = (n: number): fc.Arbitrary<number[]> =>
  n <= 1 ? fc.array(fc.constantFrom(0, 1), { maxLength: 1 }) : fc.oneof(fc.constant<number[]>([]), fc.array(fc.constantFrom(0, 1), { minLength: 1, maxLength: 1 }), fc.array(fc.constantFrom(0, 1), { minLength: n, maxLength: n }));

export const normalMessage: fc.Arbitrary<FrontendSpec> = fc.oneof(
  text(40).map((sql): FrontendSpec => ({ type: 'Query', sql })),
  fc.record({ name: text(), sql: text(40), paramTypes: fc.array(oid, { maxLength: 5 }) }).map((r): FrontendSpec => ({ type: 'Parse', ...r })),
  fc
    .record({ portal: text(), statement: text(), params: fc.array(nullableBytes, { maxLength: 5 }), resultFormats: fc.array(format, { maxLength: 4 }) })
    .chain((r) => formatsFor(r.params.length).map((paramFormats): FrontendSpec => ({ type: 'Bind', ...r, paramFormats }))),
  fc.record({ kind: fc.constantFrom<'S' | 'P'>('S', 'P'), name: text() }).map((r): FrontendSpec => ({ type: 'Describe', ...r })),
  fc.record({ kind: fc.constantFrom<'S' | 'P'>('S', 'P'), name: text() }).map((r): FrontendSpec => ({ type: 'Close', ...r })),
  fc.record({ portal: text(), maxRows: fc.integer({ min: -0x80000000, max: 0x7fffffff }) }).map((r): FrontendSpec => ({ type: 'Execute', ...r })),
  fc.constantFrom<FrontendSpec>({ type: 'Sync' }, { type: 'Flush' }, { type: 'Terminate' }, { type: 'CopyDone' }),
  fc
    .record({ functionOid: oid, args: fc.array(nullableBytes, { maxLength: 4 }), resultFormat: format })
    .chain((r) => formatsFor(r.args.length).map((argFormats): FrontendSpec => ({ type: 'FunctionCall', ...r, argFormats }))),
  bytes(40).map((data): FrontendSpec => ({ type: 'CopyData', data })),
  text(20).map((message): FrontendSpec => ({ type: 'CopyFail', message })),
  bytes(30).map((data): FrontendSpec => ({ type: 'AuthResponse', data })),
);

const paramKey = text(10).filter((k) => k.length > 0);

export const startupMessage: fc.Arbitrary<FrontendSpec> = fc
  .record({
    minor: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })),
    parameters: fc.dictionary(paramKey, text(16), { maxKeys: 5 }),
  })
  .map(({ minor, parameters }): FrontendSpec => ({ type: 'Startup', protocolVersion: 196608 + minor, parameters }));

export const cancelRequest: fc.Arbitrary<FrontendSpec> = fc
  .record({ processId: fc.integer({ min: -0x80000000, max: 0x7fffffff }), secretKey: fc.oneof(bytes(4).filter((b) => b.length === 4), fc.uint8Array({ minLength: 4, maxLength: 256 }).map((a) => Buffer.from(a))) })
  .map((r): FrontendSpec => ({ type: 'CancelRequest', ...r }));

/** A whole, valid client conversation: optional encryption requests, Startup, then normal messages; or one CancelRequest. */
export const session: fc.Arbitrary<FrontendSpec[]> = fc.oneof(
  {
    weight: 9,
    arbitrary: fc
      .tuple(
        fc.array(fc.constantFrom<FrontendSpec>({ type: 'SSLRequest' }, { type: 'GSSENCRequest' }), { maxLength: 2 }),
        startupMessage,
        fc.array(normalMessage, { maxLength: 8 }),
      )
      .map(([pre, startup, rest]) => [...pre, startup, ...rest]),
  },
  { weight: 1, arbitrary: cancelRequest.map((c) => [c]) },
);

export function encodeAll(specs: FrontendSpec[]): Buffer {
  return Buffer.concat(specs.map(encodeFrontend));
}

/** Sorted, distinct split points strictly inside a buffer of length n. */
export const splitPoints = (n: number): fc.Arbitrary<number[]> =>
  n < 2 ? fc.constant([]) : fc.uniqueArray(fc.integer({ min: 1, max: n - 1 }), { maxLength: Math.min(12, n - 1) }).map((a) => a.sort((x, y) => x - y));

export function splitAt(buf: Buffer, points: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

/** Copies each chunk into its own ArrayBuffer, as a socket would deliver it. */
export function ownChunks(chunks: Buffer[]): Buffer[] {
  return chunks.map((c) => Buffer.from(Uint8Array.prototype.slice.call(c)));
}

// ---------------------------------------------------------------------------------------------
// pg-protocol's backend parser, fed the bytes in the given chunks.

export interface PgProtocolMessage {
  name: string;
  [key: string]: unknown;
}

export async function pgParse(chunks: Buffer | Buffer[]): Promise<PgProtocolMessage[]> {
  const stream = new PassThrough();
  const out: PgProtocolMessage[] = [];
  const done = parse(stream, (m) => {
    // Buffers in its messages are views of that reused memory: snapshot them now.
    const msg = m as unknown as PgProtocolMessage;
    for (const [k, v] of Object.entries(msg)) if (Buffer.isBuffer(v)) msg[k] = Buffer.from(Uint8Array.prototype.slice.call(v));
    out.push(msg);
  });
  // pg-protocol reuses (writes into) a chunk it was given when the next one arrives, so it gets copies.
  for (const c of ownChunks(Array.isArray(chunks) ? chunks : [chunks])) stream.write(c);
  stream.end();
  await done;
  return out;
}
