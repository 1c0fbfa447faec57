// Result plans and the row path on real RowDescription/DataRow bytes built with src/pg: which column gets what, byte-identical pass-through, type-valid masked values, binary format, COPY rows, and property tests.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ByteSink, dataRow, decodeDataRow, decodeRowDescription, rowDescription, type FieldDescription } from '../../src/pg/index.js';
import { initClassifier } from '../../src/policy/classify/index.js';
import {
  OID, applyToCopyLine, applyToDataRow, copyFields, lineageOf, maskDataRowInto, maskedWrites, planColumns, vetPattern,
  type Catalog, type MaskPlan, type MaskingConfig, type ResolvedAttribute, type StatementLineage,
} from '../../src/masking/index.js';
import { benchMaskRows } from '../../scripts/bench-mask-rows.js';

const PATIENTS = 16_500;
const VISITS = 16_501;
const V_PATIENTS = 16_502;
const COLS: Record<number, { table: string; relkind: string; cols: string[] }> = {
  [PATIENTS]: { table: 'patients', relkind: 'r', cols: ['id', 'mrn', 'ssn', 'full_name', 'date_of_birth', 'email', 'notes'] },
  [VISITS]: { table: 'visits', relkind: 'r', cols: ['id', 'patient_mrn', 'note'] },
  [V_PATIENTS]: { table: 'v_patients', relkind: 'v', cols: ['id', 'ssn', 'shout'] },
};
const TYPES: Record<string, number> = { id: OID.int4, mrn: OID.text, ssn: OID.text, full_name: OID.varchar, date_of_birth: OID.date, email: OID.text, notes: OID.text, patient_mrn: OID.text, note: OID.text, shout: OID.text };

const resolve = (oid: number, attnum: number): ResolvedAttribute | undefined => {
  const t = COLS[oid];
  const column = t?.cols[attnum - 1];
  return t === undefined || column === undefined ? undefined : { schema: 'public', table: t.table, column, relkind: t.relkind };
};

const catalog: Catalog = {
  columns: (_s, table) => Object.values(COLS).find((c) => c.table === table)?.cols,
  view: (_s, name) => (name === 'v_patients' ? 'SELECT id, ssn, upper(full_name) AS shout FROM patients' : undefined),
};

const mrnSource = vetPattern('MRN-\\d{8}').source;
const CONFIG: MaskingConfig = {
  columns: [
    { table: 'patients', column: 'ssn', strategy: 'partial', keepFirst: 0, keepLast: 4, placeholder: '***' },
    { table: 'patients', column: 'mrn', strategy: 'tokenize', keepFirst: 0, keepLast: 0, placeholder: '***' },
    { table: 'visits', column: 'patient_mrn', strategy: 'tokenize', keepFirst: 0, keepLast: 0, placeholder: '***' },
    { table: 'patients', column: 'full_name', strategy: 'redact', keepFirst: 0, keepLast: 0, placeholder: '***' },
    { table: 'patients', column: 'date_of_birth', strategy: 'year_only', keepFirst: 0, keepLast: 0, placeholder: '***' },
  ],
  detectors: [
    { kind: 'builtin', name: 'us_ssn' },
    { kind: 'builtin', name: 'email' },
    { kind: 'custom', name: 'mrn', pattern: 'MRN-\\d{8}', source: mrnSource, regex: new RegExp(mrnSource, 'g') },
  ],
  unmaskedGroups: ['privacy-officers'],
};
const KEY = Buffer.alloc(32, 3);

// Some plans below are built while the suites are collected, before any hook runs.
await initClassifier();

/** A field as a real server describes it: plain references carry table OID and attnum, expressions 0/0. */
function field(name: string, source?: [number, string], typeOid?: number, format = 0): FieldDescription {
  if (source === undefined) return { name, tableOid: 0, columnAttr: 0, typeOid: typeOid ?? OID.text, typeSize: -1, typeModifier: -1, format };
  const [oid, col] = source;
  const attnum = (COLS[oid]?.cols.indexOf(col) ?? -1) + 1;
  return { name, tableOid: oid, columnAttr: attnum, typeOid: typeOid ?? TYPES[col] ?? OID.text, typeSize: -1, typeModifier: -1, format };
}

