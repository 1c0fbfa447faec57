// Masking strategies (redact, partial, tokenize, year_only, null) over one value's bytes, always producing a value the client can still parse as the column's type.
//
// Each strategy takes the value as PostgreSQL sent it (text or binary format) and returns new bytes,
// or null for SQL NULL. What each does per type, and why:
//
//   type                         redact          partial            tokenize                year_only
//   text, varchar, bpchar, name, placeholder     keep_first/last,   tok_<16 hex>            the date in the text
//   "char", unknown, user types  (***)           rest *             (HMAC-SHA256)           with month/day 01, else ***
//   xml                          placeholder,    as text, escaped   tok_<16 hex>            as text
//                                escaped
//   json, jsonb                  "***"           partial of the     "tok_<16 hex>"          date in a JSON string,
//                                                JSON string                                 else null
//   int4                         NULL            NULL               31-bit HMAC number      YYYY kept, YYYYMMDD →
//   int8, numeric                NULL            NULL               62-bit HMAC number      YYYY0101, else NULL
//   int2                         NULL            NULL               NULL (too few values)   as int4
//   uuid                         NULL            NULL               UUID from the HMAC      NULL
//   bytea                        \x2a2a2a        NULL               \x + 32 HMAC bytes      NULL
//   date, timestamp[tz]          NULL            NULL               NULL                    YYYY-01-01 [00:00:00]
//   everything else (bool,       NULL            NULL               NULL                    NULL
//   floats, arrays, records...)
//
// Numbers, dates and other typed values are never replaced by a made-up constant of their type:
// a fake 0 or 1900-01-01 would be silently wrong in every aggregate; NULL is honest and parses
// everywhere. Tokens of numbers are numbers so that joins on tokenized keys still work; they are
// computed over the value's canonical text, so text and binary clients, and an int column and a
// text column holding the same digits get the same HMAC input (but a differently shaped token).
// An int4 token has 31 bits, so n distinct keys give about n^2/2^32 colliding pairs (some 230 for
// a million keys): a join on tokenized int4 keys may match a few different keys. int8/numeric and
// text tokens have 62 and 64 bits (no collision expected below billions of keys).
import { isUtf8 } from 'node:buffer';
import { TypeKind, acceptsAnyText } from './pgtypes.js';
import { Hmac256 } from './hmac.js';
import { putValue, type ValueOut } from './arena.js';

/** Masked bytes, or null for SQL NULL. */
export type MaskedValue = Buffer | null;

export interface ValueType {
  kind: TypeKind;
  /** true for binary format (RowDescription format code 1). */
  binary: boolean;
  /** bpchar pads with spaces; partial and tokenize look at the value without them. */
  padded?: boolean;
}

const JSONB_VERSION = 1;

// ---------------------------------------------------------------------------------------------
// Text helpers

/** Decodes as UTF-8 when the bytes are UTF-8, else one character per byte (LATIN1-like clients). */
function decodeText(b: Buffer): { s: string; latin1: boolean } {
  if (isUtf8(b)) return { s: b.toString('utf8'), latin1: false };
  return { s: b.toString('latin1'), latin1: true };
}

function encodeText(s: string, latin1: boolean): Buffer {
  return Buffer.from(s, latin1 ? 'latin1' : 'utf8');
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The text bytes of a text-like value: binary jsonb carries a version byte before the text. */
function textBytes(value: Buffer, t: ValueType): Buffer {
  return t.binary && t.kind === TypeKind.Jsonb && value.length > 0 ? value.subarray(1) : value;
}

function jsonOut(text: string, t: ValueType): Buffer {
  const body = Buffer.from(text, 'utf8');
  if (!(t.binary && t.kind === TypeKind.Jsonb)) return body;
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = JSONB_VERSION;
  body.copy(out, 1);
  return out;
}

function bpcharTrim(s: string): [string, string] {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x20) end--;
  return [s.slice(0, end), s.slice(end)];
}

// ---------------------------------------------------------------------------------------------
// redact

