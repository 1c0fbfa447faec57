// HMAC-SHA256 of short values in WebAssembly, for the tokenize strategy's hot path. The module is
// assembled here at load time from the SHA-256 definition (no binary blob in the tree).
//
// Why: tokenizing a million rows is a million HMACs, two SHA-256 compressions each. WebAssembly
// keeps the 64-word message schedule in locals instead of a typed array and has a native rotate:
// an HMAC of a short value takes about 0.52 us here against 0.65-0.7 us for the unrolled JavaScript
// in hmac.ts, which stays the fallback where WebAssembly is unavailable (node --jitless).
//
// Four values at once (hmac4): the same compression over i32x4 lanes, one value per lane, for
// values under 56 bytes (one block): about 0.27 us per HMAC against 0.5 us one by one. The row path
// computes the tokens of a chunk's rows ahead in batches to use it (Tokenizer.prepare).
//
// Memory layout (one 64 KiB page per key):
//   0    inner midstate (8 x i32)      32   outer midstate (8 x i32)
//   64   running state                 96   result (the MAC's 8 words)
//   192  outer block: inner hash (big-endian) + constant padding
//   256  the padded value, 64-byte blocks (scalar hmac)
//   LANES  4 x 64-byte blocks, one value each (hmac4); LANE_W: 16 x v128 message words;
//   LANE_STATE, LANE_RESULT: 8 x v128 (word j of lane k at +16j+4k)

/** SHA-256 round constants. */
export const SHA256_K = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const INNER = 0;
const OUTER = 32;
const STATE = 64;
const RESULT = 96;
const OUTER_BLOCK = 192;
const DATA = 256;
/** Half of the 64 KiB page: scalar values below, the four-lane area above. */
const LANES = 32768;
const LANE_W = LANES + 256;
const LANE_STATE = LANE_W + 256;
const LANE_RESULT = LANE_STATE + 128;
/** Longest value the module takes in one call; longer ones use the JavaScript HMAC. */
export const WASM_MAX_VALUE = LANES - DATA - 72;
/** Longest value hmac4 takes (one padded block). */
export const LANE_MAX_VALUE = 55;

// ---- a minimal WebAssembly encoder: just the instructions this module uses ----

const op = {
  loop: 0x03, brIf: 0x0d, end: 0x0b, call: 0x10,
  get: 0x20, set: 0x21, tee: 0x22, load: 0x28, store: 0x36, store8: 0x3a, const: 0x41,
  ltU: 0x49, add: 0x6a, sub: 0x6b, and: 0x71, or: 0x72, xor: 0x73, shl: 0x74, shrU: 0x76, rotl: 0x77, rotr: 0x78,
} as const;
/** SIMD opcodes (after the 0xfd prefix). */
const V = { load: 0x00, store: 0x0b, shuffle: 0x0d, splat: 0x11, and: 0x4e, or: 0x50, xor: 0x51, bitselect: 0x52, shl: 0xab, shrU: 0xad, add: 0xae } as const;
/** v128 memarg: 16-byte alignment (log2 4) and an offset. */
const memarg16 = (offset: number): number[] => [4, ...uleb(offset)];
const DROP = 0x1a;
/** memory.fill (bulk memory): dest, value, length. */
const MEMORY_FILL = [0xfc, 0x0b, 0x00];

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'latin1')];

class Code {
  readonly bytes: number[] = [];
  get(l: number): this {
    this.bytes.push(op.get, ...uleb(l));
    return this;
  }
  set(l: number): this {
    this.bytes.push(op.set, ...uleb(l));
    return this;
  }
  i32(n: number): this {
    this.bytes.push(op.const, ...sleb(n | 0));
    return this;
  }
  op(...codes: number[]): this {
    this.bytes.push(...codes);
    return this;
  }
  /** i32.load / i32.store with 4-byte alignment and a constant offset. */
  load(offset: number): this {
    this.bytes.push(op.load, 2, ...uleb(offset));
    return this;
  }
  store(offset: number): this {
    this.bytes.push(op.store, 2, ...uleb(offset));
    return this;
  }
  /** Pushes rotr(local, n). */
  rotr(l: number, n: number): this {
    return this.get(l).i32(n).op(op.rotr);
  }
  /** A SIMD instruction (0xfd prefix) with its extra immediate bytes. */
  simd(code: number, ...imm: number[]): this {
    this.bytes.push(0xfd, ...uleb(code), ...imm);
    return this;
  }
  /** rotr of the v128 local `l`, lane by lane (SIMD has shifts, no rotate). */
  rotr4(l: number, n: number): this {
    return this.get(l).i32(n).simd(V.shrU).get(l).i32(32 - n).simd(V.shl).simd(V.or);
  }
  /** Byte-swaps the i32 on the stack (memory is little-endian, SHA-256 words are big-endian); uses `tmp`. */
  bswap(tmp: number): this {
    this.op(op.tee, ...uleb(tmp)).i32(8).op(op.rotl).i32(0x00ff00ff).op(op.and);
    return this.get(tmp).i32(8).op(op.rotr).i32(0xff00ff00).op(op.and, op.or);
  }
}

