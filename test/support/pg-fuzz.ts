// fast-check arbitraries over PostgreSQL frontend traffic for the protocol fuzzer: startup-phase
// requests, simple and extended protocol, COPY, fast-path calls, garbage, and mutations of valid
// sequences (wrong lengths, truncation, flipped bytes), each case with how it is split into frames.
// Pure data: the driver (fuzz-driver.ts) sends the cases to a real gateway and checks the oracles.
import fc from 'fast-check';

/** One frontend message or piece of bytes, with a short label for logs of failing cases. */
export interface Unit {
  label: string;
  bytes: Buffer;
  /** A CancelRequest for the key of a session live when it is sent (the driver fills in the key). */
  liveCancel?: number;
}

export interface FuzzCase {
  /** A masked reader (results and statements rewritten) or an unmasked one. */
  reader: 'masked' | 'unmasked';
  units: Unit[];
  /**
   * Every unit is a whole, correctly framed message (no mutation): the probe sent after the case
   * must then be answered, or the connection closed by the gateway.
   */
  framed: boolean;
  /** Offsets in the concatenated bytes where a new WebSocket frame starts (ascending, no 0). */
  splits: number[];
}

/** Frontend messages the gateway's parser knows (their type bytes). */
const KNOWN_TYPES = new Set('QPBDESHXCFdcfp'.split('').map((c) => c.charCodeAt(0)));

export const PROTOCOL_3_0 = 196608;

export function cstr(s: string | Buffer): Buffer {
  return Buffer.concat([typeof s === 'string' ? Buffer.from(s) : s, Buffer.from([0])]);
}
export function i16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}
export function i32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0);
  return b;
}

/** A typed message: type byte, length (body + 4), body. */
export function msg(type: string | number, ...body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  const t = typeof type === 'number' ? type : type.charCodeAt(0);
  return Buffer.concat([Buffer.from([t]), i32(b.length + 4), b]);
}

/** A startup-phase packet: length (including itself), then the body. */
export function packet(...body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  return Buffer.concat([i32(b.length + 4), b]);
}

export function startupPacket(params: [string, string][], version = PROTOCOL_3_0, terminated = true): Buffer {
  const parts = [i32(version)];
  for (const [k, v] of params) parts.push(cstr(k), cstr(v));
  if (terminated) parts.push(Buffer.from([0]));
  return packet(...parts);
}

export const u = (label: string, bytes: Buffer): Unit => ({ label, bytes });
export const query = (sql: string | Buffer): Unit => u(`Query(${preview(sql)})`, msg('Q', cstr(sql)));
export const sync = (): Unit => u('Sync', msg('S'));

function preview(s: string | Buffer): string {
  const t = typeof s === 'string' ? s : s.toString('latin1');
  return JSON.stringify(t.length > 40 ? `${t.slice(0, 37)}...(${t.length})` : t);
}

/**
 * Tables the fuzzer's statements use. fz_patients has masked columns (see FUZZ_MASKING); fz_t is
 * created per session as a temporary table so that writes and COPY never lock anything another
 * fuzz session waits on.
 */