/** Round-trips the fields through the wire format, as the session will see them. */
function describeRow(fields: FieldDescription[]): FieldDescription[] {
  const decoded = decodeRowDescription(rowDescription(fields).subarray(5));
  if (decoded instanceof Error) throw decoded;
  return decoded;
}

function plan(sql: string, fields: FieldDescription[], opts: { unmasked?: boolean; lineage?: StatementLineage | null } = {}): MaskPlan {
  const lineage = opts.lineage === null ? undefined : (opts.lineage ?? lineageOf(sql, catalog)[0]);
  return planColumns(describeRow(fields), lineage, resolve, CONFIG, { unmasked: opts.unmasked ?? false, tokenKey: KEY });
}

/** Applies the plan to one row and returns the values as the client would read them. */
function apply(p: MaskPlan, values: (Buffer | string | null)[]): { values: (string | null)[]; raw: (Buffer | null)[]; changed: boolean } {
  const body = dataRow(values).subarray(5);
  const out = applyToDataRow(body, p);
  const decoded = decodeDataRow(out === null ? body : out.subarray(5));
  if (decoded instanceof Error) throw decoded;
  if (out !== null) {
    expect(out[0]).toBe(0x44);
    expect(out.readInt32BE(1)).toBe(out.length - 1);
  }
  return { values: decoded.map((v) => (v === null ? null : v.toString('utf8'))), raw: decoded.map((v) => (v === null ? null : Buffer.from(v))), changed: out !== null };
}

const ROW = ['7', 'MRN-00012345', '123-45-6789', 'Ada Lovelace', '1985-03-14', 'ada@example.org', 'chart MRN-00099999, ssn 078-05-1120'];