/**
 * compress(statePtr, blockPtr): one SHA-256 compression of the 64 big-endian bytes at blockPtr into
 * the 8 words at statePtr. Fully unrolled; the working variables are renamed per round, not moved.
 */
function compressBody(): number[] {
  const STATE_P = 0;
  const BLOCK_P = 1;
  const V = 2; // a..h: locals 2..9
  const T1 = 10;
  const T2 = 11;
  const W = 12; // w0..w63: locals 12..75
  const c = new Code();
  for (let i = 0; i < 8; i++) c.get(STATE_P).load(i * 4).set(V + i);
  for (let i = 0; i < 16; i++) c.get(BLOCK_P).load(i * 4).bswap(T1).set(W + i);
  for (let i = 16; i < 64; i++) {
    // w[i] = w[i-16] + s0(w[i-15]) + w[i-7] + s1(w[i-2])
    const w15 = W + i - 15;
    const w2 = W + i - 2;
    c.get(W + i - 16);
    c.rotr(w15, 7).rotr(w15, 18).op(op.xor).get(w15).i32(3).op(op.shrU, op.xor, op.add);
    c.get(W + i - 7).op(op.add);
    c.rotr(w2, 17).rotr(w2, 19).op(op.xor).get(w2).i32(10).op(op.shrU, op.xor, op.add);
    c.set(W + i);
  }
  for (let i = 0; i < 64; i++) {
    // Round i sees the variables rotated right by i: a is local V + ((0 - i) mod 8), and so on.
    const r = (k: number): number => V + ((((k - i) % 8) + 8) % 8);
    const [a, b, cc, d, e, f, g, h] = [r(0), r(1), r(2), r(3), r(4), r(5), r(6), r(7)];
    // t1 = h + S1(e) + ch(e, f, g) + K[i] + w[i]
    c.get(h).rotr(e, 6).rotr(e, 11).op(op.xor).rotr(e, 25).op(op.xor, op.add);
    c.get(g).get(e).get(f).get(g).op(op.xor, op.and, op.xor, op.add);
    c.i32(SHA256_K[i] as number).op(op.add).get(W + i).op(op.add).set(T1);
    // t2 = S0(a) + maj(a, b, c)
    c.rotr(a, 2).rotr(a, 13).op(op.xor).rotr(a, 22).op(op.xor);
    c.get(a).get(b).op(op.and).get(cc).get(a).get(b).op(op.xor, op.and, op.xor, op.add).set(T2);
    c.get(d).get(T1).op(op.add).set(d);
    c.get(T1).get(T2).op(op.add).set(h);
  }
  for (let i = 0; i < 8; i++) c.get(STATE_P).get(STATE_P).load(i * 4).get(V + i).op(op.add).store(i * 4);
  c.op(op.end);
  return [...vec([[...uleb(74), 0x7f]]), ...c.bytes];
}

/**
 * hmac(n): the MAC of the n bytes at DATA, from the midstates; result at RESULT. Pads the value in
 * place (0x80, zeros, bit length), so the caller only copies the value in.
 */
