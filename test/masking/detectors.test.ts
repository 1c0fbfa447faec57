// Content detectors: SSN validity, email, NANP phones, birth-like dates, MBI format, NPI checksum, custom regexes, and detection inside JSON, arrays, records and xml.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DetectorSet, TypeKind, npiValid, vetPattern, type DetectorSpec } from '../../src/masking/index.js';

const ALL: DetectorSpec[] = (['us_ssn', 'email', 'phone', 'date', 'mbi', 'npi'] as const).map((name) => ({ kind: 'builtin', name }));

function custom(name: string, pattern: string): DetectorSpec {
  const source = vetPattern(pattern).source;
  return { kind: 'custom', name, pattern, source, regex: new RegExp(source, 'g') };
}

const all = new DetectorSet([...ALL, custom('mrn', 'MRN-\\d{8}')]);

function scan(s: string, kind = TypeKind.Text, set = all): string {
  const out = set.scan(Buffer.from(s, 'utf8'), kind);
  return out === undefined ? s : out.toString('utf8');
}

describe('us_ssn', () => {
  it.each([
    ['SSN 123-45-6789 on file', 'SSN ***-**-6789 on file'],
    ['123 45 6789', '*** ** 6789'],
    ['123456789', '*****6789'],
    ['ssn:078051120.', 'ssn:*****1120.'],
    ['a,772-01-0001,b', 'a,***-**-0001,b'],
  ])('masks %s', (input, out) => expect(scan(input)).toBe(out));

  it.each([
    ['000-12-3456', 'area 000'],
    ['666-12-3456', 'area 666'],
    ['900-12-3456', 'area 9xx'],
    ['999-99-9999', 'area 9xx'],
    ['123-00-4567', 'group 00'],
    ['123-45-0000', 'serial 0000'],
    ['123-45 6789', 'mixed separators'],
    ['1123-45-6789', 'part of a longer number'],
    ['123-45-67890', 'part of a longer number'],
    ['A123456789', 'glued to a word'],
    ['3.123456789', 'a decimal fraction'],
    ['12345678', 'too short'],
  ])('leaves %s alone (%s)', (input) => expect(scan(input, TypeKind.Text, new DetectorSet([{ kind: 'builtin', name: 'us_ssn' }]))).toBe(input));
});