describe('planning', () => {
  it('masks plain references by their rule and runs detectors on other text columns', () => {
    const fields = ['id', 'mrn', 'ssn', 'full_name', 'date_of_birth', 'email', 'notes'].map((c) => field(c, [PATIENTS, c]));
    const p = plan('SELECT * FROM patients', fields);
    expect(p.columns.map((c) => [c.name, c.action, c.strategy ?? '', c.reason ?? ''])).toEqual([
      ['id', 'pass', '', ''],
      ['mrn', 'mask', 'tokenize', 'rule'],
      ['ssn', 'mask', 'partial', 'rule'],
      ['full_name', 'mask', 'redact', 'rule'],
      ['date_of_birth', 'mask', 'year_only', 'rule'],
      ['email', 'detect', '', ''],
      ['notes', 'detect', '', ''],
    ]);
    const r = apply(p, ROW);
    expect(r.values[0]).toBe('7');
    expect(r.values[1]).toMatch(/^tok_[0-9a-f]{16}$/);
    expect(r.values.slice(2)).toEqual(['***-**-6789', '***', '1985-01-01', '<email>', 'chart <mrn>, ssn ***-**-1120']);
  });

  it('redacts expressions over masked columns fully, whatever the expression', () => {
    const cases: [string, FieldDescription[]][] = [
      ["SELECT ssn || '' AS s FROM patients", [field('s')]],
      ['SELECT upper(full_name) FROM patients', [field('upper')]],
      ["SELECT encode(convert_to(ssn, 'UTF8'), 'base64') FROM patients", [field('encode')]],
      ['SELECT reverse(ssn) FROM patients', [field('reverse')]],
      ['SELECT row_to_json(p) FROM patients p', [field('row_to_json', undefined, OID.json)]],
      ['SELECT array_agg(ssn) FROM patients', [field('array_agg', undefined, OID.textArray)]],
      ['SELECT length(ssn) FROM patients', [field('length', undefined, OID.int4)]],
      ['SELECT shout FROM v_patients', [field('shout', [V_PATIENTS, 'shout'])]],
    ];
    for (const [sql, fields] of cases) {
      const p = plan(sql, fields);
      expect(p.columns[0]?.action, sql).toBe('mask');
      expect(p.columns[0]?.strategy, sql).toBe('redact');
      expect(p.columns[0]?.reason, sql).toBe('derived');
      const typeOid = fields[0]?.typeOid;
      const r = apply(p, ['whatever raw 123-45-6789']);
      expect(r.values[0], sql).toBe(typeOid === OID.json ? '"***"' : typeOid === OID.text ? '***' : null);
    }
  });

  it('applies the rule through views, subqueries and UNION with a constant arm', () => {
    const viaView = plan('SELECT ssn FROM v_patients', [field('ssn', [V_PATIENTS, 'ssn'])]);
    expect(viaView.columns[0]).toMatchObject({ action: 'mask', strategy: 'partial', reason: 'rule' });
    const union = plan("SELECT ssn FROM patients UNION SELECT '000-00-0000'", [field('ssn')]);
    expect(union.columns[0]).toMatchObject({ action: 'mask', strategy: 'partial', reason: 'rule' });
    expect(apply(union, ['123-45-6789']).values).toEqual(['***-**-6789']);
  });

  it('trusts RowDescription for a plain table column without a rule, even when lineage over-approximates', () => {
    const l = lineageOf('SELECT mrn FROM patients p JOIN visits v ON true', catalog)[0];
    const p = plan('', [field('mrn', [VISITS, 'note'])], { lineage: l });
    expect(p.columns[0]?.action).toBe('detect');
  });

  it('tokenizes join keys in two tables to the same token', () => {
    const p = plan('SELECT p.mrn, v.patient_mrn FROM patients p JOIN visits v ON v.patient_mrn = p.mrn', [field('mrn', [PATIENTS, 'mrn']), field('patient_mrn', [VISITS, 'patient_mrn'])]);
    const r = apply(p, ['MRN-00012345', 'MRN-00012345']);
    expect(r.values[0]).toBe(r.values[1]);
    expect(r.values[0]).not.toContain('00012345');
  });

  it('passes everything, without detectors, for unmasked readers', () => {
    const fields = ['id', 'ssn', 'notes'].map((c) => field(c, [PATIENTS, c]));
    const p = plan('SELECT id, ssn, notes FROM patients', fields, { unmasked: true });
    expect(p.passthrough).toBe(true);
    expect(applyToDataRow(dataRow(['1', '123-45-6789', 'x@example.com']).subarray(5), p)).toBeNull();
  });

  it('fails closed without lineage, and when lineage does not match the result', () => {
    const none = plan('', [field('id', [PATIENTS, 'id']), field('x'), field('y', undefined, OID.int4)], { lineage: null });
    expect(none.columns.map((c) => [c.action, c.reason ?? ''])).toEqual([['pass', ''], ['mask', 'untraced'], ['mask', 'untraced']]);
    const wrong = lineageOf('SELECT id FROM patients', catalog)[0];
    const mismatched = plan('', [field('a'), field('b')], { lineage: wrong });
    expect(mismatched.columns.every((c) => c.action === 'mask')).toBe(true);
    const harmless = lineageOf('SELECT 1, 2', catalog)[0];
    expect(plan('', [field('a')], { lineage: harmless }).columns[0]?.action).toBe('detect');
  });

  it('redacts every traced-less column when the statement calls an opaque function', () => {
    const p = plan('SELECT my_func(id), id FROM visits', [field('my_func'), field('id', [VISITS, 'id'], OID.int4)]);
    expect(p.columns.map((c) => c.action)).toEqual(['mask', 'pass']);
    expect(p.columns[0]?.reason).toBe('untraced');
  });

  it('uses the lineage kept from DECLARE for FETCH', () => {
    const declared = lineageOf('DECLARE c CURSOR FOR SELECT upper(ssn), id FROM patients', catalog)[0]?.deferred;
    const p = plan('', [field('upper'), field('id', [PATIENTS, 'id'])], { lineage: declared });
    expect(p.columns.map((c) => c.action)).toEqual(['mask', 'pass']);
  });
});