function hmacBody(): number[] {
  const N = 0;
  const I = 1;
  const TMP = 2;
  const LAST = 3; // end of the padded value
  const c = new Code();
  c.i32(DATA).get(N).op(op.call, 2).set(LAST);
  for (let k = 0; k < 8; k++) c.i32(0).i32(0).load(INNER + k * 4).store(STATE + k * 4);
  c.i32(DATA).set(I);
  c.op(op.loop, 0x40);
  c.i32(STATE).get(I).op(op.call, 0);
  c.get(I).i32(64).op(op.add).op(op.tee, ...uleb(I)).get(LAST).op(op.ltU, op.brIf, 0, op.end);
  // The inner hash, big-endian, is the first half of the outer block; its padding never changes.
  for (let k = 0; k < 8; k++) c.i32(0).i32(0).load(STATE + k * 4).bswap(TMP).store(OUTER_BLOCK + k * 4);
  for (let k = 0; k < 8; k++) c.i32(0).i32(0).load(OUTER + k * 4).store(RESULT + k * 4);
  c.i32(RESULT).i32(OUTER_BLOCK).op(op.call, 0);
  c.op(op.end);
  return [...vec([[...uleb(3), 0x7f]]), ...c.bytes];
}

/**
 * pad(ptr, n) -> end: SHA-256 padding, in place, of the n-byte value at ptr hashed after one key
 * block: 0x80, zeros, the bit length; returns where the padded blocks end.
 */
function padBody(): number[] {
  const PTR = 0;
  const N = 1;
  const TMP = 2;
  const END = 3;
  const c = new Code();
  // END = ptr + ((n + 9 + 63) >> 6) * 64
  c.get(N).i32(72).op(op.add).i32(6).op(op.shrU).i32(6).op(op.shl).get(PTR).op(op.add).set(END);
  c.get(PTR).get(N).op(op.add).i32(0x80).op(op.store8, 0, 0);
  // zeros from just after 0x80 up to the length word: END - 4 - (ptr + n + 1) bytes
  c.get(PTR).get(N).op(op.add).i32(1).op(op.add).i32(0).get(END).i32(5).op(op.sub).get(PTR).op(op.sub).get(N).op(op.sub, ...MEMORY_FILL);
  // bit length of one key block + the value, big-endian in the last 4 bytes (values stay far below 512 MiB)
  c.get(END).i32(4).op(op.sub).get(N).i32(64).op(op.add).i32(3).op(op.shl).bswap(TMP).store(0);
  c.get(END).op(op.end);
  return [...vec([[2, 0x7f]]), ...c.bytes];
}

/**
 * compress4(statePtr, wPtr): the compression of compressBody over four lanes: state and the 16
 * message words as v128 (lane k = value k) at statePtr and wPtr.
 */
function compress4Body(): number[] {
  const STATE_P = 0;
  const W_P = 1;
  const S = 2; // a..h
  const T1 = 10;
  const T2 = 11;
  const W = 12; // w0..w63
  const c = new Code();
  for (let i = 0; i < 8; i++) c.get(STATE_P).simd(V.load, ...memarg16(i * 16)).set(S + i);
  for (let i = 0; i < 16; i++) c.get(W_P).simd(V.load, ...memarg16(i * 16)).set(W + i);
  for (let i = 16; i < 64; i++) {
    const w15 = W + i - 15;
    const w2 = W + i - 2;
    c.get(W + i - 16);
    c.rotr4(w15, 7).rotr4(w15, 18).simd(V.xor).get(w15).i32(3).simd(V.shrU).simd(V.xor).simd(V.add);
    c.get(W + i - 7).simd(V.add);
    c.rotr4(w2, 17).rotr4(w2, 19).simd(V.xor).get(w2).i32(10).simd(V.shrU).simd(V.xor).simd(V.add);
    c.set(W + i);
  }
  for (let i = 0; i < 64; i++) {
    const r = (k: number): number => S + ((((k - i) % 8) + 8) % 8);
    const [a, b, cc, d, e, f, g, h] = [r(0), r(1), r(2), r(3), r(4), r(5), r(6), r(7)];
    // t1 = h + S1(e) + ch(e, f, g) + K[i] + w[i], with ch = bitselect(f, g, e)
    c.get(h).rotr4(e, 6).rotr4(e, 11).simd(V.xor).rotr4(e, 25).simd(V.xor).simd(V.add);
    c.get(f).get(g).get(e).simd(V.bitselect).simd(V.add);
    c.i32(SHA256_K[i] as number).simd(V.splat).simd(V.add).get(W + i).simd(V.add).set(T1);
    // t2 = S0(a) + maj(a, b, c), with maj = bitselect(c, a, a ^ b)
    c.rotr4(a, 2).rotr4(a, 13).simd(V.xor).rotr4(a, 22).simd(V.xor);
    c.get(cc).get(a).get(a).get(b).simd(V.xor).simd(V.bitselect).simd(V.add).set(T2);
    c.get(d).get(T1).simd(V.add).set(d);
    c.get(T1).get(T2).simd(V.add).set(h);
  }
  for (let i = 0; i < 8; i++) c.get(STATE_P).get(STATE_P).simd(V.load, ...memarg16(i * 16)).get(S + i).simd(V.add).simd(V.store, ...memarg16(i * 16));
  c.op(op.end);
  return [...vec([[...uleb(74), 0x7b]]), ...c.bytes];
}