/** A compiled redact for one column type: returns the same bytes for every value. */
export function redactor(placeholder: string, t: ValueType): () => MaskedValue {
  let out: MaskedValue;
  if (acceptsAnyText(t.kind)) out = Buffer.from(t.kind === TypeKind.Xml ? xmlEscape(placeholder) : placeholder, 'utf8');
  else if (t.kind === TypeKind.Json || t.kind === TypeKind.Jsonb) out = jsonOut(JSON.stringify(placeholder), t);
  else if (t.kind === TypeKind.Bytea) {
    const raw = Buffer.from(placeholder, 'utf8');
    out = t.binary ? raw : Buffer.from(`\\x${raw.toString('hex')}`, 'latin1');
  } else out = null;
  return () => out;
}

export function redactValue(_value: Buffer, t: ValueType, placeholder = '***'): MaskedValue {
  return redactor(placeholder, t)();
}

// ---------------------------------------------------------------------------------------------
// partial

/**
 * Keeps `keepFirst` leading and `keepLast` trailing characters and writes `*` for the rest, keeping
 * `-` so identifiers keep their printed shape (`***-**-6789`). Never reveals more than half of the
 * characters: when asked for more, the kept tail shrinks first to half, then the head.
 */
export function partialText(s: string, keepFirst: number, keepLast: number): string {
  const chars = Array.from(s);
  const n = chars.length;
  const allowed = Math.floor(n / 2);
  const last = Math.min(keepLast, allowed);
  const first = Math.min(keepFirst, allowed - last);
  let out = '';
  for (let i = 0; i < n; i++) {
    const ch = chars[i] as string;
    out += i < first || i >= n - last || ch === '-' ? ch : '*';
  }
  return out;
}

function isAscii(b: Buffer, start = 0, end = b.length): boolean {
  for (let i = start; i < end; i++) if ((b[i] as number) >= 0x80) return false;
  return true;
}

/** partialText over the ASCII bytes src[start, end), written at dst[at..] (same length), without making strings. */
function partialAscii(src: Buffer, start: number, end: number, keepFirst: number, keepLast: number, padded: boolean, dst: Buffer, at: number): void {
  let n = end - start;
  if (padded) while (n > 0 && src[start + n - 1] === 0x20) n--;
  const allowed = n >>> 1;
  const last = Math.min(keepLast, allowed);
  const first = Math.min(keepFirst, allowed - last);
  for (let i = 0; i < n; i++) {
    const c = src[start + i] as number;
    dst[at + i] = i < first || i >= n - last || c === 0x2d ? c : 0x2a;
  }
  for (let i = n; i < end - start; i++) dst[at + i] = 0x20;
}

export function partialValue(value: Buffer, t: ValueType, keepFirst: number, keepLast: number): MaskedValue {
  if (acceptsAnyText(t.kind) && t.kind !== TypeKind.Xml && isAscii(value)) {
    const out = Buffer.allocUnsafe(value.length);
    partialAscii(value, 0, value.length, keepFirst, keepLast, t.padded === true, out, 0);
    return out;
  }
  if (acceptsAnyText(t.kind)) {
    const { s, latin1 } = decodeText(value);
    const [raw, pad] = t.padded ? bpcharTrim(s) : [s, ''];
    const body = partialText(raw, keepFirst, keepLast);
    return encodeText((t.kind === TypeKind.Xml ? xmlEscape(body) : body) + pad, latin1);
  }
  if (t.kind === TypeKind.Json || t.kind === TypeKind.Jsonb) {
    const text = textBytes(value, t).toString('utf8');
    let inner: string;
    const first = text.trimStart().charCodeAt(0);
    if (first === 0x22) {
      try {
        inner = partialText(String(JSON.parse(text)), keepFirst, keepLast);
      } catch {
        inner = '***';
      }
    } else if (first === 0x2d || (first >= 0x30 && first <= 0x39)) {
      inner = partialText(text.trim(), keepFirst, keepLast);
    } else {
      inner = '***';
    }
    return jsonOut(JSON.stringify(inner), t);
  }
  return null;
}

/** partialValue of buf[start, end) into the arena (the row path); see arena.ts for the result. */
export function partialInto(buf: Buffer, start: number, end: number, t: ValueType, keepFirst: number, keepLast: number, arena: ValueOut): number {
  if (acceptsAnyText(t.kind) && t.kind !== TypeKind.Xml && isAscii(buf, start, end)) {
    partialAscii(buf, start, end, keepFirst, keepLast, t.padded === true, arena.room(end - start), arena.len);
    return end - start;
  }
  return putValue(arena, partialValue(buf.subarray(start, end), t, keepFirst, keepLast));
}

