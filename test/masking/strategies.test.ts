// Masking strategies: every strategy on every type family, text and binary format, and that each output still parses as its type.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import {
  Tokenizer, TypeKind, numericBinaryToText, partialText, partialValue, redactValue, tokenizeValue, yearOnlyText, yearOnlyValue,
  partialInto, tokenizeInto, yearOnlyInto,
  type ValueType,
} from '../../src/masking/index.js';
import { Hmac256 } from '../../src/masking/hmac.js';
import { NULL_VALUE, UNCHANGED, ValueArena } from '../../src/masking/arena.js';

const text: ValueType = { kind: TypeKind.Text, binary: false };
const bin = (kind: TypeKind): ValueType => ({ kind, binary: true });
const txt = (kind: TypeKind): ValueType => ({ kind, binary: false });
const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const str = (v: Buffer | null): string | null => (v === null ? null : v.toString('utf8'));
const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const tok = new Tokenizer(KEY);

function int4(n: number): Buffer {
  const x = Buffer.alloc(4);
  x.writeInt32BE(n);
  return x;
}

describe('redact', () => {
  it('writes the placeholder into text-like types and a valid value or NULL elsewhere', () => {
    expect(str(redactValue(b('Ada Lovelace'), text))).toBe('***');
    expect(str(redactValue(b('Ada Lovelace'), text, '[hidden]'))).toBe('[hidden]');
    expect(str(redactValue(b('x'), txt(TypeKind.UserDefined)))).toBe('***');
    expect(str(redactValue(b('<a>x</a>'), txt(TypeKind.Xml), '<gone>'))).toBe('&lt;gone&gt;');
    expect(JSON.parse(str(redactValue(b('{"a":1}'), txt(TypeKind.Json))) as string)).toBe('***');
    expect(redactValue(b('\x01{"a":1}'), bin(TypeKind.Jsonb))).toEqual(Buffer.concat([Buffer.from([1]), b('"***"')]));
    expect(str(redactValue(b('\\x41'), txt(TypeKind.Bytea)))).toBe('\\x2a2a2a');
    expect(redactValue(b('A'), bin(TypeKind.Bytea))).toEqual(b('***'));
    for (const kind of [TypeKind.Int4, TypeKind.Int8, TypeKind.Numeric, TypeKind.Date, TypeKind.Timestamptz, TypeKind.Uuid, TypeKind.Other, TypeKind.TextArray, TypeKind.Record]) {
      expect(redactValue(b('1'), txt(kind))).toBeNull();
      expect(redactValue(b('1'), bin(kind))).toBeNull();
    }
  });
});

describe('partial', () => {
  it('keeps the requested ends, stars the rest and keeps dashes', () => {
    expect(partialText('123-45-6789', 0, 4)).toBe('***-**-6789');
    expect(partialText('123456789', 0, 4)).toBe('*****6789');
    expect(partialText('Lovelace', 1, 0)).toBe('L*******');
    expect(partialText('MRN-00012345', 4, 2)).toBe('MRN-******45');
  });

  it('never reveals more than half of the characters', () => {
    expect(partialText('abcd', 3, 0)).toBe('ab**');
    expect(partialText('abcd', 3, 3)).toBe('**cd');
    expect(partialText('ab', 0, 4)).toBe('*b');
    expect(partialText('a', 1, 1)).toBe('*');
    expect(partialText('', 1, 1)).toBe('');
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'abcdXYZ0189 .@'.split('')), maxLength: 40 }), fc.nat(50), fc.nat(50), (s, kf, kl) => {
        const out = partialText(s, kf, kl);
        const shown = [...out].filter((ch) => ch !== '*').length;
        return out.length === s.length && shown <= Math.floor(s.length / 2);
      }),
    );
  });

  it('counts characters, not bytes, and keeps other encodings byte for byte', () => {
    expect(str(partialValue(b('Zoë Ångström'), text, 2, 0))).toBe('Zo**********');
    // A LATIN1 client: bytes that are not UTF-8 are one character each.
    const latin1 = Buffer.from('Jos\xe9 M\xfcller', 'latin1');
    expect(partialValue(latin1, text, 3, 0)).toEqual(Buffer.from('Jos********', 'latin1'));
  });

  it('keeps bpchar padding out of the count and in the output', () => {
    expect(str(partialValue(b('1234      '), { kind: TypeKind.Text, binary: false, padded: true }, 0, 2))).toBe('**34      ');
  });

  it('keeps json valid and types without text form NULL', () => {
    expect(JSON.parse(str(partialValue(b('"123-45-6789"'), txt(TypeKind.Json), 0, 4)) as string)).toBe('***-**-6789');
    expect(JSON.parse(str(partialValue(b('123456789'), txt(TypeKind.Jsonb), 0, 4)) as string)).toBe('*****6789');
    expect(JSON.parse(str(partialValue(b('{"ssn":"123-45-6789"}'), txt(TypeKind.Json), 0, 4)) as string)).toBe('***');
    expect(partialValue(b('123456789'), txt(TypeKind.Int4), 0, 4)).toBeNull();
    expect(partialValue(int4(5), bin(TypeKind.Int4), 0, 4)).toBeNull();
    expect(str(partialValue(b('a<b&c>d'), txt(TypeKind.Xml), 4, 0))).toBe('a&lt;b****');
  });
});

