// Backend serializer and decoder tests: our messages parsed by pg-protocol's independent parser, round-trips through our decoders, and decoders fed garbage.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  BackendFramer,
  ProtocolError,
  authenticationOk,
  backendKeyData,
  bindComplete,
  closeComplete,
  commandComplete,
  copyBothResponse,
  copyData,
  copyDone,
  copyInResponse,
  copyOutResponse,
  dataRow,
  decodeAuthentication,
  decodeBackendKeyData,
  decodeCommandComplete,
  decodeDataRow,
  decodeErrorFieldMap,
  decodeErrorFields,
  decodeParameterDescription,
  decodeParameterStatus,
  decodeRowDescription,
  emptyQueryResponse,
  errorResponse,
  negotiateProtocolVersion,
  noData,
  noticeResponse,
  parameterDescription,
  parameterStatus,
  parseComplete,
  portalSuspended,
  readyForQuery,
  readyForQueryStatus,
  rowDescription,
  sslNo,
  type ErrorFields,
  type FieldDescription,
  type Severity,
} from '../../src/pg/index.js';
import { bytes, pgParse, splitAt, splitPoints, text, type PgProtocolMessage } from './helpers.js';

/** The body of a single serialized message. */
function bodyOf(msg: Buffer): Buffer {
  const frames = new BackendFramer().push(msg);
  if (frames instanceof ProtocolError) throw frames;
  expect(frames).toHaveLength(1);
  return (frames[0] as { body: Buffer }).body;
}

function ok<T>(v: T | ProtocolError): T {
  if (v instanceof ProtocolError) throw v;
  return v;
}

const severity = fc.constantFrom<Severity>('ERROR', 'FATAL', 'PANIC', 'WARNING', 'NOTICE', 'DEBUG', 'INFO', 'LOG');
const sqlstate = fc.stringMatching(/^[0-9A-Z]{5}$/);
const errorFields: fc.Arbitrary<ErrorFields> = fc.record(
  {
    severity,
    code: sqlstate,
    message: text(40),
    detail: text(),
    hint: text(),
    position: fc.integer({ min: 0, max: 1e9 }),
    where: text(),
    schema: text(),
    table: text(),
    column: text(),
    dataType: text(),
    constraint: text(),
    internalPosition: fc.nat(),
    internalQuery: text(),
    file: text(),
    line: fc.nat(),
    routine: text(),
  },
  { requiredKeys: ['severity', 'code', 'message'] },
);
const fieldDescription: fc.Arbitrary<FieldDescription> = fc.record({
  name: text(),
  tableOid: fc.integer({ min: 0, max: 0xffffffff }),
  columnAttr: fc.integer({ min: -32768, max: 32767 }),
  typeOid: fc.integer({ min: 0, max: 0xffffffff }),
  typeSize: fc.integer({ min: -32768, max: 32767 }),
  typeModifier: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  format: fc.constantFrom(0, 1),
});

/** Each case: our bytes, and what pg-protocol must make of them. */
type Case = { wire: Buffer; expected: Record<string, unknown> };

function pgErrorView(f: ErrorFields): Record<string, unknown> {
  return {
    message: f.message,
    severity: f.localizedSeverity ?? f.severity,
    code: f.code,
    detail: f.detail,
    hint: f.hint,
    position: f.position?.toString(),
    internalPosition: f.internalPosition?.toString(),
    internalQuery: f.internalQuery,
    where: f.where,
    schema: f.schema,
    table: f.table,
    column: f.column,
    dataType: f.dataType,
    constraint: f.constraint,
    file: f.file,
    line: f.line?.toString(),
    routine: f.routine,
  };
}