// ---------------------------------------------------------------------------------------------
// tokenize

const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** Per byte value, its two hex digits. */
const HEX_HI = Uint8Array.from({ length: 256 }, (_, b) => HEX[b >>> 4] as number);
const HEX_LO = Uint8Array.from({ length: 256 }, (_, b) => HEX[b & 0xf] as number);
const TEXT_TOKEN_LENGTH = 20;

/**
 * Keyed HMAC-SHA256 tokens. Equal inputs give equal tokens under one key, across sessions and
 * servers sharing the key; without the key a token reveals nothing about its input.
 */
export class Tokenizer {
  private readonly hmac: Hmac256;
  private readonly words = new Int32Array(8);
  /**
   * Tokens computed ahead (`prepare`) for values at known places of one buffer, in order: the row
   * path consumes them as it reaches those values. Matched by buffer identity and offsets, which
   * cannot be reused while the buffer is referenced here.
   */
  private aheadSrc: Uint8Array | undefined;
  private aheadStarts: Int32Array = new Int32Array(0);
  private aheadEnds: Int32Array = new Int32Array(0);
  private aheadWords = new Int32Array(512);
  private aheadCount = 0;
  private aheadNext = 0;

  constructor(key: Buffer) {
    if (key.length < 16) throw new RangeError('the tokenization key must be at least 16 bytes');
    this.hmac = new Hmac256(key);
  }

  private run(data: Buffer | string): Int32Array {
    this.hmac.macWords(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, this.words);
    return this.words;
  }

  /** HMAC-SHA256(key, data); strings are taken as latin1 bytes. */
  mac(data: Buffer | string): Buffer {
    const w = this.run(data);
    const out = Buffer.allocUnsafe(32);
    for (let i = 0; i < 8; i++) out.writeInt32BE(w[i] as number, i * 4);
    return out;
  }

  /** `tok_` and the first 16 hex digits (64 bits) of the MAC, as bytes. */
  textToken(data: Buffer | string): Buffer {
    const out = Buffer.allocUnsafe(TEXT_TOKEN_LENGTH);
    const input = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    this.textTokenInto(input, 0, input.length, out, 0);
    return out;
  }

  /**
   * Computes now, in one batch, the text tokens of the values src[starts[i], ends[i]) (in increasing
   * order of start), for textTokenInto to use when it reaches them. Replaces any earlier batch. The
   * arrays are kept, not copied: the caller leaves them alone until its next prepare.
   */
  prepare(src: Uint8Array, starts: Int32Array, ends: Int32Array, count: number): void {
    if (this.aheadWords.length < 2 * count) this.aheadWords = new Int32Array(4 * count);
    this.hmac.macFirstWords(src, starts, ends, count, this.aheadWords);
    this.aheadSrc = src;
    this.aheadStarts = starts;
    this.aheadEnds = ends;
    this.aheadCount = count;
    this.aheadNext = 0;
  }

  /** textToken of src[start, end), written at dst[at..] (TEXT_TOKEN_LENGTH bytes). */
  textTokenInto(src: Buffer, start: number, end: number, dst: Buffer, at: number): void {
    let hi: number;
    let lo: number;
    if (src === this.aheadSrc && this.takeAhead(start, end)) {
      hi = this.aheadWords[2 * (this.aheadNext - 1)] as number;
      lo = this.aheadWords[2 * (this.aheadNext - 1) + 1] as number;
    } else {
      const w = this.words;
      this.hmac.macRange(src, start, end, w);
      hi = w[0] as number;
      lo = w[1] as number;
    }
    dst[at] = 0x74;
    dst[at + 1] = 0x6f;
    dst[at + 2] = 0x6b;
    dst[at + 3] = 0x5f;
    // two hex digits per byte of the two words, from a table
    for (let j = 0; j < 4; j++) {
      const b = (hi >>> (24 - 8 * j)) & 0xff;
      dst[at + 4 + 2 * j] = HEX_HI[b] as number;
      dst[at + 5 + 2 * j] = HEX_LO[b] as number;
    }
    for (let j = 0; j < 4; j++) {
      const b = (lo >>> (24 - 8 * j)) & 0xff;
      dst[at + 12 + 2 * j] = HEX_HI[b] as number;
      dst[at + 13 + 2 * j] = HEX_LO[b] as number;
    }
  }