describe('tokenize', () => {
  it('is the documented HMAC and stable per key', () => {
    const mac = createHmac('sha256', KEY).update('MRN-00012345').digest('hex');
    expect(str(tokenizeValue(b('MRN-00012345'), text, tok))).toBe(`tok_${mac.slice(0, 16)}`);
    expect(tokenizeValue(b('MRN-00012345'), text, tok)).toEqual(tokenizeValue(b('MRN-00012345'), text, new Tokenizer(Buffer.from(KEY))));
    expect(tokenizeValue(b('MRN-00012345'), text, tok)).not.toEqual(tokenizeValue(b('MRN-00012345'), text, new Tokenizer(Buffer.alloc(32, 9))));
    expect(tokenizeValue(b('MRN-00012345'), text, tok)).not.toEqual(tokenizeValue(b('MRN-00012346'), text, tok));
    expect(() => new Tokenizer(Buffer.alloc(8))).toThrow(/at least 16 bytes/);
  });

  it('gives bpchar the token of its unpadded text (as PostgreSQL compares them)', () => {
    expect(tokenizeValue(b('A12   '), { kind: TypeKind.Text, binary: false, padded: true }, tok)).toEqual(tokenizeValue(b('A12'), text, tok));
  });

  it('keeps numbers numbers, so joins on tokenized keys work in both formats', () => {
    const t4 = str(tokenizeValue(b('4711'), txt(TypeKind.Int4), tok)) as string;
    expect(t4).toMatch(/^[1-9]\d{0,9}$/);
    expect(Number(t4)).toBeLessThanOrEqual(0x7fffffff);
    const b4 = tokenizeValue(int4(4711), bin(TypeKind.Int4), tok) as Buffer;
    expect(b4.length).toBe(4);
    expect(String(b4.readInt32BE(0))).toBe(t4);

    const t8 = str(tokenizeValue(b('4711'), txt(TypeKind.Int8), tok)) as string;
    expect(t8).toMatch(/^[1-9]\d{0,18}$/);
    const eight = Buffer.alloc(8);
    eight.writeBigInt64BE(4711n);
    expect((tokenizeValue(eight, bin(TypeKind.Int8), tok) as Buffer).readBigInt64BE(0).toString()).toBe(t8);

    const tn = str(tokenizeValue(b('4711'), txt(TypeKind.Numeric), tok)) as string;
    expect(tn).toBe(t8);
    // 4711 as binary numeric: 1 digit, weight 0, positive, scale 0, digit 4711.
    const num = Buffer.from([0, 1, 0, 0, 0, 0, 0, 0, 0x12, 0x67]);
    expect(numericBinaryToText(tokenizeValue(num, bin(TypeKind.Numeric), tok) as Buffer)).toBe(tn);
    expect(tokenizeValue(b('7'), txt(TypeKind.Int2), tok)).toBeNull();
  });

  it('makes well-formed UUIDs, bytea and JSON strings, and NULL for dates and other types', () => {
    const u = str(tokenizeValue(b('0f5b1c7e-1111-4222-8333-444455556666'), txt(TypeKind.Uuid), tok)) as string;
    expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const ub = tokenizeValue(Buffer.from('0f5b1c7e111142228333444455556666', 'hex'), bin(TypeKind.Uuid), tok) as Buffer;
    expect(ub.toString('hex')).toBe(u.replace(/-/g, ''));
    expect(str(tokenizeValue(b('\\x0102'), txt(TypeKind.Bytea), tok))).toMatch(/^\\x[0-9a-f]{64}$/);
    expect(str(tokenizeValue(b('\\x0102'), txt(TypeKind.Bytea), tok))).toBe(`\\x${(tokenizeValue(Buffer.from([1, 2]), bin(TypeKind.Bytea), tok) as Buffer).toString('hex')}`);
    expect(JSON.parse(str(tokenizeValue(b('"x"'), txt(TypeKind.Jsonb), tok)) as string)).toMatch(/^tok_[0-9a-f]{16}$/);
    expect(tokenizeValue(b('1985-03-14'), txt(TypeKind.Date), tok)).toBeNull();
    expect(tokenizeValue(b('t'), txt(TypeKind.Other), tok)).toBeNull();
  });

  it('computes HMAC-SHA256 exactly as node:crypto does, for any key and length, in WebAssembly and in JavaScript', () => {
    expect(new Hmac256(KEY).engine).toBe('wasm');
    expect(new Hmac256(KEY, { wasm: false }).engine).toBe('js');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 150 }), fc.uint8Array({ minLength: 0, maxLength: 300 }), (key, data) => {
        const expected = createHmac('sha256', key).update(data).digest();
        return new Hmac256(key).mac(data).equals(expected) && new Hmac256(key, { wasm: false }).mac(data).equals(expected);
      }),
      { numRuns: 300 },
    );
    // Values longer than one WebAssembly page go to the JavaScript path of the same instance.
    const long = Buffer.alloc(70_000, 0x61);
    expect(new Hmac256(KEY).mac(long).equals(createHmac('sha256', KEY).update(long).digest())).toBe(true);
  });

  it('computes four MACs at a time (WebAssembly SIMD) exactly, for any count and every short length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 80 }), fc.array(fc.uint8Array({ maxLength: 55 }), { maxLength: 11 }), fc.boolean(), (key, values, long) => {
        if (long) values.push(new Uint8Array(56 + values.length)); // one value too long for a lane: all go one by one
        // all values in one buffer, between separators, as the row path hands them over
        const src = Buffer.concat(values.flatMap((v) => [Buffer.from('xx'), v]));
        const starts = new Int32Array(values.length);
        const ends = new Int32Array(values.length);
        values.reduce((at, v, i) => {
          starts[i] = at + 2;
          ends[i] = at + 2 + v.length;
          return at + 2 + v.length;
        }, 0);
        const out = new Int32Array(2 * values.length);
        new Hmac256(key).macFirstWords(src, starts, ends, values.length, out);
        values.forEach((v, i) => {
          const d = createHmac('sha256', key).update(v).digest();
          expect([out[2 * i], out[2 * i + 1]]).toEqual([d.readInt32BE(0), d.readInt32BE(4)]);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('uses tokens prepared ahead for the same places of the same buffer, and computes any other', () => {
    const t = new Tokenizer(KEY);
    const plain = new Tokenizer(KEY);
    const buf = Buffer.from('MRN-00000001|MRN-00000002|MRN-00000003|MRN-00000004|MRN-00000005');
    const at = (i: number): [number, number] => [i * 13, i * 13 + 12];
    t.prepare(buf, Int32Array.from([0, 1, 2, 3, 4], (i) => at(i)[0]), Int32Array.from([0, 1, 2, 3, 4], (i) => at(i)[1]), 5);
    const token = (tk: Tokenizer, src: Buffer, [s, e]: [number, number]): string => {
      const out = Buffer.alloc(20);
      tk.textTokenInto(src, s, e, out, 0);
      return out.toString('latin1');
    };
    // value 1 is skipped (a NULL in its row, say), value 3 is asked for with another length
    expect(token(t, buf, at(0))).toBe(token(plain, buf, at(0)));
    expect(token(t, buf, at(2))).toBe(token(plain, buf, at(2)));
    expect(token(t, buf, [39, 45])).toBe(token(plain, buf, [39, 45]));
    expect(token(t, buf, at(4))).toBe(token(plain, buf, at(4)));
    // the same bytes in another buffer never take a prepared token by position
    const other = Buffer.from('MRN-99999999|MRN-00000002');
    expect(token(t, other, at(0))).toBe(token(plain, other, at(0)));
    expect(token(t, buf, at(0))).toBe(token(plain, buf, at(0)));
    expect(token(plain, buf, at(0))).toMatch(/^tok_[0-9a-f]{16}$/);
    expect(token(plain, buf, at(0))).not.toBe(token(plain, buf, at(1)));
    // Prepared tokens are taken by position (socket chunks never change once read): shown here by
    // changing the bytes after preparing, which the relay never does.
    const before = token(plain, buf, at(1));
    t.prepare(buf, Int32Array.of(at(1)[0]), Int32Array.of(at(1)[1]), 1);
    buf[at(1)[1] - 1] = 0x39;
    expect(token(t, buf, at(1))).toBe(before);
    expect(token(plain, buf, at(1))).not.toBe(before);
  });

  it('gives the same MAC for a range of a buffer as for a copy of it, one value after another', () => {
    const h = new Hmac256(KEY);
    const words = new Int32Array(8);
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 130 }), { minLength: 1, maxLength: 6 }), (values) => {
        const all = Buffer.concat(values.map((v) => Buffer.from(v)));
        let at = 0;
        for (const v of values) {
          h.macRange(all, at, at + v.length, words);
          const expected = createHmac('sha256', KEY).update(v).digest();
          for (let i = 0; i < 8; i++) expect(words[i]).toBe(expected.readInt32BE(i * 4));
          at += v.length;
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('the row path forms (into the value arena)', () => {
  const types = [text, txt(TypeKind.UserDefined), bin(TypeKind.Text), { kind: TypeKind.Text, binary: false, padded: true }, txt(TypeKind.Xml), txt(TypeKind.Date),
    txt(TypeKind.Timestamptz), txt(TypeKind.Json), txt(TypeKind.Int4), bin(TypeKind.Int4), bin(TypeKind.Date)] satisfies ValueType[];
  const values = fc.oneof(
    fc.string({ maxLength: 24 }).map((s) => b(s)),
    fc.uint8Array({ maxLength: 24 }).map((u) => Buffer.from(u)),
    fc.date({ min: new Date('0100-01-01'), max: new Date('9000-01-01'), noInvalidDate: true }).map((d) => b(d.toISOString().replace('T', ' ').replace('Z', '+00'))),
    fc.constantFrom(b('123-45-6789'), b('MRN-12345678'), b('1985-03-14'), b('  A12  '), Buffer.from([0, 0, 0, 5])),
  );
  const arena = new ValueArena(8);
  /** The arena form's result as the Buffer form reports it: bytes, null, or undefined for unchanged. */
  const viaArena = (f: (a: ValueArena) => number): Buffer | null | undefined => {
    arena.len = 3; // something already in the arena: the op must write at len, not at 0
    const n = f(arena);
    if (n === NULL_VALUE) return null;
    if (n === UNCHANGED) return undefined;
    return Buffer.from(arena.buf.subarray(3, 3 + n));
  };

  it('write exactly what partialValue, tokenizeValue and yearOnlyValue return, for values inside a larger buffer', () => {
    fc.assert(
      fc.property(values, fc.constantFrom(...types), fc.nat(4), fc.nat(4), (v, t, kf, kl) => {
        const framed = Buffer.concat([b('xx'), v, b('yyy')]);
        const [s, e] = [2, 2 + v.length];
        expect(viaArena((a) => partialInto(framed, s, e, t, kf, kl, a))).toEqual(partialValue(v, t, kf, kl));
        expect(viaArena((a) => tokenizeInto(framed, s, e, t, tok, a))).toEqual(tokenizeValue(v, t, tok));
        expect(viaArena((a) => yearOnlyInto(framed, s, e, t, '***', a))).toEqual(yearOnlyValue(v, t, '***'));
      }),
      { numRuns: 500 },
    );
  });
});

describe('year_only', () => {
  it.each([
    ['1985-03-14', '1985-01-01'],
    ['1985-03-14 10:23:45', '1985-01-01 00:00:00'],
    ['1985-03-14 10:23:45.123456+05:30', '1985-01-01 00:00:00.000000+05:30'],
    ['1985-03-14 10:23:45-08', '1985-01-01 00:00:00-08'],
    ['0044-03-15 BC', '0044-01-01 BC'],
    ['12345-06-07', '12345-01-01'],
    ['infinity', 'infinity'],
    ['-infinity', '-infinity'],
    ['03/14/1985', '01/01/1985'],
    ['14/03/1985 10:23:45.5 PST', '01/01/1985 00:00:00.0 PST'],
    ['14.03.1985', '01.01.1985'],
    ['03-14-1985', '01-01-1985'],
    ['Thu Mar 14 10:23:45 1985 PST', 'Tue Jan 01 00:00:00 1985 PST'],
    ['Thu 14 Mar 10:23:45.25 1985', 'Tue 01 Jan 00:00:00.00 1985'],
    ['Sat Jan 01 00:00:00 2000', 'Sat Jan 01 00:00:00 2000'],
  ])('%s (any DateStyle) → %s', (input, out) => {
    expect(yearOnlyText(input)).toBe(out);
    expect(str(yearOnlyValue(b(input), txt(TypeKind.Timestamptz)))).toBe(out);
  });

  it('handles dates typed into text columns and refuses what it cannot read', () => {
    expect(str(yearOnlyValue(b('3/14/1985'), text))).toBe('1/01/1985');
    expect(str(yearOnlyValue(b(' 1985-03-14 '), text))).toBe('1985-01-01');
    expect(str(yearOnlyValue(b('born in spring'), text))).toBe('***');
    expect(yearOnlyValue(b('garbage'), txt(TypeKind.Date))).toBeNull();
    expect(JSON.parse(str(yearOnlyValue(b('"1985-03-14"'), txt(TypeKind.Json))) as string)).toBe('1985-01-01');
    expect(str(yearOnlyValue(b('{"d":1}'), txt(TypeKind.Json)))).toBe('null');
  });

  it('keeps years in integer columns and turns YYYYMMDD into YYYY0101', () => {
    expect(str(yearOnlyValue(b('1985'), txt(TypeKind.Int4)))).toBe('1985');
    expect(str(yearOnlyValue(b('19850314'), txt(TypeKind.Int4)))).toBe('19850101');
    expect(yearOnlyValue(b('42'), txt(TypeKind.Int4))).toBeNull();
    expect((yearOnlyValue(int4(19850314), bin(TypeKind.Int4)) as Buffer).readInt32BE(0)).toBe(19850101);
  });

  it('rewrites binary dates and timestamps to January 1 (UTC), keeping infinities', () => {
    const pgEpoch = Date.UTC(2000, 0, 1);
    const days = (Date.UTC(1985, 2, 14) - pgEpoch) / 86_400_000;
    const d = yearOnlyValue(int4(days), bin(TypeKind.Date)) as Buffer;
    expect(d.readInt32BE(0)).toBe((Date.UTC(1985, 0, 1) - pgEpoch) / 86_400_000);
    expect(yearOnlyValue(int4(0x7fffffff), bin(TypeKind.Date))).toEqual(int4(0x7fffffff));
    const ts = Buffer.alloc(8);
    ts.writeBigInt64BE(BigInt(Date.UTC(1985, 2, 14, 10, 23, 45) - pgEpoch) * 1000n + 123n);
    const out = yearOnlyValue(ts, bin(TypeKind.Timestamp)) as Buffer;
    expect(out.readBigInt64BE(0)).toBe(BigInt(Date.UTC(1985, 0, 1) - pgEpoch) * 1000n);
    const pre = Buffer.alloc(8);
    pre.writeBigInt64BE(BigInt(Date.UTC(1931, 6, 4) - pgEpoch) * 1000n);
    expect((yearOnlyValue(pre, bin(TypeKind.Timestamptz)) as Buffer).readBigInt64BE(0)).toBe(BigInt(Date.UTC(1931, 0, 1) - pgEpoch) * 1000n);
    expect(yearOnlyValue(Buffer.alloc(3), bin(TypeKind.Date))).toBeNull();
  });
});

describe('binary numeric', () => {
  it.each([
    [[0, 0, 0, 0, 0, 0, 0, 0], '0'],
    [[0, 2, 0, 1, 0, 0, 0, 0, 0, 1, 0x09, 0x29], '12345'],
    [[0, 2, 0, 0, 0x40, 0, 0, 2, 0, 12, 0x13, 0x88], '-12.50'],
    [[0, 1, 0xff, 0xff, 0, 0, 0, 4, 0, 5], '0.0005'],
    [[0, 0, 0, 0, 0xc0, 0, 0, 0], 'NaN'],
  ])('%j → %s', (bytes, textForm) => {
    expect(numericBinaryToText(Buffer.from(bytes))).toBe(textForm);
  });
});