export const VALID_SQL = [
  'select 1',
  'select 1; select 2',
  'select * from fz_patients',
  'select id, ssn, mrn, full_name, email from fz_patients where id < 4',
  'select ssn::text || full_name from fz_patients',
  'select count(*), min(mrn) from fz_patients',
  'select * from fz_patients p join fz_plain q on q.id = p.id',
  'select upper(full_name) from fz_patients order by ssn',
  'select * from fz_plain',
  'select 1/0',
  'select * from no_such_table',
  'select pg_sleep(0.01)',
  'values (1, \'a\'), (2, \'b\')',
  'show all',
  'begin',
  'commit',
  'rollback',
  'begin; select * from fz_patients; commit',
  'savepoint s1',
  'rollback to savepoint s1',
  'create temp table if not exists fz_t (a int, b text)',
  "insert into fz_t values (1, 'x'), (2, null)",
  'select * from fz_t',
  'copy fz_t from stdin',
  'copy fz_t to stdout',
  'copy fz_plain to stdout',
  'copy fz_patients to stdout',
  'copy (select ssn, full_name from fz_patients) to stdout with (format csv)',
  'copy fz_patients to stdout with (format binary)',
  'prepare fzp as select * from fz_patients where id = $1',
  'execute fzp(1)',
  'deallocate all',
  'declare fzc cursor with hold for select * from fz_patients',
  'fetch 2 from fzc',
  'close fzc',
  'listen fzchan',
  "notify fzchan, 'hello'",
  "set datestyle to 'ISO, DMY'",
  "set application_name to 'fz'",
  'reset all',
  'discard all',
  "set client_encoding to 'LATIN1'",
  "set client_encoding to 'SJIS'",
  'set standard_conforming_strings to off',
  "select set_config('standard_conforming_strings', 'off', false)",
  'select $1::text',
  'select $1::int + $2::int',
  'select ssn from fz_patients where id = $1',
  '',
  ';',
  '  ;  ; select 3;',
];

/** Statements: valid ones, multi-statement texts, huge ones, garbage, with NULs. */
export const sqlText: fc.Arbitrary<string | Buffer> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...VALID_SQL) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom(...VALID_SQL.filter((s) => !s.includes('$'))), { minLength: 2, maxLength: 6 }).map((a) => a.join('; ')) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 300_000 }).map((n) => `select '${'x'.repeat(n)}'`) },
  { weight: 1, arbitrary: fc.integer({ min: 10, max: 400 }).map((n) => Array.from({ length: n }, (_, i) => `select ${i}`).join(';')) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 60 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constantFrom(...VALID_SQL).map((s) => Buffer.concat([Buffer.from(s), Buffer.from([0]), Buffer.from('drop table fz_t')])) },
  { weight: 1, arbitrary: fc.constantFrom("select E'\\x00'", "select 'a\u0000b'", 'select \'\u00e9\u4e2d\u{1f600}\'', "select '\\'", 'select $$', "select ''''") },
);

const name = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom('', '', 's1', 'p1', 'fzc', 'PHIGATE_REFUSED_000000000000000000000000') },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 12 }).map((s) => s.replace(/\0/g, '')) },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 12_000 }).map((n) => 'n'.repeat(n)) },
);

const int16 = fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: -32768, max: 32767 }));
const int32 = fc.oneof(fc.constantFrom(0, 1, -1, 2, 100), fc.integer({ min: -2147483648, max: 2147483647 }));

const paramValue: fc.Arbitrary<Buffer | null> = fc.oneof(
  fc.constant(null),
  fc.constantFrom('1', '2', 'abc', '42', 'x'.repeat(100)).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a)),
);

function values(list: (Buffer | null)[]): Buffer {
  return Buffer.concat(list.map((v) => (v === null ? i32(-1) : Buffer.concat([i32(v.length), v]))));
}

const parse = fc.record({ name, sql: sqlText, types: fc.array(fc.oneof(fc.constantFrom(0, 23, 25, 17), fc.nat()), { maxLength: 4 }) })
  .map(({ name: n, sql, types }) => u(`Parse(${preview(n)}, ${preview(sql)})`, msg('P', cstr(n), cstr(sql), i16(types.length), ...types.map(i32))));

/** A Bind whose counts agree with its lists, or (inconsistent) counts drawn independently. */
const bind = fc.record({
  portal: name, stmt: name,
  formats: fc.array(int16, { maxLength: 3 }), params: fc.array(paramValue, { maxLength: 3 }), results: fc.array(int16, { maxLength: 3 }),
  counts: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.tuple(fc.nat(70_000), fc.nat(70_000), fc.nat(70_000)) }),
}).map(({ portal, stmt, formats, params, results, counts }) => u(
  `Bind(${preview(portal)}, ${preview(stmt)}${counts ? `, counts ${counts.join('/')}` : ''})`,
  msg('B', cstr(portal), cstr(stmt), i16(counts?.[0] ?? formats.length), ...formats.map(i16),
    i16(counts?.[1] ?? params.length), values(params), i16(counts?.[2] ?? results.length), ...results.map(i16)),
));