  /** Moves past prepared values before `start` (never reached: NULLs, malformed rows) and takes the one at start..end. */
  private takeAhead(start: number, end: number): boolean {
    let i = this.aheadNext;
    while (i < this.aheadCount && (this.aheadStarts[i] as number) < start) i++;
    this.aheadNext = i;
    if (i >= this.aheadCount || this.aheadStarts[i] !== start || this.aheadEnds[i] !== end) return false;
    this.aheadNext = i + 1;
    return true;
  }
}

/** Canonical text of a binary integer value, so both formats tokenize the same input. */
function binaryIntText(value: Buffer, kind: TypeKind): string | undefined {
  if (kind === TypeKind.Int2 && value.length === 2) return String(value.readInt16BE(0));
  if (kind === TypeKind.Int4 && value.length === 4) return String(value.readInt32BE(0));
  if (kind === TypeKind.Int8 && value.length === 8) return value.readBigInt64BE(0).toString();
  return undefined;
}

/** PostgreSQL's binary numeric (ndigits, weight, sign, dscale, base-10000 digits) as its text form. */
export function numericBinaryToText(value: Buffer): string | undefined {
  if (value.length < 8) return undefined;
  const ndigits = value.readUInt16BE(0);
  const weight = value.readInt16BE(2);
  const sign = value.readUInt16BE(4);
  const dscale = value.readUInt16BE(6);
  if (value.length !== 8 + 2 * ndigits) return undefined;
  if (sign === 0xc000) return 'NaN';
  if (sign === 0xd000) return 'Infinity';
  if (sign === 0xf000) return '-Infinity';
  if (sign !== 0 && sign !== 0x4000) return undefined;
  const digits: number[] = [];
  for (let i = 0; i < ndigits; i++) digits.push(value.readUInt16BE(8 + 2 * i));
  let intPart = '';
  for (let w = weight, i = 0; w >= 0; w--, i++) {
    const d = i < digits.length ? (digits[i] as number) : 0;
    intPart += intPart === '' ? String(d) : String(d).padStart(4, '0');
  }
  if (intPart === '') intPart = '0';
  let frac = '';
  for (let i = weight + 1; frac.length < dscale; i++) {
    const d = i >= 0 && i < digits.length ? (digits[i] as number) : 0;
    frac += String(d).padStart(4, '0');
  }
  frac = frac.slice(0, dscale);
  const body = dscale > 0 ? `${intPart}.${frac}` : intPart;
  return sign === 0x4000 && /[1-9]/.test(body) ? `-${body}` : body;
}

/** A non-negative integer as PostgreSQL binary numeric. */
function numericBinary(n: bigint): Buffer {
  const groups: number[] = [];
  let v = n;
  while (v > 0n) {
    groups.unshift(Number(v % 10000n));
    v /= 10000n;
  }
  const b = Buffer.alloc(8 + 2 * groups.length);
  b.writeUInt16BE(groups.length, 0);
  b.writeInt16BE(groups.length - 1, 2);
  groups.forEach((g, i) => b.writeUInt16BE(g, 8 + 2 * i));
  return b;
}