describe('writes that would copy masked values', () => {
  const writes = (sql: string): string[] => maskedWrites(CONFIG, lineageOf(sql, catalog)[0]).map((w) => `${w.target}<-${w.from.join(',')}`);

  it('lists unmasked target columns filled from masked ones', () => {
    expect(writes('INSERT INTO visits (note) SELECT ssn FROM patients')).toEqual(['visits.note<-patients.ssn']);
    expect(writes('UPDATE visits v SET note = p.full_name || p.mrn FROM patients p WHERE p.id = v.id')).toEqual(['visits.note<-patients.full_name,patients.mrn']);
    expect(writes('CREATE TABLE copy AS SELECT * FROM patients')).toEqual(['copy.mrn<-patients.mrn', 'copy.ssn<-patients.ssn', 'copy.full_name<-patients.full_name', 'copy.date_of_birth<-patients.date_of_birth']);
    // An opaque value stored by a statement that reads a table with masked columns (the target itself here).
    expect(writes('INSERT INTO visits (note) SELECT my_func()')).toEqual(['visits.note<-visits']);
  });

  it('lets through copies into masked columns and copies of unmasked data', () => {
    expect(writes('INSERT INTO visits (patient_mrn) SELECT mrn FROM patients')).toEqual([]);
    expect(writes('UPDATE patients SET full_name = upper(full_name)')).toEqual([]);
    expect(writes('INSERT INTO visits (note) SELECT email FROM patients')).toEqual([]);
    expect(writes("INSERT INTO visits (note) VALUES ('hello')")).toEqual([]);
  });
});