/**
 * hmac4(n0, n1, n2, n3): the MACs of the four values at LANES + 64k (each under 56 bytes); the
 * result words at LANE_RESULT, word j of value k at +16j+4k.
 */
function hmac4Body(): number[] {
  const N = 0; // n0..n3: params 0..3
  const L = 4; // lanes 0..3, words j..j+3 of each: locals 4..7
  const P = 8; // two words of lanes 0 and 1
  const R = 9; // the same two words of lanes 2 and 3
  const c = new Code();
  // one block each (n <= LANE_MAX_VALUE): where the padding ends is known
  for (let k = 0; k < 4; k++) c.i32(LANES + k * 64).get(N + k).op(op.call, 2, DROP);
  // The block words, transposed to one v128 per word and byte-swapped: words j..j+3 of the four
  // lanes are four loads and six shuffles.
  const pick = (wordA: number, wordB: number): number[] => {
    // bytes of word wordA of the first operand, then of the second, byte-swapped; same for wordB
    const out: number[] = [];
    for (const [w, base] of [[wordA, 0], [wordA, 16], [wordB, 0], [wordB, 16]] as const) for (let b = 3; b >= 0; b--) out.push(base + w * 4 + b);
    return out;
  };
  const halves = (lo: boolean): number[] => {
    const out: number[] = [];
    for (const base of [0, 16]) for (let b = 0; b < 8; b++) out.push(base + (lo ? 0 : 8) + b);
    return out;
  };
  for (let j = 0; j < 16; j += 4) {
    for (let k = 0; k < 4; k++) c.i32(0).simd(V.load, ...memarg16(LANES + k * 64 + j * 4)).set(L + k);
    for (const w of [0, 2]) {
      c.get(L).get(L + 1).simd(V.shuffle, ...pick(w, w + 1)).set(P);
      c.get(L + 2).get(L + 3).simd(V.shuffle, ...pick(w, w + 1)).set(R);
      c.i32(0).get(P).get(R).simd(V.shuffle, ...halves(true)).simd(V.store, ...memarg16(LANE_W + (j + w) * 16));
      c.i32(0).get(P).get(R).simd(V.shuffle, ...halves(false)).simd(V.store, ...memarg16(LANE_W + (j + w + 1) * 16));
    }
  }
  for (let k = 0; k < 8; k++) c.i32(0).i32(0).load(INNER + k * 4).simd(V.splat).simd(V.store, ...memarg16(LANE_STATE + k * 16));
  c.i32(LANE_STATE).i32(LANE_W).op(op.call, 3);
  // Outer block: the inner hashes as words (no byte order to fix in registers), then constant padding.
  for (let k = 0; k < 8; k++) c.i32(0).i32(0).simd(V.load, ...memarg16(LANE_STATE + k * 16)).simd(V.store, ...memarg16(LANE_W + k * 16));
  const words = [0x80000000, 0, 0, 0, 0, 0, 0, (64 + 32) * 8];
  words.forEach((w, k) => c.i32(0).i32(w).simd(V.splat).simd(V.store, ...memarg16(LANE_W + (8 + k) * 16)));
  for (let k = 0; k < 8; k++) c.i32(0).i32(0).load(OUTER + k * 4).simd(V.splat).simd(V.store, ...memarg16(LANE_RESULT + k * 16));
  c.i32(LANE_RESULT).i32(LANE_W).op(op.call, 3);
  c.op(op.end);
  return [...vec([[6, 0x7b]]), ...c.bytes];
}

function moduleBytes(): Uint8Array {
  const body = (b: number[]): number[] => [...uleb(b.length), ...b];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, 2, 0x7f, 0x7f, 0], [0x60, 1, 0x7f, 0], [0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 0], [0x60, 2, 0x7f, 0x7f, 1, 0x7f]])),
    // 0 compress, 1 hmac, 2 pad, 3 compress4, 4 hmac4
    ...section(3, vec([[0], [1], [3], [0], [2]])),
    ...section(5, vec([[0x00, 1]])),
    ...section(7, vec([[...name('memory'), 0x02, 0], [...name('hmac'), 0x00, 1], [...name('hmac4'), 0x00, 4]])),
    ...section(10, vec([body(compressBody()), body(hmacBody()), body(padBody()), body(compress4Body()), body(hmac4Body())])),
  ]);
}