describe('email, phone, date, MBI, NPI', () => {
  it('masks emails, keeping what surrounds them', () => {
    expect(scan('write to ada.lovelace+phi@example.co.uk, or Bob_2@mail.example.org.')).toBe('write to <email>, or <email>.');
    expect(scan('user@localhost')).toBe('user@localhost');
    expect(scan('not an @ sign')).toBe('not an @ sign');
  });

  it.each([
    ['(212) 555-1234', '<phone>'],
    ['212-555-1234', '<phone>'],
    ['212.555.1234 ext 5', '<phone> ext 5'],
    ['+1 212 555 1234', '<phone>'],
    ['1-800-555-0199', '<phone>'],
    ['+12125551234', '<phone>'],
    ['call (212)555-1234 now', 'call <phone> now'],
  ])('masks phone %s', (input, out) => expect(scan(input)).toBe(out));

  it.each(['2125551234', '123-456-7890', '212-155-1234', '12-555-12345'])('leaves %s alone (not an unambiguous NANP number)', (input) => {
    expect(scan(input, TypeKind.Text, new DetectorSet([{ kind: 'builtin', name: 'phone' }]))).toBe(input);
  });

  it.each([
    ['born 1985-03-14', 'born <date>'],
    ['DOB: 03/14/1985', 'DOB: <date>'],
    ['3/4/1985', '<date>'],
    ['14.03.1985', '<date>'],
    ['March 14, 1985', '<date>'],
    ['mar 14th 1985', '<date>'],
    ['14 Mar 1985', '<date>'],
    ['2024-01-31 10:00', '<date> 10:00'],
  ])('masks date %s', (input, out) => expect(scan(input)).toBe(out));

  it.each(['1985-13-14', '13/14/1985', '00/12/1985', '1799-01-01', 'v1.2.3', 'March 1985'])('leaves %s alone', (input) => {
    expect(scan(input, TypeKind.Text, new DetectorSet([{ kind: 'builtin', name: 'date' }]))).toBe(input);
  });

  it('masks Medicare Beneficiary Identifiers with or without dashes, and only valid ones', () => {
    const mbi = new DetectorSet([{ kind: 'builtin', name: 'mbi' }]);
    expect(scan('MBI 1EG4-TE5-MK73', TypeKind.Text, mbi)).toBe('MBI <mbi>');
    expect(scan('1EG4TE5MK73', TypeKind.Text, mbi)).toBe('<mbi>');
    expect(scan('1eg4te5mk73', TypeKind.Text, mbi)).toBe('<mbi>');
    for (const bad of ['0EG4TE5MK73', '1SG4TE5MK73', '1EG4TE5MK7', '1EG4TE5MK73X', '1EGATE5MK73', '1EG4TO5MK73', '1EG4TE5MB73']) {
      expect(scan(bad, TypeKind.Text, mbi)).toBe(bad);
    }
  });

  it('checks the NPI check digit (Luhn over 80840 + the first nine digits)', () => {
    expect(npiValid('1234567893')).toBe(true);
    expect(npiValid('1245319599')).toBe(true);
    expect(npiValid('1234567890')).toBe(false);
    expect(npiValid('3234567893')).toBe(false);
    const npi = new DetectorSet([{ kind: 'builtin', name: 'npi' }]);
    expect(scan('NPI 1234567893.', TypeKind.Text, npi)).toBe('NPI <npi>.');
    expect(scan('NPI 1234567890', TypeKind.Text, npi)).toBe('NPI 1234567890');
    expect(scan('11234567893', TypeKind.Text, npi)).toBe('11234567893');
    // Every single-digit change breaks the check.
    for (let i = 0; i < 10; i++) {
      for (let d = 0; d < 10; d++) {
        const v = '1234567893'.slice(0, i) + String(d) + '1234567893'.slice(i + 1);
        if (v !== '1234567893') expect(npiValid(v)).toBe(false);
      }
    }
  });
});

describe('custom detectors', () => {
  it('replaces matches with <name>', () => {
    expect(scan('chart MRN-00012345 and MRN-1234')).toBe('chart <mrn> and MRN-1234');
    const acct = new DetectorSet([custom('acct', 'ACCT#[0-9]+')]);
    expect(scan('ACCT#123 ACCT#4', TypeKind.Text, acct)).toBe('<acct> <acct>');
  });

  it('never leaves half a UTF-8 character', () => {
    const any = new DetectorSet([custom('code', 'X.{2}')]);
    const out = any.scan(Buffer.from('aX!éb', 'utf8'), TypeKind.Text) as Buffer;
    expect(out.toString('utf8')).toBe('a<code>b');
    expect(Buffer.from(out.toString('utf8'), 'utf8').equals(out)).toBe(true);
  });

  it('does not run across array or record punctuation', () => {
    const wide = new DetectorSet([custom('pair', 'a.b')]);
    expect(scan('{a,b}', TypeKind.TextArray, wide)).toBe('{a,b}');
    expect(scan('{axb,"a b"}', TypeKind.TextArray, wide)).toBe('{<pair>,"<pair>"}');
    expect(scan('(a,b)', TypeKind.Record, wide)).toBe('(a,b)');
  });
});