describe('the DataRow path', () => {
  const fields = ['id', 'mrn', 'ssn', 'full_name', 'date_of_birth', 'email', 'notes'].map((c) => field(c, [PATIENTS, c]));
  const p = plan('SELECT * FROM patients', fields);

  it('returns null (forward as is) when nothing changes', () => {
    const harmless = plan('SELECT id, email, notes FROM patients', ['id', 'email', 'notes'].map((c) => field(c, [PATIENTS, c])));
    expect(applyToDataRow(dataRow(['1', 'no email', 'Springfield']).subarray(5), harmless)).toBeNull();
    expect(applyToDataRow(dataRow(['1', null, null]).subarray(5), harmless)).toBeNull();
  });

  it('keeps the exact bytes of every column it does not rewrite', () => {
    const odd = Buffer.from([0xff, 0x00, 0x41]);
    const r = apply(p, ['0042', 'MRN-00012345', '123-45-6789', null, '1985-03-14', Buffer.from('\u00e9t\u00e9', 'utf8'), odd]);
    expect(r.changed).toBe(true);
    expect(r.raw[0]).toEqual(Buffer.from('0042'));
    expect(r.raw[3]).toBeNull();
    expect(r.raw[5]).toEqual(Buffer.from('\u00e9t\u00e9', 'utf8'));
    expect(r.raw[6]).toEqual(odd);
  });

  it('turns rows that do not match the plan into rows of NULLs rather than forwarding them', () => {
    const short = dataRow(['1', '2']).subarray(5);
    const out = applyToDataRow(short, p) as Buffer;
    expect(decodeDataRow(out.subarray(5))).toEqual(Array(7).fill(null));
    const truncated = dataRow(ROW).subarray(5, 30);
    expect(decodeDataRow((applyToDataRow(truncated, p) as Buffer).subarray(5))).toEqual(Array(7).fill(null));
  });

  it('rewrites binary-format columns where the type allows it', () => {
    const int4 = (n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeInt32BE(n);
      return b;
    };
    const days = (Date.UTC(1985, 2, 14) - Date.UTC(2000, 0, 1)) / 86_400_000;
    const bf = [field('id', [PATIENTS, 'id'], OID.int4, 1), field('mrn', [PATIENTS, 'mrn'], OID.int4, 1), field('date_of_birth', [PATIENTS, 'date_of_birth'], OID.date, 1), field('ssn', [PATIENTS, 'ssn'], OID.text, 1), field('notes', [PATIENTS, 'notes'], OID.text, 1)];
    const bp = plan('SELECT id, mrn, date_of_birth, ssn, notes FROM patients', bf);
    expect(bp.refuse).toBeUndefined();
    const r = apply(bp, [int4(7), int4(4711), int4(days), Buffer.from('123-45-6789'), Buffer.from('x@example.com')]);
    expect(r.raw[0]).toEqual(int4(7));
    expect(r.raw[1]?.length).toBe(4);
    expect(r.raw[1]).not.toEqual(int4(4711));
    expect(r.raw[2]?.readInt32BE(0)).toBe((Date.UTC(1985, 0, 1) - Date.UTC(2000, 0, 1)) / 86_400_000);
    expect(r.values[3]).toBe('***-**-6789');
    expect(r.values[4]).toBe('<email>');
  });

  it('masks text inside binary arrays and records, and refuses binary values it cannot read', () => {
    const arr = (items: (string | null)[]): Buffer => {
      const parts = [Buffer.alloc(20)];
      parts[0]?.writeInt32BE(1, 0);
      parts[0]?.writeInt32BE(items.includes(null) ? 1 : 0, 4);
      parts[0]?.writeUInt32BE(OID.text, 8);
      parts[0]?.writeInt32BE(items.length, 12);
      parts[0]?.writeInt32BE(1, 16);
      for (const it of items) {
        const len = Buffer.alloc(4);
        len.writeInt32BE(it === null ? -1 : Buffer.byteLength(it));
        parts.push(len, Buffer.from(it ?? ''));
      }
      return Buffer.concat(parts);
    };
    const ap = plan("SELECT ARRAY['a'] AS tags", [field('tags', undefined, OID.textArray, 1)]);
    const r = apply(ap, [arr(['ok', '123-45-6789', null])]);
    expect(r.raw[0]).toEqual(arr(['ok', '***-**-6789', null]));
    const rp = plan('SELECT row(1)', [field('row', undefined, OID.record, 1)]);
    const rec = Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from([0, 0, 0, 25, 0, 0, 0, 11]), Buffer.from('123-45-6789'), Buffer.from([0, 0, 0, 23, 0, 0, 0, 4]), Buffer.from([0, 0, 0, 1])]);
    const out = apply(rp, [rec]).raw[0] as Buffer;
    expect(out.subarray(12, 23).toString()).toBe('***-**-6789');
    const up = plan("SELECT 'a' AS c", [field('c', undefined, 90_000, 1)]);
    expect(up.refuse?.message).toMatch(/binary format, which phigate cannot inspect/);
    expect(up.refuse?.message).not.toMatch(/123/);
  });
});