const kind = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('S', 'P') }, { weight: 1, arbitrary: fc.constantFrom('X', '\0', 's') });
const describe = fc.tuple(kind, name).map(([k, n]) => u(`Describe(${k}, ${preview(n)})`, msg('D', Buffer.from(k, 'latin1'), cstr(n))));
const close = fc.tuple(kind, name).map(([k, n]) => u(`Close(${k}, ${preview(n)})`, msg('C', Buffer.from(k, 'latin1'), cstr(n))));
const execute = fc.tuple(name, int32).map(([p, rows]) => u(`Execute(${preview(p)}, ${rows})`, msg('E', cstr(p), i32(rows))));
const flush = fc.constant(u('Flush', msg('H')));
const terminate = fc.constant(u('Terminate', msg('X')));
const syncArb = fc.constant(sync());

const copyRow = fc.oneof(
  fc.constantFrom('1\tx\n', '2\t\\N\n', '3\tabc\n4\tdef\n', '\\.\n', 'not a row\n', '1\t2\t3\n'),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a).toString('latin1')),
);
const copyData = fc.oneof(
  copyRow.map((r) => u(`CopyData(${preview(r)})`, msg('d', Buffer.from(r, 'latin1')))),
  fc.integer({ min: 10_000, max: 200_000 }).map((n) => u(`CopyData(${n} rows)`, msg('d', Buffer.from('7\tyy\n'.repeat(n))))),
);
const copyDone = fc.constant(u('CopyDone', msg('c')));
const copyFail = fc.string({ unit: 'grapheme-ascii', maxLength: 20 }).map((s) => u('CopyFail', msg('f', cstr(s.replace(/\0/g, '')))));

const functionCall = fc.record({ oid: fc.oneof(fc.constantFrom(1598, 2, 0), fc.nat()), formats: fc.array(int16, { maxLength: 2 }), args: fc.array(paramValue, { maxLength: 2 }), result: int16 })
  .map(({ oid, formats, args, result }) => u(`FunctionCall(${oid})`, msg('F', i32(oid), i16(formats.length), ...formats.map(i16), i16(args.length), values(args), i16(result))));

const authResponse = fc.uint8Array({ maxLength: 32 }).map((a) => u('AuthResponse', msg('p', Buffer.from(a))));

const unknownType = fc.tuple(fc.integer({ min: 0, max: 255 }).filter((t) => !KNOWN_TYPES.has(t)), fc.uint8Array({ maxLength: 16 }))
  .map(([t, body]) => u(`Unknown(0x${t.toString(16)})`, msg(t, Buffer.from(body))));

/** Any one in-session message (a valid frame; its content may still be nonsense). */
export const anyMessage: fc.Arbitrary<Unit> = fc.oneof(
  { weight: 6, arbitrary: sqlText.map(query) },
  { weight: 3, arbitrary: parse },
  { weight: 3, arbitrary: bind },
  { weight: 2, arbitrary: describe },
  { weight: 3, arbitrary: execute },
  { weight: 2, arbitrary: close },
  { weight: 3, arbitrary: syncArb },
  { weight: 1, arbitrary: flush },
  { weight: 2, arbitrary: copyData },
  { weight: 1, arbitrary: copyDone },
  { weight: 1, arbitrary: copyFail },
  { weight: 1, arbitrary: functionCall },
  { weight: 1, arbitrary: authResponse },
);