function uuidText(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The bytes HMAC'd for a value: its canonical text form whatever the wire format. */
function tokenInput(value: Buffer, t: ValueType): Buffer | string | undefined {
  if (!t.binary) {
    if (t.padded) return bpcharTrim(value.toString('latin1'))[0];
    return value;
  }
  switch (t.kind) {
    case TypeKind.Int2:
    case TypeKind.Int4:
    case TypeKind.Int8:
      return binaryIntText(value, t.kind);
    case TypeKind.Numeric:
      return numericBinaryToText(value);
    case TypeKind.Uuid:
      return value.length === 16 ? uuidText(value) : undefined;
    case TypeKind.Jsonb:
      return value.subarray(1);
    case TypeKind.Bytea:
      return `\\x${value.toString('hex')}`;
    default:
      return t.padded ? bpcharTrim(value.toString('latin1'))[0] : value;
  }
}

export function tokenizeValue(value: Buffer, t: ValueType, tokenizer: Tokenizer): MaskedValue {
  const input = tokenInput(value, t);
  if (input === undefined) return null;
  if (acceptsAnyText(t.kind)) return tokenizer.textToken(input);
  switch (t.kind) {
    case TypeKind.Json:
    case TypeKind.Jsonb:
      return jsonOut(`"${tokenizer.textToken(input).toString('latin1')}"`, t);
    case TypeKind.Int4: {
      const n = (tokenizer.mac(input).readUInt32BE(0) & 0x7fffffff) || 1;
      if (!t.binary) return Buffer.from(String(n), 'latin1');
      const b = Buffer.allocUnsafe(4);
      b.writeInt32BE(n, 0);
      return b;
    }
    case TypeKind.Int8:
    case TypeKind.Numeric: {
      const n = tokenizer.mac(input).readBigUInt64BE(0) & 0x3fffffffffffffffn || 1n;
      if (!t.binary) return Buffer.from(n.toString(), 'latin1');
      if (t.kind === TypeKind.Numeric) return numericBinary(n);
      const b = Buffer.allocUnsafe(8);
      b.writeBigInt64BE(n, 0);
      return b;
    }
    case TypeKind.Uuid: {
      const b = Buffer.from(tokenizer.mac(input).subarray(0, 16));
      // RFC 9562 version 8 (custom) with the RFC variant, so it is a well-formed UUID.
      b[6] = ((b[6] as number) & 0x0f) | 0x80;
      b[8] = ((b[8] as number) & 0x3f) | 0x80;
      return t.binary ? b : Buffer.from(uuidText(b), 'latin1');
    }
    case TypeKind.Bytea: {
      const mac = tokenizer.mac(input);
      return t.binary ? mac : Buffer.from(`\\x${mac.toString('hex')}`, 'latin1');
    }
    default:
      return null;
  }
}

/** Text in text format is its own token input (tokenInput): tokenized straight from the row's bytes. */
export function tokenizesAsText(t: ValueType): boolean {
  return !t.binary && t.padded !== true && acceptsAnyText(t.kind);
}

/** tokenizeValue of buf[start, end) into the arena (the row path); see arena.ts for the result. */
export function tokenizeInto(buf: Buffer, start: number, end: number, t: ValueType, tokenizer: Tokenizer, arena: ValueOut): number {
  if (tokenizesAsText(t)) {
    tokenizer.textTokenInto(buf, start, end, arena.room(TEXT_TOKEN_LENGTH), arena.len);
    return TEXT_TOKEN_LENGTH;
  }
  return putValue(arena, tokenizeValue(buf.subarray(start, end), t, tokenizer));
}

// ---------------------------------------------------------------------------------------------
// year_only

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const DAY_MS = 86_400_000;

/** Jan 1 of a (proleptic Gregorian, astronomical) year as a UTC Date; years 0-99 included. */
function jan1(year: number): Date {
  const d = new Date(0);
  d.setUTCFullYear(year, 0, 1);
  return d;
}

/** The time-of-day and zone that may follow a date: digits of the time become zeros, the zone stays. */
function zeroTime(rest: string): string | undefined {
  if (rest === '' || rest === ' BC') return rest;
  const m = /^([ T])(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)(.*)$/.exec(rest);
  if (m === null) return undefined;
  const zone = m[3] ?? '';
  // A zone is an offset, a name/abbreviation, optionally followed by BC.
  if (!/^(?:\s?(?:[+-]\d{2}(?::?\d{2}){0,2}|Z|[A-Za-z][A-Za-z0-9/_+-]{0,40}))?(?: BC)?$/.test(zone)) return undefined;
  return `${m[1]}${(m[2] as string).replace(/\d/g, '0')}${zone}`;
}

const MONTH_ABBR = /^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)$/;

/**
 * A date or timestamp in any of PostgreSQL's DateStyle outputs (ISO, SQL, German, Postgres; MDY or
 * DMY) with month and day set to 1 and the time to midnight, keeping the shape, zone and era. Also
 * accepts unpadded M/D/YYYY as people type it into text columns. Undefined when `s` is not one.
 */