const backendCase: fc.Arbitrary<Case> = fc.oneof(
  fc.constant<Case>({ wire: authenticationOk(), expected: { name: 'authenticationOk' } }),
  fc.tuple(text(), text()).map(([n, v]): Case => ({ wire: parameterStatus(n, v), expected: { name: 'parameterStatus', parameterName: n, parameterValue: v } })),
  fc.tuple(fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.integer({ min: -0x80000000, max: 0x7fffffff })).map(([pid, key]): Case => {
    const k = Buffer.alloc(4);
    k.writeInt32BE(key);
    return { wire: backendKeyData(pid, k), expected: { name: 'backendKeyData', processID: pid, secretKey: key } };
  }),
  fc.constantFrom<'I' | 'T' | 'E'>('I', 'T', 'E').map((s): Case => ({ wire: readyForQuery(s), expected: { name: 'readyForQuery', status: s } })),
  errorFields.map((f): Case => ({ wire: errorResponse(f), expected: { name: 'error', ...pgErrorView(f) } })),
  errorFields.map((f): Case => ({ wire: noticeResponse(f), expected: { name: 'notice', ...pgErrorView(f) } })),
  text(30).map((t): Case => ({ wire: commandComplete(t), expected: { name: 'commandComplete', text: t } })),
  fc.constant<Case>({ wire: emptyQueryResponse(), expected: { name: 'emptyQuery' } }),
  fc.array(fieldDescription, { maxLength: 6 }).map(
    (fs): Case => ({
      wire: rowDescription(fs),
      expected: {
        name: 'rowDescription',
        fieldCount: fs.length,
        fields: fs.map((f) => ({
          name: f.name,
          tableID: f.tableOid,
          columnID: f.columnAttr,
          dataTypeID: f.typeOid,
          dataTypeSize: f.typeSize,
          dataTypeModifier: f.typeModifier,
          format: f.format === 0 ? 'text' : 'binary',
        })),
      },
    }),
  ),
  fc
    .array(fc.option(fc.oneof(text(20), text(20).map((s) => Buffer.from(s))), { nil: null }), { maxLength: 8 })
    .map((vs): Case => ({ wire: dataRow(vs), expected: { name: 'dataRow', fields: vs.map((v) => (v === null ? null : v.toString())) } })),
  fc.constant<Case>({ wire: parseComplete(), expected: { name: 'parseComplete' } }),
  fc.constant<Case>({ wire: bindComplete(), expected: { name: 'bindComplete' } }),
  fc.constant<Case>({ wire: closeComplete(), expected: { name: 'closeComplete' } }),
  fc.constant<Case>({ wire: noData(), expected: { name: 'noData' } }),
  fc.constant<Case>({ wire: portalSuspended(), expected: { name: 'portalSuspended' } }),
  fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 6 }).map((oids): Case => ({ wire: parameterDescription(oids), expected: { name: 'parameterDescription', dataTypeIDs: oids } })),
  fc.tuple(fc.constantFrom(0, 1), fc.array(fc.constantFrom(0, 1), { maxLength: 6 }), fc.boolean()).map(
    ([fmt, cols, isIn]): Case => ({
      wire: (isIn ? copyInResponse : copyOutResponse)(fmt, cols),
      expected: { name: isIn ? 'copyInResponse' : 'copyOutResponse', binary: fmt === 1, columnTypes: cols },
    }),
  ),
  bytes(40).map((d): Case => ({ wire: copyData(d), expected: { name: 'copyData', chunk: d } })),
  fc.constant<Case>({ wire: copyDone(), expected: { name: 'copyDone' } }),
);

function view(m: PgProtocolMessage, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = k === 'fields' && Array.isArray(m.fields) ? m.fields.map((f: unknown) => (typeof f === 'object' && f !== null ? { ...f } : f)) : m[k];
  return out;
}