/** Valid sequences that reach deep states (COPY in and out, portals, transactions), then anything. */
const scenario: fc.Arbitrary<Unit[]> = fc.oneof(
  // Simple queries.
  { weight: 3, arbitrary: fc.array(sqlText.map(query), { minLength: 1, maxLength: 6 }) },
  // A whole extended-protocol round, named or unnamed, with what follows before Sync.
  {
    weight: 4,
    arbitrary: fc.record({
      stmt: fc.constantFrom('', 's1'), portal: fc.constantFrom('', 'p1'),
      sql: fc.constantFrom('select 1', 'select * from fz_patients', 'select ssn from fz_patients where id = $1', 'select $1::text', 'select * from fz_t', 'copy fz_t to stdout'),
      param: paramValue, maxRows: fc.constantFrom(0, 1, 2), extra: fc.array(anyMessage, { maxLength: 3 }), describe: fc.boolean(), sync: fc.boolean(),
    }).map(({ stmt, portal, sql, param, maxRows, extra, describe: d, sync: s }) => {
      const n = sql.includes('$1') ? 1 : 0;
      const out = [
        u(`Parse(${preview(stmt)}, ${preview(sql)})`, msg('P', cstr(stmt), cstr(sql), i16(0))),
        u(`Bind(${preview(portal)}, ${preview(stmt)})`, msg('B', cstr(portal), cstr(stmt), i16(0), i16(n), values(n ? [param ?? Buffer.from('1')] : []), i16(0))),
      ];
      if (d) out.push(u('Describe(P)', msg('D', Buffer.from('P'), cstr(portal))));
      out.push(u(`Execute(${preview(portal)}, ${maxRows})`, msg('E', cstr(portal), i32(maxRows))));
      if (maxRows > 0) out.push(u(`Execute(${preview(portal)}, 0)`, msg('E', cstr(portal), i32(0))));
      out.push(...extra);
      if (s) out.push(sync());
      return out;
    }),
  },
  // COPY FROM STDIN (simple protocol), rows, then an end, a failure, garbage or nothing.
  {
    weight: 3,
    arbitrary: fc.record({
      rows: fc.array(copyData, { maxLength: 5 }),
      end: fc.oneof(copyDone, copyFail, anyMessage, fc.constant(undefined), unknownType),
    }).map(({ rows, end }) => [query('create temp table if not exists fz_t (a int, b text)'), query('copy fz_t from stdin'), ...rows, ...(end ? [end] : [])]),
  },
  // COPY FROM STDIN through the extended protocol.
  {
    weight: 1,
    arbitrary: fc.record({ rows: fc.array(copyData, { maxLength: 3 }), end: fc.oneof(copyDone, copyFail, syncArb, anyMessage) })
      .map(({ rows, end }) => [
        query('create temp table if not exists fz_t (a int, b text)'),
        u('Parse(copy)', msg('P', cstr(''), cstr('copy fz_t from stdin'), i16(0))),
        u('Bind', msg('B', cstr(''), cstr(''), i16(0), i16(0), i16(0))),
        u('Execute', msg('E', cstr(''), i32(0))),
        ...rows, end, sync(),
      ]),
  },
  // COPY TO STDOUT with messages sent while rows stream back.
  {
    weight: 2,
    arbitrary: fc.tuple(fc.constantFrom('copy fz_patients to stdout', 'copy fz_plain to stdout', 'copy (select * from generate_series(1, 5000)) to stdout'), fc.array(anyMessage, { maxLength: 3 }))
      .map(([sql, after]) => [query(sql), ...after]),
  },
  // A transaction with an error in it and messages after.
  {
    weight: 2,
    arbitrary: fc.array(anyMessage, { maxLength: 4 }).map((mid) => [query('begin'), query('select * from fz_patients'), ...mid, query('select 1/0'), query('select 1'), query('rollback')]),
  },
  // Random messages.
  { weight: 4, arbitrary: fc.array(anyMessage, { minLength: 1, maxLength: 10 }) },
  { weight: 1, arbitrary: terminate.map((t) => [t]) },
);