// The few pieces of the WebAssembly JS API used here (its types live in lib.dom, not in this project's libs).
interface WasmInstance {
  exports: Record<string, unknown>;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => WasmInstance;
}

let compiled: object | null | undefined;

/** The compiled module, or null where WebAssembly cannot run (the caller falls back to JavaScript). */
function wasmModule(): object | null {
  if (compiled === undefined) {
    try {
      const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
      compiled = api ? new api.Module(moduleBytes()) : null;
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/** HMAC-SHA256 under one key's precomputed inner and outer midstates. Not re-entrant. */
export class WasmHmac {
  private readonly bytes: Uint8Array;
  private readonly words: Int32Array;
  private readonly run: (n: number) => void;
  private readonly run4: (n0: number, n1: number, n2: number, n3: number) => void;

  private constructor(instance: WasmInstance, inner: Int32Array, outer: Int32Array) {
    const memory = instance.exports['memory'] as { buffer: ArrayBuffer };
    this.run = instance.exports['hmac'] as (n: number) => void;
    this.run4 = instance.exports['hmac4'] as (n0: number, n1: number, n2: number, n3: number) => void;
    this.bytes = new Uint8Array(memory.buffer);
    this.words = new Int32Array(memory.buffer);
    this.words.set(inner, INNER / 4);
    this.words.set(outer, OUTER / 4);
    // The outer block's second half: 0x80, zeros, then the bit length of one key block + 32 bytes.
    this.bytes.fill(0, OUTER_BLOCK + 32, OUTER_BLOCK + 64);
    this.bytes[OUTER_BLOCK + 32] = 0x80;
    this.bytes[OUTER_BLOCK + 62] = ((64 + 32) * 8) >>> 8;
    this.bytes[OUTER_BLOCK + 63] = ((64 + 32) * 8) & 0xff;
  }

  /** For midstates computed by the caller; null when WebAssembly is unavailable. */
  static create(inner: Int32Array, outer: Int32Array): WasmHmac | null {
    const m = wasmModule();
    if (m === null) return null;
    return new WasmHmac(new (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly.Instance(m), inner, outer);
  }

  /** Writes the MAC of buf[start, end) (at most WASM_MAX_VALUE bytes) as 8 words into `out`. */
  macRange(buf: Uint8Array, start: number, end: number, out: Int32Array): void {
    const n = end - start;
    const mem = this.bytes;
    if (n < 48) for (let i = 0; i < n; i++) mem[DATA + i] = buf[start + i] as number;
    else mem.set(buf.subarray(start, end), DATA);
    this.run(n);
    const w = this.words;
    for (let i = 0; i < 8; i++) out[i] = w[RESULT / 4 + i] as number;
  }

  /**
   * The first two words (what a text token shows) of the MACs of `count` values, value i being
   * src[starts[i], ends[i]), each at most LANE_MAX_VALUE bytes: four at a time. Writes out[2i] and
   * out[2i + 1].
   */
  macFirstWords(src: Uint8Array, starts: Int32Array, ends: Int32Array, count: number, out: Int32Array): void {
    const mem = this.bytes;
    const w = this.words;
    const n = [0, 0, 0, 0];
    for (let i = 0; i < count; i += 4) {
      const lanes = Math.min(4, count - i);
      for (let k = 0; k < 4; k++) {
        if (k >= lanes) {
          n[k] = 0;
          continue;
        }
        const start = starts[i + k] as number;
        const len = (ends[i + k] as number) - start;
        const at = LANES + k * 64;
        for (let b = 0; b < len; b++) mem[at + b] = src[start + b] as number;
        n[k] = len;
      }
      this.run4(n[0]!, n[1]!, n[2]!, n[3]!);
      for (let k = 0; k < lanes; k++) {
        out[2 * (i + k)] = w[LANE_RESULT / 4 + k] as number;
        out[2 * (i + k) + 1] = w[LANE_RESULT / 4 + 4 + k] as number;
      }
    }
  }
}
