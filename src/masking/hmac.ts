// HMAC-SHA256 for short values with the key's inner and outer states computed once: the tokenize strategy runs it on every masked value.
//
// node:crypto costs about 2.7 us per HMAC here whatever the input size (object creation and the
// native boundary dominate); with the two padded-key blocks hashed once at construction, an HMAC of
// a value under 56 bytes is two compression rounds, several times cheaper. Those run in WebAssembly
// (hmac-wasm.ts) when it is available, else in the JavaScript below. The tests check both against
// node:crypto's createHmac on random keys and inputs of every length up to several blocks.
import { LANE_MAX_VALUE, SHA256_K, WASM_MAX_VALUE, WasmHmac } from './hmac-wasm.js';

const K = new Int32Array(SHA256_K);

const IV = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

const W = new Int32Array(64);

/** Loads the 64-byte block at `block[off..]` into W[0..15] as big-endian words. */
function load(block: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++) {
    const j = off + i * 4;
    W[i] = ((block[j] as number) << 24) | ((block[j + 1] as number) << 16) | ((block[j + 2] as number) << 8) | (block[j + 3] as number);
  }
}

/**
 * One SHA-256 compression of the block in W[0..15] into `state`. Working on words lets the HMAC
 * feed the inner hash to the outer one and pad short values without a byte buffer in between.
 */