const paramName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('application_name', 'client_encoding', 'DateStyle', 'TimeZone', 'search_path', 'options', 'extra_float_digits', 'intervalstyle') },
  { weight: 1, arbitrary: fc.constantFrom('_pq_.fuzz', 'replication', '__proto__', 'constructor', 'USER', 'session_authorization', 'role', 'is_superuser') },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }).map((s) => s.replace(/\0/g, 'z')) },
);
const paramValueText = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('fz', 'UTF8', 'ISO, MDY', 'UTC', 'public', '3', 'false', 'database', 'SQL_ASCII', 'SJIS', 'LATIN1', 'nonsense', '-c statement_timeout=1') },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 20 }).map((s) => s.replace(/\0/g, 'z')) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 11_000 }).map((n) => 'v'.repeat(n)) },
);

/** Startup-phase bytes: optional SSL/GSS requests, then a StartupMessage (valid or odd), a CancelRequest or junk. */
const startup: fc.Arbitrary<{ units: Unit[]; framed: boolean }> = fc.record({
  pre: fc.array(fc.constantFrom<Unit>(
    u('SSLRequest', packet(i32(80877103))),
    u('GSSENCRequest', packet(i32(80877104))),
  ), { maxLength: 2 }),
  main: fc.oneof(
    // Plain valid startup, most often: the rest of the case runs in a session.
    { weight: 40, arbitrary: fc.array(fc.tuple(paramName, paramValueText), { maxLength: 3 }).map((extra) => {
      const seen = new Set(['user', 'database']);
      const params: [string, string][] = [['user', 'fuzz'], ['database', 'ehr']];
      for (const [k, v] of extra) if (!seen.has(k) && k !== 'replication') {
        seen.add(k);
        params.push([k, v]);
      }
      return u(`Startup(${params.map(([k]) => k).join(',')})`, startupPacket(params));
    }) },
    { weight: 1, arbitrary: fc.constantFrom(196610, 196609, 0x0003ffff, 0x00020000, 0x00040000, 0x04d2162f, 0).map((v) => u(`Startup(v${v >>> 16}.${v & 0xffff})`, startupPacket([['user', 'fuzz'], ['database', 'ehr']], v))) },
    { weight: 1, arbitrary: fc.constant(u('Startup(dup)', startupPacket([['user', 'a'], ['user', 'b']]))) },
    { weight: 1, arbitrary: fc.constant(u('Startup(unterminated)', startupPacket([['user', 'fuzz']], PROTOCOL_3_0, false))) },
    { weight: 1, arbitrary: fc.constant(u('Startup(replication)', startupPacket([['user', 'fuzz'], ['replication', 'database']]))) },
    { weight: 1, arbitrary: fc.constant(u('Startup(key only)', packet(i32(PROTOCOL_3_0), cstr('user')))) },
    { weight: 1, arbitrary: fc.constant(u('Startup(empty)', packet(i32(PROTOCOL_3_0)))) },
    { weight: 1, arbitrary: fc.constant(u('Startup(huge)', startupPacket([['user', 'fuzz'], ['options', 'o'.repeat(12_000)]]))) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: -2147483648, max: 2147483647 }), fc.uint8Array({ maxLength: 12 })).map(([pid, key]) => u('CancelRequest(random)', packet(i32(80877102), i32(pid), Buffer.from(key)))) },
    { weight: 1, arbitrary: fc.nat(1000).map((n) => ({ label: 'CancelRequest(live)', bytes: Buffer.alloc(0), liveCancel: n })) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((a) => u('Garbage', Buffer.from(a))) },
  ),
}).map(({ pre, main }) => ({ units: [...pre, main], framed: main.label !== 'Garbage' }));