describe('structured values', () => {
  it('reads JSON strings and numbers and keeps the document valid', () => {
    const j = '{"ssn":"123-45-6789","n":123456789,"e":"x@example.com","nested":[{"k":"MRN-00012345"}],"ok":12}';
    const out = scan(j, TypeKind.Jsonb);
    expect(JSON.parse(out)).toEqual({ ssn: '***-**-6789', n: '*****6789', e: '<email>', nested: [{ k: '<mrn>' }], ok: 12 });
  });

  it('sees through \\u escapes of ASCII inside JSON strings', () => {
    const hidden = '{"s":"\\u0031\\u0032\\u0033-45-6789","q":"say \\"hi\\" \\u00e9"}';
    const out = scan(hidden, TypeKind.Json);
    expect(JSON.parse(out)).toEqual({ s: '***-**-6789', q: 'say "hi" é' });
    expect(scan('{"q":"say \\"hi\\""}', TypeKind.Json)).toBe('{"q":"say \\"hi\\""}');
  });

  it('reads row_to_json output', () => {
    const row = '{"id":1,"mrn":"MRN-00012345","ssn":"123-45-6789","full_name":"Ada Lovelace","email":"ada@example.org","phone":"(212) 555-1234","dob":"1985-03-14"}';
    const out = JSON.parse(scan(row, TypeKind.Json)) as Record<string, unknown>;
    expect(out).toEqual({ id: 1, mrn: '<mrn>', ssn: '***-**-6789', full_name: 'Ada Lovelace', email: '<email>', phone: '<phone>', dob: '<date>' });
  });

  it('reads PostgreSQL array and record literals', () => {
    expect(scan('{123-45-6789,"a b 787-65-4321",NULL}', TypeKind.TextArray)).toBe('{***-**-6789,"a b ***-**-4321",NULL}');
    expect(scan('{{x@example.com},{"(212) 555-1234"}}', TypeKind.TextArray)).toBe('{{<email>},{"<phone>"}}');
    expect(scan('(1,123-45-6789,"Ada, x@example.com")', TypeKind.Record)).toBe('(1,***-**-6789,"Ada, <email>")');
  });

  it('escapes replacements in xml', () => {
    expect(scan('<p>x@example.com 123-45-6789</p>', TypeKind.Xml)).toBe('<p>&lt;email&gt; ***-**-6789</p>');
  });

  it('returns undefined (unchanged) and allocates nothing for clean values', () => {
    expect(all.scan(Buffer.from('Springfield'), TypeKind.Text)).toBeUndefined();
    expect(all.scan(Buffer.from('{"a":[1,2,3]}'), TypeKind.Jsonb)).toBeUndefined();
    expect(new DetectorSet([]).scan(Buffer.from('123-45-6789'), TypeKind.Text)).toBeUndefined();
  });

  it('keeps bytes of any ASCII-compatible encoding that it does not replace', () => {
    const latin1 = Buffer.from('Jos\xe9 123-45-6789 \xfc', 'latin1');
    expect(all.scan(latin1, TypeKind.Text)).toEqual(Buffer.from('Jos\xe9 ***-**-6789 \xfc', 'latin1'));
  });
});

describe('properties', () => {
  const area = fc.integer({ min: 1, max: 899 }).filter((a) => a !== 666);
  const ssn = fc.tuple(area, fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 9999 }), fc.constantFrom('-', ' ', ''));
  const filler = fc.string({ unit: fc.constantFrom(...'abc XYZ,.;:!?()[]{}"\'é\n\t'.split('')), maxLength: 20 });

  it('never throws and returns valid UTF-8 for valid UTF-8 input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.constantFrom(TypeKind.Text, TypeKind.Json, TypeKind.Jsonb, TypeKind.TextArray, TypeKind.Record, TypeKind.Xml), (s, kind) => {
        const input = Buffer.from(s, 'utf8');
        const out = all.scan(input, kind);
        return out === undefined || Buffer.from(out.toString('utf8'), 'utf8').equals(out) || !Buffer.from(s, 'utf8').equals(Buffer.from(Buffer.from(s, 'utf8').toString('utf8'), 'utf8'));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(TypeKind.Text, TypeKind.Json, TypeKind.TextArray, TypeKind.Record), (bytes, kind) => {
        all.scan(Buffer.from(bytes), kind);
        return true;
      }),
      { numRuns: 500 },
    );
  });

  it('finds every valid SSN between separators, in text and in JSON strings', () => {
    fc.assert(
      fc.property(ssn, filler, filler, ([a, g, s, sep], before, after) => {
        const value = `${String(a).padStart(3, '0')}${sep}${String(g).padStart(2, '0')}${sep}${String(s).padStart(4, '0')}`;
        const text = `${before} ${value} ${after}`;
        const masked = scan(text);
        const inJson = scan(JSON.stringify({ note: text }), TypeKind.Jsonb);
        return !masked.includes(value) && !inJson.includes(value) && typeof JSON.parse(inJson) === 'object';
      }),
      { numRuns: 400 },
    );
  });
});