export function yearOnlyText(s: string): string | undefined {
  if (s === 'infinity' || s === '-infinity') return s;
  let m = /^(\d{4,})-(\d{2})-(\d{2})(.*)$/.exec(s);
  if (m !== null) {
    const t = zeroTime(m[4] ?? '');
    return t === undefined ? undefined : `${m[1]}-01-01${t}`;
  }
  m = /^(\d{1,2})([/.-])(\d{1,2})\2(\d{4,})(.*)$/.exec(s);
  if (m !== null) {
    const t = zeroTime(m[5] ?? '');
    const pad = (x: string): string => (x.length === 2 ? '01' : '1');
    return t === undefined ? undefined : `${pad(m[1] as string)}${m[2]}${pad(m[3] as string)}${m[2]}${m[4]}${t}`;
  }
  // Postgres style: "Thu Mar 14 10:23:45.5 1985 PST" (MDY) or "Thu 14 Mar 10:23:45 1985 PST" (DMY).
  m = /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) (?:(\w{3}) (\d{2})|(\d{2}) (\w{3})) (\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?) (\d{4,})(.*)$/.exec(s);
  if (m !== null) {
    const month = m[2] ?? m[5] ?? '';
    if (!MONTH_ABBR.test(month)) return undefined;
    const rest = m[8] ?? '';
    if (!/^(?: [A-Za-z0-9/_+:-]{1,40})?(?: BC)?$/.test(rest)) return undefined;
    const written = Number(m[7]);
    const year = / BC$/.test(rest) ? 1 - written : written;
    const weekday = WEEKDAYS[jan1(year).getUTCDay()] as string;
    const time = (m[6] as string).replace(/\d/g, '0');
    const date = m[2] !== undefined ? `Jan 01` : `01 Jan`;
    return `${weekday} ${date} ${time} ${m[7]}${rest}`;
  }
  return undefined;
}

function yearOnlyInt(s: string): string | undefined {
  const t = s.trim();
  if (/^\d{4}$/.test(t)) return t;
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(t);
  if (m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 12 && Number(m[3]) >= 1 && Number(m[3]) <= 31) return `${m[1]}0101`;
  return undefined;
}

function yearOnlyBinaryDate(value: Buffer): MaskedValue {
  if (value.length !== 4) return null;
  const days = value.readInt32BE(0);
  if (days === 0x7fffffff || days === -0x80000000) return value;
  const d = new Date(PG_EPOCH_MS + days * DAY_MS);
  if (Number.isNaN(d.getTime())) return null;
  const out = Buffer.allocUnsafe(4);
  out.writeInt32BE(Math.round((jan1(d.getUTCFullYear()).getTime() - PG_EPOCH_MS) / DAY_MS), 0);
  return out;
}

const INT64_MAX = 0x7fffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;

function yearOnlyBinaryTimestamp(value: Buffer): MaskedValue {
  if (value.length !== 8) return null;
  const us = value.readBigInt64BE(0);
  if (us === INT64_MAX || us === INT64_MIN) return value;
  const ms = Number(us / 1000n) + PG_EPOCH_MS;
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return null;
  const out = Buffer.allocUnsafe(8);
  out.writeBigInt64BE(BigInt(jan1(d.getUTCFullYear()).getTime() - PG_EPOCH_MS) * 1000n, 0);
  return out;
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

const ZONE_TAIL = /^(?:[+-]\d{2}(?::?\d{2}){0,2})?(?: BC)?$/;

/**
 * ISO `YYYY-MM-DD[ HH:MM:SS[.ffffff]][zone][ BC]` straight on the bytes b[start, end): returns where
 * the time of day ends (start + 10 for a date), or -1 for any other shape.
 */
function isoDateTimeEnd(b: Buffer, start: number, end: number): number {
  if (end - start < 10 || b[start + 4] !== 0x2d || b[start + 7] !== 0x2d) return -1;
  for (const i of ISO_DIGITS) if (!isDigit(b[start + i])) return -1;
  let i = start + 10;
  if (i < end && (b[i] === 0x20 || b[i] === 0x54) && isDigit(b[i + 1])) {
    i++;
    while (i < end && (isDigit(b[i]) || b[i] === 0x3a || b[i] === 0x2e)) i++;
  }
  if (i < end && !ZONE_TAIL.test(b.toString('latin1', i, end))) return -1;
  return i;
}
const ISO_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9];