/** A mutation of the concatenated bytes of a valid case; every one may break the framing. */
type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'length'; unit: number; how: 'small' | 'large' | 'huge' | 'negative'; delta: number }
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'insert'; unit: number; bytes: Uint8Array }
  | { kind: 'type'; unit: number; type: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }).map((m) => ({ ...m, at: Math.floor(m.at * 1e9) })),
  fc.record({ kind: fc.constant('length' as const), unit: fc.nat(), how: fc.constantFrom('small', 'large', 'huge', 'negative'), delta: fc.integer({ min: 1, max: 1000 }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), unit: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
  fc.record({ kind: fc.constant('type' as const), unit: fc.nat(), type: fc.integer({ min: 0, max: 255 }) }),
);

function applyMutation(units: Unit[], m: Mutation): Unit[] {
  const sized = units.filter((x) => x.bytes.length > 0);
  if (sized.length === 0) return units;
  const out: Unit[] = units.map((x) => ({ ...x, bytes: Buffer.from(x.bytes) }));
  const pick = (n: number): Unit => out.filter((x) => x.bytes.length > 0)[n % sized.length]!;
  switch (m.kind) {
    case 'truncate': {
      const total = out.reduce((s, x) => s + x.bytes.length, 0);
      let keep = m.at % Math.max(total, 1);
      const cut: Unit[] = [];
      for (const x of out) {
        if (keep <= 0) break;
        if (x.bytes.length <= keep) cut.push(x);
        else cut.push({ label: `${x.label}[truncated to ${keep}/${x.bytes.length}]`, bytes: x.bytes.subarray(0, keep) });
        keep -= x.bytes.length;
      }
      return cut;
    }
    case 'length': {
      const x = pick(m.unit);
      // Startup packets have the length first; typed messages after the type byte.
      const at = x.label.startsWith('Startup') || x.label.startsWith('SSL') || x.label.startsWith('GSS') || x.label.startsWith('Cancel') ? 0 : 1;
      if (x.bytes.length < at + 4) return out;
      const real = x.bytes.readInt32BE(at);
      const v = m.how === 'small' ? Math.max(real - m.delta, 0) : m.how === 'large' ? real + m.delta : m.how === 'huge' ? 0x7fffffff : -m.delta;
      x.bytes.writeInt32BE(v, at);
      x.label += `[length ${real}->${v}]`;
      return out;
    }
    case 'flip': {
      const x = pick(m.at);
      const at = Math.floor(m.at / sized.length) % x.bytes.length;
      x.bytes[at] = (x.bytes[at]! ^ m.xor) & 0xff;
      x.label += `[byte ${at} ^ ${m.xor}]`;
      return out;
    }
    case 'insert': {
      const i = m.unit % (out.length + 1);
      out.splice(i, 0, u('Garbage', Buffer.from(m.bytes)));
      return out;
    }
    case 'type': {
      const x = pick(m.unit);
      if (x.label.startsWith('Startup') || x.label.startsWith('SSL') || x.label.startsWith('GSS') || x.label.startsWith('Cancel')) return out;
      x.bytes[0] = m.type;
      x.label += `[type 0x${m.type.toString(16)}]`;
      return out;
    }
  }
}

/** How the case's bytes are cut into WebSocket frames. */
const chunking = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ mode: 'whole' as const, cuts: [] as number[] }) },
  { weight: 3, arbitrary: fc.constant({ mode: 'messages' as const, cuts: [] as number[] }) },
  { weight: 3, arbitrary: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 8 }).map((cuts) => ({ mode: 'random' as const, cuts })) },
  { weight: 1, arbitrary: fc.constant({ mode: 'bytes' as const, cuts: [] as number[] }) },
);

function splitsFor(units: Unit[], c: { mode: 'whole' | 'messages' | 'random' | 'bytes'; cuts: number[] }): number[] {
  const total = units.reduce((s, x) => s + x.bytes.length, 0);
  if (c.mode === 'whole' || total <= 1) return [];
  if (c.mode === 'bytes' && total <= 400) return Array.from({ length: total - 1 }, (_, i) => i + 1);
  if (c.mode === 'messages' || c.mode === 'bytes') {
    const out: number[] = [];
    let off = 0;
    for (const x of units.slice(0, -1)) {
      off += x.bytes.length;
      if (off > 0 && off < total && out.at(-1) !== off) out.push(off);
    }
    return out;
  }
  return [...new Set(c.cuts.map((f) => Math.floor(f * total)).filter((o) => o > 0 && o < total))].sort((a, b) => a - b);
}