describe('the COPY path', () => {
  const l = lineageOf('COPY (SELECT id, ssn, full_name, notes FROM patients) TO STDOUT', catalog)[0];
  const p = planColumns(copyFields(4), l, resolve, CONFIG, { unmasked: false, tokenKey: KEY });

  it('masks text-format rows and keeps escapes, tabs and NULLs right', () => {
    const line = Buffer.from('7\t123-45-6789\tAda\\tLovelace\tline1\\nline2\\\\x@example.com\\N\n');
    const out = applyToCopyLine(line, p, 'text')?.toString();
    // `\N` inside a field is an escaped N, not NULL: the email's domain runs on into it.
    expect(out).toBe('7\t***-**-6789\t***\tline1\\nline2\\\\<email>\n');
    expect(applyToCopyLine(Buffer.from('7\t\\N\t\\N\tplain\n'), p, 'text')).toBeNull();
    expect(applyToCopyLine(Buffer.from('1\t2\n'), p, 'text')?.toString()).toBe('\\N\t\\N\t\\N\t\\N\n');
    const tabbed = Buffer.from('1\t\\N\tA\\tB\tx\\ty@example.com\n');
    expect(applyToCopyLine(tabbed, p, 'text')?.toString()).toBe('1\t\\N\t***\tx\\t<email>\n');
  });

  it('masks CSV rows with quotes, delimiters, newlines and NULL vs empty string', () => {
    const line = Buffer.from('7,123-45-6789,"Lovelace, Ada","said ""hi""\nmail x@example.com"\n');
    expect(applyToCopyLine(line, p, 'csv')?.toString()).toBe('7,***-**-6789,"***","said ""hi""\nmail <email>"\n');
    expect(applyToCopyLine(Buffer.from('7,,"",""\n'), p, 'csv')?.toString()).toBe('7,,"***",""\n');
    expect(applyToCopyLine(Buffer.from('7,,,\r\n'), p, 'csv')).toBeNull();
    expect(applyToCopyLine(Buffer.from('7|123-45-6789|NUL|a;b\n'), p, 'csv', { delimiter: '|', null: 'NUL' })?.toString()).toBe('7|***-**-6789|NUL|a;b\n');
    expect(applyToCopyLine(Buffer.from('7,"unterminated\n'), p, 'csv')?.toString()).toBe(',,,\n');
    expect(applyToCopyLine(Buffer.from("7,'12\\'4',x,y\n"), p, 'csv', { quote: "'", escape: '\\' })?.toString()).toBe("7,'**\\'4',***,y\n");
  });

  it('masks COPY table TO through the catalog', () => {
    const t = lineageOf('COPY patients (ssn, id) TO STDOUT', catalog)[0];
    const tp = planColumns(copyFields(2), t, resolve, CONFIG, { unmasked: false, tokenKey: KEY });
    expect(applyToCopyLine(Buffer.from('123-45-6789\t1\n'), tp, 'text')?.toString()).toBe('***-**-6789\t1\n');
  });
});