/** Copies the ISO value src[start, end) (see isoDateTimeEnd) to dst[at..] with month/day 01 and the time 00:00:00. */
function yearOnlyIso(src: Buffer, start: number, end: number, timeEnd: number, dst: Buffer, at: number): void {
  for (let i = start; i < end; i++) dst[at + i - start] = src[i] as number;
  dst[at + 5] = 0x30;
  dst[at + 6] = 0x31;
  dst[at + 8] = 0x30;
  dst[at + 9] = 0x31;
  for (let j = at + 11; j < at + (timeEnd - start); j++) if (isDigit(dst[j])) dst[j] = 0x30;
}

function isDateKind(t: ValueType): boolean {
  return !t.binary && (t.kind === TypeKind.Date || t.kind === TypeKind.Timestamp || t.kind === TypeKind.Timestamptz);
}

/** yearOnlyValue of buf[start, end) into the arena (the row path); see arena.ts for the result. */
export function yearOnlyInto(buf: Buffer, start: number, end: number, t: ValueType, placeholder: string, arena: ValueOut): number {
  if (isDateKind(t)) {
    const timeEnd = isoDateTimeEnd(buf, start, end);
    if (timeEnd >= 0) {
      yearOnlyIso(buf, start, end, timeEnd, arena.room(end - start), arena.len);
      return end - start;
    }
  }
  return putValue(arena, yearOnlyValue(buf.subarray(start, end), t, placeholder));
}

export function yearOnlyValue(value: Buffer, t: ValueType, placeholder = '***'): MaskedValue {
  if (isDateKind(t)) {
    const timeEnd = isoDateTimeEnd(value, 0, value.length);
    if (timeEnd >= 0) {
      const out = Buffer.allocUnsafe(value.length);
      yearOnlyIso(value, 0, value.length, timeEnd, out, 0);
      return out;
    }
  }
  switch (t.kind) {
    case TypeKind.Date:
      if (t.binary) return yearOnlyBinaryDate(value);
      break;
    case TypeKind.Timestamp:
    case TypeKind.Timestamptz:
      if (t.binary) return yearOnlyBinaryTimestamp(value);
      break;
    case TypeKind.Int2:
    case TypeKind.Int4:
    case TypeKind.Int8:
    case TypeKind.Numeric: {
      const text = t.binary ? (t.kind === TypeKind.Numeric ? numericBinaryToText(value) : binaryIntText(value, t.kind)) : value.toString('latin1');
      const y = text === undefined ? undefined : yearOnlyInt(text);
      if (y === undefined) return null;
      if (!t.binary) return Buffer.from(y, 'latin1');
      if (t.kind === TypeKind.Numeric) return numericBinary(BigInt(y));
      const n = Number(y);
      const b = Buffer.allocUnsafe(t.kind === TypeKind.Int2 ? 2 : t.kind === TypeKind.Int4 ? 4 : 8);
      if (t.kind === TypeKind.Int2) {
        if (n > 32767) return null;
        b.writeInt16BE(n, 0);
      } else if (t.kind === TypeKind.Int4) b.writeInt32BE(n, 0);
      else b.writeBigInt64BE(BigInt(n), 0);
      return b;
    }
    case TypeKind.Json:
    case TypeKind.Jsonb: {
      const text = textBytes(value, t).toString('utf8');
      let inner: unknown;
      try {
        inner = JSON.parse(text);
      } catch {
        inner = undefined;
      }
      const y = typeof inner === 'string' ? yearOnlyText(inner.trim()) : undefined;
      return jsonOut(y === undefined ? 'null' : JSON.stringify(y), t);
    }
    default:
      if (!acceptsAnyText(t.kind)) return null;
  }
  const { s, latin1 } = decodeText(value);
  const y = yearOnlyText(t.padded ? bpcharTrim(s)[0] : s.trim());
  if (y !== undefined) return encodeText(y, latin1);
  // Not a date we can read: a typed column gets NULL, a text column the placeholder (fail closed).
  return acceptsAnyText(t.kind) ? Buffer.from(placeholder, 'utf8') : null;
}