/** One fuzz connection: who, what bytes, how framed, how split. */
export const fuzzCase: fc.Arbitrary<FuzzCase> = fc.record({
  reader: fc.constantFrom<FuzzCase['reader']>('masked', 'masked', 'unmasked'),
  startup,
  body: fc.array(scenario, { maxLength: 5 }).map((s) => s.flat()),
  // One case in four is mutated; the rest stay valid so that sessions get deep into the protocol.
  mutation: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: mutation }),
  chunking,
}).map(({ reader, startup: st, body, mutation: m, chunking: ch }) => {
  const valid = [...st.units, ...body];
  const units = m ? applyMutation(valid, m) : valid;
  return { reader, units, framed: st.framed && m === null, splits: splitsFor(units, ch) };
});

/** The bytes of a case as one buffer (live cancels count as empty). */
export function caseBytes(c: Pick<FuzzCase, 'units'>): Buffer {
  return Buffer.concat(c.units.map((x) => x.bytes));
}

/** Messages in a case as the fuzzer counts them: one per unit. */
export function messageCount(c: FuzzCase): number {
  return c.units.length;
}

/** A readable, replayable account of a case: labels and the hex bytes of each unit. */
export function describeCase(c: FuzzCase): string {
  return [
    `reader=${c.reader} framed=${c.framed} splits=[${c.splits.join(',')}]`,
    ...c.units.map((x) => `  ${x.label}: ${x.bytes.length > 512 ? `${x.bytes.subarray(0, 512).toString('hex')}... (${x.bytes.length} bytes)` : x.bytes.toString('hex')}`),
  ].join('\n');
}

/** The masking policy the fuzzer's gateway runs with: alice (engineering) is a masked reader, olivia is not. */
export const FUZZ_POLICY = `masking:
  columns:
    - { column: fz_patients.ssn, strategy: partial, keep_last: 4 }
    - { column: fz_patients.mrn, strategy: tokenize }
    - { column: fz_patients.full_name, strategy: redact }
    - { column: fz_patients.email, strategy: redact }
  detectors: [us_ssn, email]
  unmasked_groups: [privacy-officers]
default: allow
`;

const PATIENTS = Array.from({ length: 8 }, (_, i) => ({
  id: i + 1,
  mrn: `MRN-${77310000 + i * 131}`,
  name: `Quintessa${String.fromCharCode(65 + i)} Vantablack`,
  ssn: `${521 + i}-${37 + i}-${8140 + i}`,
  email: `q${i}.vantablack@fuzz.example`,
}));

/** Values a masked reader must never receive, in any byte (and the SSN without dashes). */
export const FUZZ_RAW_VALUES = PATIENTS.flatMap((p) => [p.mrn, p.name, p.ssn, p.ssn.replace(/-/g, ''), p.email]);

/** Creates the fuzzer's tables (run as a database superuser, directly). */
export const FUZZ_SETUP_SQL = `DROP TABLE IF EXISTS fz_patients, fz_plain;
CREATE TABLE fz_patients (id int PRIMARY KEY, mrn text, full_name text, ssn text, email text, city text);
CREATE TABLE fz_plain (id int PRIMARY KEY, note text);
INSERT INTO fz_patients VALUES ${PATIENTS.map((p) => `(${p.id}, '${p.mrn}', '${p.name}', '${p.ssn}', '${p.email}', 'City${p.id}')`).join(', ')};
INSERT INTO fz_plain SELECT g, 'note ' || g FROM generate_series(1, 20) g;
GRANT ALL ON fz_patients, fz_plain TO PUBLIC;`;