describe('properties', () => {
  const fields = ['id', 'mrn', 'ssn', 'full_name', 'date_of_birth', 'email', 'notes'].map((c) => field(c, [PATIENTS, c]));
  const p = plan('SELECT * FROM patients', fields);
  const derived = plan("SELECT ssn || '', upper(full_name) FROM patients", [field('a'), field('b')]);
  const area = fc.integer({ min: 1, max: 899 }).filter((a) => a !== 666);
  const ssnArb = fc.tuple(area, fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 9999 })).map(([a, g, s]) => `${String(a).padStart(3, '0')}-${String(g).padStart(2, '0')}-${String(s).padStart(4, '0')}`);
  const emailArb = fc.tuple(fc.stringMatching(/^[a-z]{1,10}$/), fc.stringMatching(/^[a-z]{1,10}$/)).map(([u, d]) => `${u}@${d}.org`);
  const noise = fc.string({ maxLength: 30 }).map((s) => s.replace(/[0-9@]/g, ''));

  it('never throws on arbitrary bytes and always returns a well-formed DataRow or null', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const pl of [p, derived]) {
          const out = applyToDataRow(Buffer.from(bytes), pl);
          if (out !== null) expect(decodeDataRow(out.subarray(5))).not.toBeInstanceOf(Error);
        }
        return true;
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.array(fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }), { minLength: 7, maxLength: 7 }), (vals) => {
        const out = applyToDataRow(dataRow(vals.map((v) => (v === null ? null : Buffer.from(v)))).subarray(5), p);
        return out === null || !(decodeDataRow(out.subarray(5)) instanceof Error);
      }),
      { numRuns: 500 },
    );
  });

  it('masking rows into one output buffer gives the same bytes as masking them one by one', () => {
    const rowArb = fc.oneof(
      fc.tuple(ssnArb, emailArb, noise).map(([ssn, email, n]) => dataRow(['7', `MRN-${ssn.replace(/-/g, '')}`, ssn, n, '1985-03-14', email, n])),
      fc.array(fc.option(fc.uint8Array({ maxLength: 20 }), { nil: null }), { minLength: 7, maxLength: 7 }).map((v) => dataRow(v.map((x) => (x === null ? null : Buffer.from(x))))),
      fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.concat([Buffer.from([0x44, 0, 0, 0, b.length + 4]), b])),
    );
    fc.assert(
      fc.property(fc.array(rowArb, { maxLength: 12 }), fc.boolean(), (rows, masked) => {
        const pl = masked ? p : plan('SELECT id FROM patients', [field('id', [PATIENTS, 'id'])]);
        const chunk = Buffer.concat(rows);
        const sink = new ByteSink();
        sink.begin(chunk.length);
        let at = 0;
        for (const r of rows) {
          maskDataRowInto(chunk, at, at + r.length, pl, sink);
          at += r.length;
        }
        const out = sink.take();
        const expected = Buffer.concat(rows.map((r) => applyToDataRow(r.subarray(5), pl) ?? r));
        expect(out.toString('hex')).toBe(expected.toString('hex'));
        // Rows forwarded unchanged stay the input's bytes: nothing copied.
        if (rows.length > 0 && rows.every((r) => applyToDataRow(r.subarray(5), pl) === null)) expect(out.buffer === chunk.buffer && out.byteOffset === chunk.byteOffset).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('looks ahead past a row into bytes nobody framed yet without throwing or changing the row', () => {
    fc.assert(
      fc.property(ssnArb, fc.uint8Array({ maxLength: 120 }), (ssn, garbage) => {
        const row = dataRow(['7', `MRN-${ssn.replace(/-/g, '')}`, ssn, 'n', '1985-03-14', 'e', 'x']);
        // what follows may even look like a DataRow with any lengths
        const tail = garbage.length > 0 && garbage[0]! % 2 === 0 ? Buffer.concat([Buffer.from([0x44]), Buffer.from(garbage)]) : Buffer.from(garbage);
        const chunk = Buffer.concat([row, tail]);
        const sink = new ByteSink();
        sink.begin(chunk.length);
        maskDataRowInto(chunk, 0, row.length, p, sink);
        expect(sink.take().equals(applyToDataRow(row.subarray(5), p) ?? row)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('never lets a raw SSN or email through a masked plan', () => {
    fc.assert(
      fc.property(ssnArb, emailArb, noise, noise, (ssn, email, a, b) => {
        const row = ['1', `MRN-${ssn.replace(/-/g, '')}`, ssn, `${a}${ssn}${b}`, '1985-03-14', `${a} ${email} ${b}`, `${a} ${ssn} ${email}`];
        const text = Buffer.concat(apply(p, row).raw.map((v) => v ?? Buffer.alloc(0))).toString('latin1');
        const d = Buffer.concat(apply(derived, [ssn, email]).raw.map((v) => v ?? Buffer.alloc(0))).toString('latin1');
        return !text.includes(ssn) && !text.includes(email) && !text.includes(ssn.replace(/-/g, '')) && !d.includes(ssn) && !d.includes(email);
      }),
      { numRuns: 400 },
    );
  });

  it('never throws on arbitrary COPY rows', () => {
    const l = lineageOf('COPY (SELECT id, ssn, full_name, notes FROM patients) TO STDOUT', catalog)[0];
    const cp = planColumns(copyFields(4), l, resolve, CONFIG, { unmasked: false, tokenKey: KEY });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.constantFrom('text' as const, 'csv' as const), (bytes, format) => {
        applyToCopyLine(Buffer.from(bytes), cp, format);
        return true;
      }),
      { numRuns: 500 },
    );
  });
});

describe('benchmark hook', () => {
  it('runs and reports a rate', () => {
    const r = benchMaskRows(5_000);
    expect(r.rows).toBe(5_000);
    expect(r.rowsPerSecond).toBeGreaterThan(0);
    expect(r.bytesPerRowOut).toBeGreaterThan(0);
  });
});