function compress(state: Int32Array): void {
  for (let i = 16; i < 64; i++) {
    const w15 = W[i - 15] as number;
    const w2 = W[i - 2] as number;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = ((W[i - 16] as number) + s0 + (W[i - 7] as number) + s1) | 0;
  }
  let a = state[0] as number;
  let b = state[1] as number;
  let c = state[2] as number;
  let d = state[3] as number;
  let e = state[4] as number;
  let f = state[5] as number;
  let g = state[6] as number;
  let h = state[7] as number;
  let t = 0;
  // Eight rounds per pass with the working variables renamed instead of shifted along (the moves
  // were a third of each round), and every sum kept to int32 so V8 stays in integer arithmetic.
  for (let i = 0; i < 64; i += 8) {
    t = ((((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + (g ^ (e & (f ^ g)))) | 0;
    t = (t + ((h + (((K[i + 0] as number) + (W[i + 0] as number)) | 0)) | 0)) | 0;
    d = (d + t) | 0;
    h = (t + (((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (c & (a ^ b)))) | 0)) | 0;
    t = ((((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + (f ^ (d & (e ^ f)))) | 0;
    t = (t + ((g + (((K[i + 1] as number) + (W[i + 1] as number)) | 0)) | 0)) | 0;
    c = (c + t) | 0;
    g = (t + (((((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) ^ (b & (h ^ a)))) | 0)) | 0;
    t = ((((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + (e ^ (c & (d ^ e)))) | 0;
    t = (t + ((f + (((K[i + 2] as number) + (W[i + 2] as number)) | 0)) | 0)) | 0;
    b = (b + t) | 0;
    f = (t + (((((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) ^ (a & (g ^ h)))) | 0)) | 0;
    t = ((((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + (d ^ (b & (c ^ d)))) | 0;
    t = (t + ((e + (((K[i + 3] as number) + (W[i + 3] as number)) | 0)) | 0)) | 0;
    a = (a + t) | 0;
    e = (t + (((((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) ^ (h & (f ^ g)))) | 0)) | 0;
    t = ((((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + (c ^ (a & (b ^ c)))) | 0;
    t = (t + ((d + (((K[i + 4] as number) + (W[i + 4] as number)) | 0)) | 0)) | 0;
    h = (h + t) | 0;
    d = (t + (((((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) ^ (g & (e ^ f)))) | 0)) | 0;
    t = ((((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + (b ^ (h & (a ^ b)))) | 0;
    t = (t + ((c + (((K[i + 5] as number) + (W[i + 5] as number)) | 0)) | 0)) | 0;
    g = (g + t) | 0;
    c = (t + (((((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) ^ (f & (d ^ e)))) | 0)) | 0;
    t = ((((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + (a ^ (g & (h ^ a)))) | 0;
    t = (t + ((b + (((K[i + 6] as number) + (W[i + 6] as number)) | 0)) | 0)) | 0;
    f = (f + t) | 0;
    b = (t + (((((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) ^ (e & (c ^ d)))) | 0)) | 0;
    t = ((((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + (h ^ (f & (g ^ h)))) | 0;
    t = (t + ((a + (((K[i + 7] as number) + (W[i + 7] as number)) | 0)) | 0)) | 0;
    e = (e + t) | 0;
    a = (t + (((((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) ^ (d & (b ^ c)))) | 0)) | 0;
  }
  state[0] = ((state[0] as number) + a) | 0;
  state[1] = ((state[1] as number) + b) | 0;
  state[2] = ((state[2] as number) + c) | 0;
  state[3] = ((state[3] as number) + d) | 0;
  state[4] = ((state[4] as number) + e) | 0;
  state[5] = ((state[5] as number) + f) | 0;
  state[6] = ((state[6] as number) + g) | 0;
  state[7] = ((state[7] as number) + h) | 0;
}

/**
 * Hashes `data` on top of `mid` (the state after `prefixBlocks` 64-byte blocks) and writes the 8
 * state words of the final hash into `out`.
 */
function finish(mid: Int32Array, prefixBlocks: number, data: Uint8Array, out: Int32Array): void {
  out.set(mid);
  const n = data.length;
  let off = 0;
  while (n - off >= 64) {
    load(data, off);
    compress(out);
    off += 64;
  }
  const rest = n - off;
  W.fill(0, 0, 16);
  for (let i = 0; i < rest; i++) W[i >> 2] = (W[i >> 2] as number) | ((data[off + i] as number) << (24 - 8 * (i & 3)));
  W[rest >> 2] = (W[rest >> 2] as number) | (0x80 << (24 - 8 * (rest & 3)));
  if (rest >= 56) {
    compress(out);
    W.fill(0, 0, 16);
  }
  // Message length in bits in the last two words; values here stay far below 2^53 bits.
  const bits = (prefixBlocks * 64 + n) * 8;
  W[14] = Math.floor(bits / 0x100000000);
  W[15] = bits | 0;
  compress(out);
}

/** SHA-256 of a full key block from the IV. */
function midstate(block: Uint8Array): Int32Array {
  const s = new Int32Array(IV);
  load(block, 0);
  compress(s);
  return s;
}

const INNER = new Int32Array(8);
const FIRST = new Int32Array(8);
// The outer hash's input is the 32-byte inner hash after one key block: its padding is constant.
const OUTER_BITS = (64 + 32) * 8;

/** HMAC-SHA256 with a fixed key. Not re-entrant (shared scratch buffers), which the synchronous row path never needs. */
export class Hmac256 {
  private readonly inner: Int32Array;
  private readonly outer: Int32Array;
  private readonly wasm: WasmHmac | null;

  /** `opts.wasm: false` keeps to JavaScript (tests compare the two). */
  constructor(key: Uint8Array, opts: { wasm?: boolean } = {}) {
    let k = key;
    if (k.length > 64) {
      const s = new Int32Array(8);
      finish(IV, 0, k, s);
      k = wordsToBytes(s);
    }
    const ipad = new Uint8Array(64).fill(0x36);
    const opad = new Uint8Array(64).fill(0x5c);
    for (let i = 0; i < k.length; i++) {
      ipad[i] = (ipad[i] as number) ^ (k[i] as number);
      opad[i] = (opad[i] as number) ^ (k[i] as number);
    }
    this.inner = midstate(ipad);
    this.outer = midstate(opad);
    this.wasm = opts.wasm === false ? null : WasmHmac.create(this.inner, this.outer);
  }

  /** Where the compressions run: WebAssembly, or JavaScript where WebAssembly is unavailable. */
  get engine(): 'wasm' | 'js' {
    return this.wasm === null ? 'js' : 'wasm';
  }

  /** Writes the MAC of `data` as 8 big-endian words into `out` (avoids allocating on the hot path). */
  macWords(data: Uint8Array, out: Int32Array): void {
    this.macRange(data, 0, data.length, out);
  }

  /**
   * The first two words of the MACs of `count` values (value i is src[starts[i], ends[i])) into
   * out[2i], out[2i + 1]: four at a time in WebAssembly SIMD when every value is short enough.
   */
  macFirstWords(src: Uint8Array, starts: Int32Array, ends: Int32Array, count: number, out: Int32Array): void {
    let short = this.wasm !== null;
    for (let i = 0; short && i < count; i++) short = (ends[i] as number) - (starts[i] as number) <= LANE_MAX_VALUE;
    if (short) {
      this.wasm!.macFirstWords(src, starts, ends, count, out);
      return;
    }
    for (let i = 0; i < count; i++) {
      this.macRange(src, starts[i] as number, ends[i] as number, FIRST);
      out[2 * i] = FIRST[0] as number;
      out[2 * i + 1] = FIRST[1] as number;
    }
  }

  /** macWords of buf[start, end), without making a view of it first. */
  macRange(buf: Uint8Array, start: number, end: number, out: Int32Array): void {
    if (this.wasm !== null && end - start <= WASM_MAX_VALUE) {
      this.wasm.macRange(buf, start, end, out);
      return;
    }
    const data = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
    finish(this.inner, 1, data, INNER);
    out.set(this.outer);
    W.set(INNER);
    W[8] = 0x80000000 | 0;
    W.fill(0, 9, 15);
    W[15] = OUTER_BITS;
    compress(out);
  }

  mac(data: Uint8Array): Buffer {
    const out = new Int32Array(8);
    this.macWords(data, out);
    return Buffer.from(wordsToBytes(out));
  }
}

function wordsToBytes(words: Int32Array): Uint8Array {
  const b = new Uint8Array(words.length * 4);
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as number;
    b[i * 4] = w >>> 24;
    b[i * 4 + 1] = (w >>> 16) & 0xff;
    b[i * 4 + 2] = (w >>> 8) & 0xff;
    b[i * 4 + 3] = w & 0xff;
  }
  return b;
}