describe('backend serializer against pg-protocol parse', () => {
  it('writes the gateway-side handshake and a query result as pg-protocol reads them', async () => {
    const key = Buffer.from([1, 2, 3, 4]);
    const wire = Buffer.concat([
      authenticationOk(),
      parameterStatus('server_version', '17.0'),
      backendKeyData(777, key),
      readyForQuery('I'),
      rowDescription([{ name: 'id', tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }]),
      dataRow(['1']),
      dataRow([null]),
      commandComplete('SELECT 2'),
      readyForQuery('T'),
    ]);
    const msgs = await pgParse(wire);
    expect(msgs.map((m) => m.name)).toEqual([
      'authenticationOk',
      'parameterStatus',
      'backendKeyData',
      'readyForQuery',
      'rowDescription',
      'dataRow',
      'dataRow',
      'commandComplete',
      'readyForQuery',
    ]);
    expect(msgs[2]).toMatchObject({ processID: 777, secretKey: 0x01020304 });
    expect(msgs[5]).toMatchObject({ fields: ['1'] });
    expect(msgs[8]).toMatchObject({ status: 'T' });
  });

  it('writes ErrorResponse with both S and V, in PostgreSQL field order', async () => {
    const wire = errorResponse({ severity: 'FATAL', code: '28000', message: 'access denied', detail: 'policy', hint: 'ask', position: 7 });
    expect(wire.subarray(5).toString('latin1')).toBe('SFATAL\0VFATAL\0C28000\0Maccess denied\0Dpolicy\0Hask\0P7\0\0');
    const [m] = await pgParse(wire);
    expect(m).toMatchObject({ name: 'error', severity: 'FATAL', code: '28000', message: 'access denied', detail: 'policy', hint: 'ask', position: '7' });
    const localized = errorResponse({ severity: 'ERROR', localizedSeverity: 'ERREUR', code: '42601', message: 'x' });
    expect(localized.subarray(5).toString('latin1')).toBe('SERREUR\0VERROR\0C42601\0Mx\0\0');
  });

  it('parses arbitrary sequences of our messages, in arbitrary chunks, to the same values', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(backendCase, { minLength: 1, maxLength: 10 }).chain((cases) => {
          const wire = Buffer.concat(cases.map((c) => c.wire));
          return fc.tuple(fc.constant(cases), fc.constant(wire), splitPoints(wire.length));
        }),
        async ([cases, wire, points]) => {
          const msgs = await pgParse(splitAt(wire, points));
          expect(msgs).toHaveLength(cases.length);
          cases.forEach((c, i) => {
            const m = msgs[i] as PgProtocolMessage;
            expect(view(m, Object.keys(c.expected))).toEqual(c.expected);
            expect(m.length).toBe(c.wire.length - 1);
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('writes the fixed messages and the non-framed SSL refusal', () => {
    expect(sslNo()).toEqual(Buffer.from('N'));
    expect(parseComplete().toString('hex')).toBe('3100000004');
    expect(readyForQuery('E').toString('hex')).toBe('5a0000000545');
    expect(authenticationOk().toString('hex')).toBe('520000000800000000');
  });

  it('writes CopyBothResponse and NegotiateProtocolVersion', () => {
    expect(copyBothResponse(0, [0, 0]).toString('hex')).toBe('570000000b000002' + '00000000');
    const npv = negotiateProtocolVersion(0, ['_pq_.foo']);
    expect(npv[0]).toBe(0x76);
    expect(npv.readInt32BE(1)).toBe(npv.length - 1);
    expect(npv.readInt32BE(5)).toBe(196608);
    expect(npv.readInt32BE(9)).toBe(1);
    expect(npv.toString('latin1', 13)).toBe('_pq_.foo\0');
  });

  it('keeps messages well-formed when strings contain NUL and integers are out of range', async () => {
    const wire = Buffer.concat([
      commandComplete('SEL\0ECT'),
      parameterStatus('a\0b', 'c'),
      rowDescription([{ name: 'x', tableOid: -1, columnAttr: 70000, typeOid: 2 ** 40, typeSize: -70000, typeModifier: 2 ** 33, format: 0 }]),
    ]);
    const msgs = await pgParse(wire);
    expect(msgs.map((m) => m.name)).toEqual(['commandComplete', 'parameterStatus', 'rowDescription']);
    expect(msgs[0]).toMatchObject({ text: 'SEL\uFFFDECT' });
  });
});

describe('backend decoders', () => {
  it('round-trip error and notice fields', () => {
    fc.assert(
      fc.property(errorFields, fc.boolean(), (f, notice) => {
        const wire = notice ? noticeResponse(f) : errorResponse(f);
        expect(ok(decodeErrorFields(bodyOf(wire)))).toEqual(f);
      }),
      { numRuns: 300 },
    );
  });

  it('decode the raw field map, keeping unknown field codes', () => {
    const body = Buffer.from('SERROR\0VERROR\0C42P01\0Mno table\0Zfuture\0\0', 'latin1');
    expect({ ...ok(decodeErrorFieldMap(body)) }).toEqual({ S: 'ERROR', V: 'ERROR', C: '42P01', M: 'no table', Z: 'future' });
    expect(ok(decodeErrorFields(body))).toEqual({ severity: 'ERROR', code: '42P01', message: 'no table' });
    // A server without 'V' (before 9.6) still decodes from 'S'.
    expect(ok(decodeErrorFields(Buffer.from('SWARNING\0C01000\0Mw\0\0', 'latin1')))).toEqual({ severity: 'WARNING', code: '01000', message: 'w' });
  });

  it('reject malformed error bodies with a ProtocolError', () => {
    const bad = (s: string): string => {
      const r = decodeErrorFields(Buffer.from(s, 'latin1'));
      if (!(r instanceof ProtocolError)) throw new Error(`accepted ${JSON.stringify(s)}`);
      expect(r.sqlstate).toBe('08P01');
      return r.message;
    };
    expect(bad('')).toBe('invalid ErrorResponse/NoticeResponse message: field list is not terminated');
    expect(bad('SERROR\0VERROR\0C42601\0Mx\0')).toBe('invalid ErrorResponse/NoticeResponse message: field list is not terminated');
    expect(bad('SERROR\0VERROR\0C42601\0Mx')).toBe('invalid ErrorResponse/NoticeResponse message: string is missing its NUL terminator');
    expect(bad('SERROR\0VERROR\0C42601\0Mx\0\0junk')).toBe('invalid ErrorResponse/NoticeResponse message: 4 trailing bytes');
    expect(bad('VERROR\0Mx\0\0')).toBe("invalid ErrorResponse/NoticeResponse message: missing code ('C') field");
    expect(bad('VERROR\0C42601\0\0')).toBe("invalid ErrorResponse/NoticeResponse message: missing message ('M') field");
    expect(bad('VOOPS\0C42601\0Mx\0\0')).toBe('invalid ErrorResponse/NoticeResponse message: unknown severity "OOPS"');
    expect(bad('VERROR\0C42601\0Mx\0Pabc\0\0')).toBe('invalid ErrorResponse/NoticeResponse message: field \'P\' is not a number: "abc"');
  });

  it('read the ReadyForQuery status', () => {
    expect(readyForQueryStatus(Buffer.from('I'))).toBe('I');
    expect(readyForQueryStatus(Buffer.from('T'))).toBe('T');
    expect(readyForQueryStatus(Buffer.from('E'))).toBe('E');
    expect((readyForQueryStatus(Buffer.from('X')) as ProtocolError).message).toBe('invalid ReadyForQuery message: unknown transaction status 0x58');
    expect(readyForQueryStatus(Buffer.from('II'))).toBeInstanceOf(ProtocolError);
    expect(readyForQueryStatus(Buffer.alloc(0))).toBeInstanceOf(ProtocolError);
  });

  it('round-trip RowDescription, DataRow, ParameterDescription, CommandComplete, ParameterStatus and BackendKeyData', () => {
    fc.assert(
      fc.property(
        fc.array(fieldDescription, { maxLength: 5 }),
        fc.array(fc.option(bytes(), { nil: null }), { maxLength: 6 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 5 }),
        text(),
        text(),
        fc.integer({ min: -0x80000000, max: 0x7fffffff }),
        fc.uint8Array({ minLength: 4, maxLength: 256 }),
        (fields, row, oids, a, b, pid, key) => {
          expect(ok(decodeRowDescription(bodyOf(rowDescription(fields))))).toEqual(fields);
          const decoded = ok(decodeDataRow(bodyOf(dataRow(row))));
          expect(decoded.map((v) => v?.toString('hex') ?? null)).toEqual(row.map((v) => v?.toString('hex') ?? null));
          expect(ok(decodeParameterDescription(bodyOf(parameterDescription(oids))))).toEqual(oids);
          expect(ok(decodeCommandComplete(bodyOf(commandComplete(a))))).toBe(a);
          expect(ok(decodeParameterStatus(bodyOf(parameterStatus(a, b))))).toEqual({ name: a, value: b });
          const kd = ok(decodeBackendKeyData(bodyOf(backendKeyData(pid, Buffer.from(key)))));
          expect(kd.processId).toBe(pid);
          expect(kd.secretKey.equals(Buffer.from(key))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('return DataRow values as views of the body', () => {
    const body = bodyOf(dataRow(['abc', null, Buffer.from([1, 2])]));
    const values = ok(decodeDataRow(body));
    expect(values[0]?.buffer).toBe(body.buffer);
    expect(values[1]).toBeNull();
  });

  it('decode authentication requests', () => {
    const auth = (code: number, rest: Buffer = Buffer.alloc(0)): Buffer => {
      const b = Buffer.alloc(4);
      b.writeInt32BE(code);
      return Buffer.concat([b, rest]);
    };
    expect(ok(decodeAuthentication(auth(0)))).toEqual({ kind: 'ok' });
    expect(ok(decodeAuthentication(auth(3)))).toEqual({ kind: 'cleartextPassword' });
    const md5 = ok(decodeAuthentication(auth(5, Buffer.from([9, 8, 7, 6]))));
    expect(md5.kind === 'md5Password' && [...md5.salt]).toEqual([9, 8, 7, 6]);
    expect(ok(decodeAuthentication(auth(10, Buffer.from('SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0'))))).toEqual({
      kind: 'sasl',
      mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'],
    });
    const cont = ok(decodeAuthentication(auth(11, Buffer.from('r=abc,s=xyz,i=4096'))));
    expect(cont.kind === 'saslContinue' && cont.data.toString()).toBe('r=abc,s=xyz,i=4096');
    const fin = ok(decodeAuthentication(auth(12, Buffer.from('v=xyz'))));
    expect(fin.kind === 'saslFinal' && fin.data.toString()).toBe('v=xyz');
    expect(ok(decodeAuthentication(auth(7))).kind).toBe('other');
    expect(decodeAuthentication(auth(0, Buffer.from([0])))).toBeInstanceOf(ProtocolError);
    expect(decodeAuthentication(auth(5, Buffer.from([1])))).toBeInstanceOf(ProtocolError);
    expect(decodeAuthentication(auth(10, Buffer.from('SCRAM')))).toBeInstanceOf(ProtocolError);
    expect(decodeAuthentication(auth(10, Buffer.from([0])))).toBeInstanceOf(ProtocolError);
    expect(decodeAuthentication(Buffer.from([0, 0]))).toBeInstanceOf(ProtocolError);
  });

  it('never throw on arbitrary bytes', () => {
    const decoders = [
      decodeErrorFieldMap,
      decodeErrorFields,
      readyForQueryStatus,
      decodeRowDescription,
      decodeDataRow,
      decodeCommandComplete,
      decodeParameterStatus,
      decodeBackendKeyData,
      decodeParameterDescription,
      decodeAuthentication,
    ];
    fc.assert(
      fc.property(bytes(64), (b) => {
        for (const d of decoders) d(b);
      }),
      { numRuns: 500 },
    );
  });
});
