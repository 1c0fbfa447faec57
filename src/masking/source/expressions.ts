// SQL expressions that compute, inside PostgreSQL, exactly the masked value that output masking (strategies.ts) gives for a column, so that predicates, joins and functions only ever see masked values.
//
// The rewriter puts `maskExpression(rule, "col", type, key).sql AS col` into the subquery that stands
// for a table with masked columns. The expression's value, printed by PostgreSQL in text format, is
// byte for byte what strategies.ts makes of the raw value's text output; NULL stays NULL. Where the
// strategy gives NULL (redact of an int...), the expression is a typed NULL.
//
// Rules every expression here keeps, because a masked reader writes the rest of the statement:
// - only immutable or stable built-in functions, no subqueries or set-returning functions, so the
//   planner still pulls the subquery up (EXPLAIN of a query not touching masked columns unchanged);
// - every function, operator, type and collation schema-qualified (`pg_catalog.`,
//   `OPERATOR(pg_catalog.>=)`): a reader may put a schema of their own before pg_catalog in
//   search_path and shadow `||` or `upper()` with a function that would receive raw values. Syntax
//   the grammar maps to pg_catalog itself (CASE, IS NULL, CAST to SQL-standard type names) needs no
//   prefix; BETWEEN, IN and simple CASE look `=` up by name and are not used;
// - every literal typed, and written so that it reads the same under any standard_conforming_strings;
//   no dependence on session settings beyond what the strategy's own output depends on (DateStyle,
//   TimeZone): bytea_output, extra_float_digits, collations never change a value;
// - no expression can raise an error for any stored value: an error would end the reader's
//   statement and may quote the value (`JSON data, line 1: ...`);
// - few nodes: every statement that reads a masked table carries these expressions, and PostgreSQL's
//   parse analysis costs about a microsecond per function call, operator or typed literal.
//
// Where exact equality with output masking is impossible, the SQL value is the honest one and the
// difference is documented at the code that makes it (search for "Differs from output masking").
// Assumes a UTF-8 database (the whitespace and U+FFFD literals below) and that tokens are compared
// with output masking under client_encoding UTF8 (tokenize hashes the UTF-8 bytes of the text).
import { createHash } from 'node:crypto';
import { DEFAULT_PLACEHOLDER, type ColumnRule } from '../config.js';
import { FIRST_NORMAL_OBJECT_ID, OID, TypeKind, acceptsAnyText, typeKind } from '../pgtypes.js';
import type { SourceColumnType, SqlTokenKey } from './types.js';

/** A masked column's value as SQL. */
export interface MaskedExpression {
  /** A parenthesised value expression over the column. */
  sql: string;
  /** The SQL type of its value as format_type prints it: `text`, `character varying(12)`, `bpchar`. */
  type: string;
  /**
   * true when `type` is the column's base type with its typmod (what RowDescription reports for the
   * raw column; domains are computed on their base type); false when the masked value had to change
   * type, e.g. a token in an enum column or a placeholder longer than a varchar(n).
   */
  sameType: boolean;
}

// ---------------------------------------------------------------------------------------------
// The tokenization key

const HMAC_BLOCK = 64;

/** PostgreSQL's `escape` bytea_output of bytes: how EXPLAIN VERBOSE prints a pad under that setting. */
function byteaEscape(b: Buffer): string {
  let out = '';
  for (const c of b) {
    if (c === 0x5c) out += '\\\\';
    else if (c < 0x20 || c > 0x7e) out += `\\${c.toString(8).padStart(3, '0')}`;
    else out += String.fromCharCode(c);
  }
  return out;
}

/**
 * The HMAC pads of a tokenization key, for SQL. Keys longer than the 64-byte block are hashed first,
 * as HMAC does (and hmac.ts). `secrets` lists every form in which PostgreSQL may print a pad back
 * (the hex literal as written, upper case, and bytea_output = escape, as EXPLAIN VERBOSE would).
 */
export function sqlTokenKey(key: Buffer): SqlTokenKey {
  if (key.length < 16) throw new RangeError('the tokenization key must be at least 16 bytes');
  const k = key.length > HMAC_BLOCK ? createHash('sha256').update(key).digest() : key;
  const ipad = Buffer.alloc(HMAC_BLOCK, 0x36);
  const opad = Buffer.alloc(HMAC_BLOCK, 0x5c);
  for (let i = 0; i < k.length; i++) {
    ipad[i] = (ipad[i] as number) ^ (k[i] as number);
    opad[i] = (opad[i] as number) ^ (k[i] as number);
  }
  const ipadHex = ipad.toString('hex');
  const opadHex = opad.toString('hex');
  const secrets = [ipadHex, opadHex, ipadHex.toUpperCase(), opadHex.toUpperCase(), byteaEscape(ipad), byteaEscape(opad)];
  return { ipadHex, opadHex, secrets: [...new Set(secrets)] };
}

// ---------------------------------------------------------------------------------------------
// SQL building blocks (always parenthesised, always qualified)

/**
 * A typed text literal. One with a backslash is written as an E'' string, which reads the same
 * whatever standard_conforming_strings is (a session could turn it off; a plain '\x..' would then
 * change meaning).
 */
function lit(s: string): string {
  if (!s.includes('\\')) return `'${s.replace(/'/g, "''")}'::pg_catalog.text`;
  return `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'::pg_catalog.text`;
}

/** A typed bytea literal (hex format, as an E'' string: see lit). */
function byteaLit(b: Buffer | string): string {
  const hex = typeof b === 'string' ? b : b.toString('hex');
  return `E'\\\\x${hex}'::pg_catalog.bytea`;
}

/** A typed text literal written with E'' escapes for characters not to put raw into statement text. */
function litEscaped(chars: readonly number[]): string {
  return `E'${chars.map((c) => `\\u${c.toString(16).padStart(4, '0')}`).join('')}'::pg_catalog.text`;
}

function fn(name: string, ...args: string[]): string {
  return `pg_catalog.${name}(${args.join(', ')})`;
}

function op(a: string, o: string, b: string): string {
  return `(${a} OPERATOR(pg_catalog.${o}) ${b})`;
}

// The functions behind text || and int4 arithmetic, called directly where the types are known: an
// operator costs PostgreSQL's parse analysis more than a function call, and every statement that
// reads a masked table parses these expressions (about a microsecond per node).
const cat = (a: string, b: string): string => fn('textcat', a, b);
const int4 = (name: 'pl' | 'mi' | 'div' | 'eq' | 'and', a: string, b: string): string => fn(`int4${name}`, a, b);

function cast(x: string, type: string): string {
  return `CAST(${x} AS ${type})`;
}

function and(...xs: string[]): string {
  return `(${xs.join(' AND ')})`;
}

/** CASE with searched WHENs only (a simple CASE looks `=` up through search_path). */
function caseWhen(whens: readonly (readonly [string, string])[], otherwise?: string): string {
  const parts = whens.map(([c, v]) => `WHEN ${c} THEN ${v}`);
  return `(CASE ${parts.join(' ')}${otherwise === undefined ? '' : ` ELSE ${otherwise}`} END)`;
}

const isNull = (x: string): string => `(${x} IS NULL)`;

/**
 * Text in the "C" collation, for regex matches and substring searches only (their results carry no
 * collation): under a nondeterministic collation they raise an error, and under any other a locale
 * could change what a regex class or an equality means. Values keep the column's collation.
 */
const inC = (x: string): string => `(${x} COLLATE pg_catalog."C")`;

/** x ~ pattern (textregexeq is the function behind ~), in the "C" collation. */
const matches = (x: string, pattern: string): string => fn('textregexeq', inC(x), pattern);

/** NULL stays NULL for strategies that write a constant. */
function unlessNull(nullTest: string, value: string): string {
  return caseWhen([[nullTest, 'NULL']], value);
}

// ---------------------------------------------------------------------------------------------
// Types

/** A column's facts the expressions need, derived once from SourceColumnType. */
interface Column {
  /** The column reference, parenthesised. */
  ref: string;
  /** The column as its base type (a domain cast to its base; a RelabelType, free at run time). */
  base: string;
  kind: TypeKind;
  baseOid: number;
  /** Characters of varchar(n)/bpchar(n), else undefined. */
  length?: number;
  /** The base type as it may be written in a cast whatever the search_path, or undefined (a user type format_type left unqualified). */
  baseCast: string | undefined;
  baseSql: string;
  userDefined: boolean;
}

/** Type names format_type prints that the grammar itself resolves in pg_catalog (SystemTypeName). */
const GRAMMAR_TYPE = /^(?:bit|bit varying|boolean|character|character varying|double precision|real|smallint|integer|bigint|numeric|interval|time|timestamp)(?![\w$])/;

/** Whether a type name written by format_type carries a schema (a `.` outside double quotes). */
function isQualified(sql: string): boolean {
  return /\./.test(sql.replace(/"(?:[^"]|"")*"/g, ''));
}

/**
 * The base type for a cast, safe from search_path. Built-in types live in pg_catalog; format_type
 * prints some as SQL-standard names the grammar maps to pg_catalog, the others as their bare name.
 * A user type is safe only when format_type qualified it (the catalog loader should call format_type
 * with search_path = pg_catalog so that it always does).
 */
function castableBase(t: SourceColumnType): string | undefined {
  if (isQualified(t.baseSql) || GRAMMAR_TYPE.test(t.baseSql)) return t.baseSql;
  if (t.baseOid < FIRST_NORMAL_OBJECT_ID) return `pg_catalog.${t.baseSql}`;
  return undefined;
}

function columnOf(column: string, t: SourceColumnType): Column {
  const ref = `(${column})`;
  const baseCast = castableBase(t);
  const isDomain = t.oid !== t.baseOid;
  const c: Column = {
    ref,
    base: isDomain && baseCast !== undefined ? `(${cast(ref, baseCast)})` : ref,
    kind: typeKind(t.baseOid),
    baseOid: t.baseOid,
    baseCast,
    baseSql: t.baseSql,
    userDefined: t.baseOid >= FIRST_NORMAL_OBJECT_ID,
  };
  if ((t.baseOid === OID.varchar || t.baseOid === OID.bpchar) && t.baseTypmod >= 4) c.length = t.baseTypmod - 4;
  return c;
}

function same(c: Column, sql: string): MaskedExpression {
  return { sql: `(${sql})`, type: c.baseSql, sameType: true };
}

function changed(c: Column, sql: string, type: string): MaskedExpression {
  return { sql: `(${sql})`, type, sameType: type === c.baseSql };
}

/** NULL of the column's base type. */
function typedNull(c: Column): MaskedExpression {
  if (c.baseCast !== undefined) return same(c, cast('NULL', c.baseCast));
  // An unqualified user type cannot be named safely; a CASE that never takes its branch has the
  // column's own type, and the planner folds it to a NULL constant.
  if (c.base === c.ref) return same(c, `CASE WHEN false THEN ${c.ref} END`);
  return changed(c, cast('NULL', 'pg_catalog.text'), 'text');
}

/** Whether the column's value is NULL: `IS NULL` on a composite is true when all its fields are NULL. */
function nullTest(c: Column): string {
  return c.userDefined ? int4('eq', fn('num_nulls', c.ref), '1') : isNull(c.ref);
}

/** The value's text output as SQL text (bpchar without its trailing spaces, as tokenInput trims them). */
function textOf(c: Column): string {
  if (c.baseOid === OID.text) return c.base;
  // xml's cast to text is the stored text; its output function drops an XML declaration and some
  // leading whitespace, and output masking sees the output.
  if (c.baseOid === OID.xml) return fn('textin', fn('xml_out', c.base));
  return cast(c.ref, 'pg_catalog.text');
}

/**
 * How a text-like result is typed. `maxChars` is the longest the result can be ('same' when it has
 * the value's own length, as partial does), `exactChars` its length when always the same (a
 * bpchar(n) keeps its type only then: it would pad anything shorter, which output masking does not).
 */
function textResult(c: Column, sql: string, shape: { same?: boolean; maxChars?: number; maxBytes?: number; exactChars?: number }): MaskedExpression {
  switch (c.baseOid) {
    case OID.text:
      return same(c, sql);
    case OID.varchar:
      if (c.length === undefined) return same(c, cast(sql, 'pg_catalog.varchar'));
      if (shape.same === true || (shape.maxChars !== undefined && shape.maxChars <= c.length)) return same(c, cast(sql, c.baseCast as string));
      return changed(c, cast(sql, 'pg_catalog.varchar'), 'character varying');
    case OID.bpchar:
      if (c.length === undefined) return same(c, cast(sql, 'pg_catalog.bpchar'));
      if (shape.same === true || shape.exactChars === c.length) return same(c, cast(sql, c.baseCast as string));
      return changed(c, cast(sql, 'pg_catalog.bpchar'), 'bpchar');
    case OID.name:
      // name holds 63 bytes; a longer value would be cut.
      if (shape.same === true || (shape.maxBytes !== undefined && shape.maxBytes <= 63)) return same(c, cast(sql, 'pg_catalog.name'));
      return changed(c, sql, 'text');
    default:
      // "char", xml, refcursor, enums, citext, composites...: a placeholder or token is not a value
      // of the type (or would go through a user type's input function): text.
      return changed(c, sql, 'text');
  }
}

// ---------------------------------------------------------------------------------------------
// redact

function xmlEscapeJs(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function xmlEscapeSql(x: string): string {
  return fn('replace', fn('replace', fn('replace', x, lit('&'), lit('&amp;')), lit('<'), lit('&lt;')), lit('>'), lit('&gt;'));
}

/** redactor (strategies.ts) in SQL; without a column, the constant (no NULL to keep). */
function redact(c: Column, placeholder: string, keepNull = true): MaskedExpression {
  const constant = (value: string): string => (keepNull ? unlessNull(nullTest(c), value) : value);
  if (acceptsAnyText(c.kind)) {
    const text = c.kind === TypeKind.Xml ? xmlEscapeJs(placeholder) : placeholder;
    const chars = Array.from(text).length;
    return textResult(c, constant(lit(text)), { maxChars: chars, exactChars: chars, maxBytes: Buffer.byteLength(text) });
  }
  if (c.kind === TypeKind.Json || c.kind === TypeKind.Jsonb) {
    const type = c.kind === TypeKind.Json ? 'pg_catalog.json' : 'pg_catalog.jsonb';
    return same(c, constant(cast(lit(JSON.stringify(placeholder)), type)));
  }
  if (c.kind === TypeKind.Bytea) {
    return same(c, constant(byteaLit(Buffer.from(placeholder, 'utf8'))));
  }
  return typedNull(c);
}

/**
 * Full redaction (the default placeholder `***` for text-like types, `"***"` for json, NULL for
 * most others), for values derived from masked columns. With `column`, a NULL stays NULL; without,
 * the expression is the constant (or typed NULL) and reads no column.
 */
export function redactExpression(type: SourceColumnType, column?: string): MaskedExpression {
  if (column !== undefined) return redact(columnOf(column, type), DEFAULT_PLACEHOLDER);
  return redact(columnOf('NULL', type), DEFAULT_PLACEHOLDER, false);
}

// ---------------------------------------------------------------------------------------------
// partial

/**
 * Every character but `-` as `*`. translate() maps each character of `x` found in the second
 * argument to the one at the same place in the third: `-` comes first, so it maps to itself, and
 * every other character of `x` is in `x` itself, so it maps to a `*`. (A regexp_replace of `[^-]`
 * costs close to a microsecond per character in PostgreSQL; this is one call, quadratic in the
 * length but on short values.) `atLeast` is at least the length of `x`.
 */
function starsKeepingDashes(x: string, atLeast: string): string {
  return fn('translate', x, cat(lit('-'), x), cat(lit('-'), fn('repeat', lit('*'), atLeast)));
}

/**
 * partialText (strategies.ts) in SQL: characters are code points in PostgreSQL as in Array.from.
 * Kept: last = min(keep_last, ⌊n/2⌋), first = min(keep_first, ⌊n/2⌋ - last). A value without `-`
 * is the kept characters padded with `*` (lpad/rpad); one with `-` masks the middle with translate().
 * `s` appears several times, so it should be cheap (a column or a cast of one).
 */
function partialSql(s: string, keepFirst: number, keepLast: number): string {
  const n = fn('char_length', s);
  const half = int4('div', n, '2');
  const last = fn('int4smaller', String(keepLast), half);
  const first = keepLast === 0 ? fn('int4smaller', String(keepFirst), half) : fn('int4smaller', String(keepFirst), fn('int4larger', int4('mi', half, String(keepLast)), '0'));
  let plain: string;
  let dashed: string;
  if (keepFirst === 0 && keepLast === 0) {
    plain = fn('repeat', lit('*'), n);
    dashed = starsKeepingDashes(s, n);
  } else if (keepFirst === 0) {
    plain = fn('lpad', fn('right', s, last), n, lit('*'));
    dashed = cat(starsKeepingDashes(fn('left', s, int4('mi', n, last)), n), fn('right', s, last));
  } else if (keepLast === 0) {
    plain = fn('rpad', fn('left', s, first), n, lit('*'));
    dashed = cat(fn('left', s, first), starsKeepingDashes(fn('substr', s, int4('pl', first, '1')), n));
  } else {
    plain = cat(fn('left', s, first), fn('lpad', fn('right', s, last), int4('mi', n, first), lit('*')));
    const middle = fn('substr', s, int4('pl', first, '1'), int4('mi', int4('mi', n, first), last));
    dashed = cat(cat(fn('left', s, first), starsKeepingDashes(middle, n)), fn('right', s, last));
  }
  return caseWhen([[int4('eq', fn('strpos', inC(s), lit('-')), '0'), plain]], dashed);
}

/** JSON whitespace, which is all that can surround a valid json value. */
const JSON_WS = lit(' \t\n\r');

/**
 * A `\u0000` escape or a lone surrogate escape in json text (an odd run of backslashes before the
 * `u`). json accepts them, but extracting the string raises an error that quotes the value, so they
 * are replaced by `\ufffd` first.
 */
const JSON_UNEXTRACTABLE = '(?<!\\\\)((?:\\\\\\\\)*)(?:\\\\u0000|\\\\ud[89ab][0-9a-f]{2}(?!\\\\ud[c-f][0-9a-f]{2})|(?<!\\\\ud[89ab][0-9a-f]{2})\\\\ud[c-f][0-9a-f]{2})';

/** The string inside a json/jsonb string value, as text. */
function jsonString(c: Column, text: string): string {
  if (c.kind === TypeKind.Jsonb) return fn('jsonb_extract_path_text', c.base, `VARIADIC ${cast("'{}'", 'pg_catalog.text[]')}`);
  // Differs from output masking: a NUL or lone surrogate escape in a json (not jsonb) string reads
  // as U+FFFD, where JSON.parse keeps the character; it only shows when partial keeps it.
  // Flag i: hex digits in either case (a JSON escape's `u` is always lower case).
  const clean = cast(fn('regexp_replace', inC(text), lit(JSON_UNEXTRACTABLE), lit('\\1\\\\ufffd'), lit('gi')), 'pg_catalog.json');
  return fn('json_extract_path_text', clean, `VARIADIC ${cast("'{}'", 'pg_catalog.text[]')}`);
}

function jsonIs(c: Column, text: string, what: 'string' | 'number'): string {
  if (c.kind === TypeKind.Jsonb) return fn('texteq', inC(fn('jsonb_typeof', c.base)), lit(what));
  return matches(text, lit(what === 'string' ? '^[ \t\n\r]*"' : '^[ \t\n\r]*[-0-9]'));
}

function toJson(c: Column, text: string): string {
  return fn(c.kind === TypeKind.Jsonb ? 'to_jsonb' : 'to_json', text);
}

function partial(c: Column, keepFirst: number, keepLast: number): MaskedExpression {
  if (acceptsAnyText(c.kind)) {
    const s = textOf(c);
    let out = partialSql(s, keepFirst, keepLast);
    if (c.kind === TypeKind.Xml) out = xmlEscapeSql(out);
    // bpchar: partial of the value without its trailing spaces, then the spaces back. A bpchar(n)
    // pads itself back by the cast; an unbounded bpchar keeps the spaces it was stored with.
    if (c.baseOid === OID.bpchar && c.length === undefined) {
      out = cat(out, fn('repeat', lit(' '), int4('mi', fn('octet_length', c.base), fn('octet_length', s))));
    }
    return textResult(c, out, { same: true });
  }
  if (c.kind === TypeKind.Json || c.kind === TypeKind.Jsonb) {
    const text = cast(c.ref, 'pg_catalog.text');
    const inner = caseWhen(
      [
        [jsonIs(c, text, 'string'), partialSql(jsonString(c, text), keepFirst, keepLast)],
        [jsonIs(c, text, 'number'), partialSql(fn('btrim', text, JSON_WS), keepFirst, keepLast)],
      ],
      lit(DEFAULT_PLACEHOLDER),
    );
    return same(c, unlessNull(nullTest(c), toJson(c, inner)));
  }
  return typedNull(c);
}

// ---------------------------------------------------------------------------------------------
// tokenize

function hmacSql(bytes: string, key: SqlTokenKey): string {
  const ipad = byteaLit(key.ipadHex);
  const opad = byteaLit(key.opadHex);
  return fn('sha256', fn('byteacat', opad, fn('sha256', fn('byteacat', ipad, bytes))));
}

/** The UTF-8 bytes of a text (tokenInput hashes the bytes of the text output). */
function utf8(text: string): string {
  return fn('convert_to', text, cast("'UTF8'", 'pg_catalog.name'));
}

/** The first `bytes` bytes of a MAC as a hex literal for a bit(8 * bytes) cast. */
function macBits(mac: string, bytes: number): string {
  return cast(cat(lit('x'), fn('encode', fn('substr', mac, '1', String(bytes)), lit('hex'))), `pg_catalog.bit(${bytes * 8})`);
}

/** RFC 9562 version 8 and variant bits over the first 16 MAC bytes: byte 6 high nibble 8, byte 8 top bits 10. */
const UUID_KEEP = `x${'ff'.repeat(6)}0f${'ff'}3f${'ff'.repeat(7)}`;
const UUID_SET = `x${'00'.repeat(6)}80${'00'}80${'00'.repeat(7)}`;

function tokenize(c: Column, key: SqlTokenKey): MaskedExpression {
  if (acceptsAnyText(c.kind)) {
    const mac = hmacSql(utf8(textOf(c)), key);
    return textResult(c, textToken(mac), { maxChars: 20, exactChars: 20, maxBytes: 20 });
  }
  switch (c.kind) {
    case TypeKind.Json:
    case TypeKind.Jsonb: {
      const mac = hmacSql(utf8(cast(c.ref, 'pg_catalog.text')), key);
      return same(c, toJson(c, textToken(mac)));
    }
    case TypeKind.Int4: {
      const mac = hmacSql(utf8(cast(c.ref, 'pg_catalog.text')), key);
      // 31 bits of the MAC's first 4 bytes, 0 taken as 1; int4larger is strict, so NULL stays NULL.
      const n = int4('and', cast(macBits(mac, 4), 'pg_catalog.int4'), '2147483647');
      return same(c, fn('int4larger', n, '1'));
    }
    case TypeKind.Int8:
    case TypeKind.Numeric: {
      const mac = hmacSql(utf8(cast(c.ref, 'pg_catalog.text')), key);
      const n = fn('int8larger', fn('int8and', cast(macBits(mac, 8), 'pg_catalog.int8'), cast("'4611686018427387903'", 'pg_catalog.int8')), cast('1', 'pg_catalog.int8'));
      if (c.kind === TypeKind.Int8) return same(c, n);
      // A 19-digit token does not fit a numeric(p,s): plain numeric then.
      return changed(c, cast(n, 'pg_catalog.numeric'), 'numeric');
    }
    case TypeKind.Uuid: {
      const mac = hmacSql(utf8(cast(c.ref, 'pg_catalog.text')), key);
      const bits = fn('bitor', fn('bitand', macBits(mac, 16), cast(`'${UUID_KEEP}'`, 'pg_catalog.bit(128)')), cast(`'${UUID_SET}'`, 'pg_catalog.bit(128)'));
      // varbit_send: a 4-byte bit count, then the bits as bytes.
      return same(c, cast(fn('encode', fn('substr', fn('varbit_send', bits), '5'), lit('hex')), 'pg_catalog.uuid'));
    }
    case TypeKind.Bytea: {
      // tokenInput of bytea is its hex text output (`\x...`), whatever bytea_output is.
      return same(c, hmacSql(utf8(cat(lit('\\x'), fn('encode', c.base, lit('hex')))), key));
    }
    default:
      return typedNull(c);
  }
}

function textToken(mac: string): string {
  return cat(lit('tok_'), fn('encode', fn('substr', mac, '1', '8'), lit('hex')));
}

// ---------------------------------------------------------------------------------------------
// year_only

/** What JavaScript's trim() and \s remove: WhiteSpace and LineTerminator. */
const JS_WHITESPACE = [0x9, 0xa, 0xb, 0xc, 0xd, 0x20, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff];
/** \s inside yearOnlyText's `(.*)`, which never matches a line terminator. */
const JS_INLINE_SPACE = JS_WHITESPACE.filter((c) => c !== 0xa && c !== 0xd && c !== 0x2028 && c !== 0x2029);
const inlineSpace = `[${JS_INLINE_SPACE.map((c) => `\\u${c.toString(16).padStart(4, '0')}`).join('')}]`;

// yearOnlyText's shapes as PostgreSQL regexes ([0-9], not \d, which may match other digits there).
const TIME = '[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\\.[0-9]{1,6})?)?';
const ZONE = `(?:${inlineSpace}?(?:[+-][0-9]{2}(?::?[0-9]{2}){0,2}|Z|[A-Za-z][A-Za-z0-9/_+-]{0,40}))?`;
const REST = `(?:${TIME}${ZONE})?(?: BC)?$`;
const ISO = `^[0-9]{4,}-[0-9]{2}-[0-9]{2}${REST}`;
// No back reference for "the same separator": that would make the match backtrack.
const MDY = `^[0-9]{1,2}(?:/[0-9]{1,2}/|\\.[0-9]{1,2}\\.|-[0-9]{1,2}-)[0-9]{4,}${REST}`;
/** The shapes most dates in text columns have, each rewritten by one overlay(). */
const ISO_DATE = '^[0-9]{4}-[0-9]{2}-[0-9]{2}$';
const MDY_DATE = '^[0-9]{2}/[0-9]{2}/[0-9]{4}$';
/**
 * The digits of the time of day of a validated value: the run of [0-9:.] after the date and the
 * separator (a zone never starts with one of those, so the run ends where the zone starts).
 */
const TIME_DIGIT = '(?<=^[0-9./-]{6,}[ T][0-9:.]*)[0-9]';
/** Month and day digits of a validated M/D/YYYY value (all become 0, then each field's last 1). */
const MD_DIGIT = '(?<=^[0-9]?)[0-9](?=[0-9]?[/.-])|(?<=^[0-9]{1,2}[/.-][0-9]?)[0-9](?=[0-9]?[/.-])';

/**
 * yearOnlyText in SQL: ISO `YYYY-MM-DD[ time][zone][ BC]`, `M/D/YYYY` (also with `.` or `-`),
 * `infinity`; anything else gives `otherwise`. `s` is the value, `u` the value trimmed as
 * yearOnlyValue trims it; the two commonest shapes are tried on `s` (which trimming would not
 * change) and rewritten by position. The others by regexes, which cost several microseconds a value
 * (capture groups and lookbehinds make PostgreSQL backtrack) but keep the SQL small: every
 * statement that reads the table parses it.
 *
 * Differs from output masking: the Postgres DateStyle shape in a text ("Thu Mar 14 10:23:45 1985")
 * gives `otherwise` (the placeholder, or JSON null), where output masking rewrites it; stricter.
 */
function yearOnlyTextSql(s: string, u: string, otherwise: string): string {
  // regexp_replace compiles its pattern under the input's collation, which must not be a
  // nondeterministic one: textout/textin give the text the default collation.
  const plain = fn('textin', fn('textout', u));
  const zeroTime = (x: string): string => fn('regexp_replace', x, lit(TIME_DIGIT), lit('0'), lit('g'));
  const iso = fn('regexp_replace', zeroTime(plain), lit('^([0-9]{4,})-[0-9]{2}-[0-9]{2}'), lit('\\1-01-01'));
  const zeroMd = fn('regexp_replace', zeroTime(plain), lit(MD_DIGIT), lit('0'), lit('g'));
  const mdy = fn('regexp_replace', zeroMd, lit('^(0?)0([/.-])(0?)0'), lit('\\11\\2\\31'));
  return caseWhen(
    [
      [matches(s, lit(ISO_DATE)), fn('overlay', s, lit('01-01'), '6', '5')],
      [matches(s, lit(MDY_DATE)), fn('overlay', s, lit('01/01'), '1', '5')],
      [matches(u, lit(ISO)), iso],
      [matches(u, lit(MDY)), mdy],
      [matches(u, lit('^-?infinity$')), u],
    ],
    otherwise,
  );
}

const jsTrim = (s: string): string => fn('btrim', s, litEscaped(JS_WHITESPACE));

function between(x: string, lo: string, hi: string): string {
  return and(op(x, '>=', lo), op(x, '<=', hi));
}

function yearOnly(c: Column, placeholder: string): MaskedExpression {
  if (acceptsAnyText(c.kind)) {
    const s = textOf(c);
    // yearOnlyValue trims a bpchar's padding only (textOf did), other text as JavaScript's trim().
    const u = c.baseOid === OID.bpchar ? s : jsTrim(s);
    const out = unlessNull(isNull(s), yearOnlyTextSql(s, u, lit(placeholder)));
    // A date keeps the (trimmed) value's length, so only the placeholder may not fit the type.
    return textResult(c, out, { maxChars: Array.from(placeholder).length, maxBytes: Buffer.byteLength(placeholder) });
  }
  const x = c.base;
  switch (c.kind) {
    case TypeKind.Json:
    case TypeKind.Jsonb: {
      const text = cast(c.ref, 'pg_catalog.text');
      const jsonNull = cast(lit('null'), c.kind === TypeKind.Json ? 'pg_catalog.json' : 'pg_catalog.jsonb');
      const str = jsonString(c, text);
      const inner = toJson(c, yearOnlyTextSql(str, jsTrim(str), cast('NULL', 'pg_catalog.text')));
      return same(c, unlessNull(nullTest(c), caseWhen([[jsonIs(c, text, 'string'), `COALESCE(${inner}, ${jsonNull})`]], jsonNull)));
    }
    case TypeKind.Int2:
      return same(c, caseWhen([[between(x, '1000', '9999'), x]]));
    case TypeKind.Int4:
    case TypeKind.Int8: {
      const ymd = and(between(x, '10000000', '99999999'), between(fn('mod', op(x, '/', '100'), '100'), '1', '12'), between(fn('mod', x, '100'), '1', '31'));
      return same(c, caseWhen([[between(x, '1000', '9999'), x], [ymd, op(op(op(x, '/', '10000'), '*', '10000'), '+', '101')]]));
    }
    case TypeKind.Numeric: {
      // Only integers print as 4 or 8 digits: a scale above 0 prints a fraction (1985.0).
      const int = op(fn('scale', x), '=', '0');
      const ymd = and(int, between(x, '10000000', '99999999'), between(fn('mod', fn('div', x, '100'), '100'), '1', '12'), between(fn('mod', x, '100'), '1', '31'));
      const out = caseWhen([[and(int, between(x, '1000', '9999')), x], [ymd, op(op(fn('div', x, '10000'), '*', '10000'), '+', '101')]]);
      return same(c, c.baseCast !== undefined && c.baseSql !== 'numeric' ? cast(out, c.baseCast) : out);
    }
    case TypeKind.Date: {
      // Differs from output masking in 4714 BC only, whose 1 January is before the first date
      // PostgreSQL has (24 November 4714 BC): that date stands in for it (same year, no error).
      const year = fn('extract', lit('year'), x);
      return same(c, caseWhen(
        [
          [`(${fn('isfinite', x)} IS NOT TRUE)`, x],
          [op(year, '=', '-4714'), cast(lit('4714-11-24 BC'), 'pg_catalog.date')],
        ],
        fn('make_date', cast(year, 'pg_catalog.int4'), '1', '1'),
      ));
    }
    case TypeKind.Timestamp:
    case TypeKind.Timestamptz: {
      // Differs from output masking, which edits the printed text: (1) a value with fractional
      // seconds prints `00:00:00.0` there, `00:00:00` here (a timestamp does not print zero
      // fractions); (2) a timestamptz keeps its printed zone offset/abbreviation there, while here
      // it is 1 January 00:00 in the session's TimeZone, printed with that day's offset (they
      // differ across DST); (3) in 4714 BC, the first instant PostgreSQL has stands in for 1 January.
      const tz = c.kind === TypeKind.Timestamptz;
      const type = tz ? 'pg_catalog.timestamptz' : 'pg_catalog.timestamp';
      const out = caseWhen(
        [[op(fn('extract', lit('year'), x), '=', '-4714'), cast(lit(tz ? '4714-11-24 00:00:00+00 BC' : '4714-11-24 00:00:00 BC'), type)]],
        fn('date_trunc', lit('year'), x),
      );
      return same(c, c.baseSql.includes('(') && c.baseCast !== undefined ? cast(out, c.baseCast) : out);
    }
    default:
      return typedNull(c);
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * The expression that masks `column` (an SQL value expression: `"ssn"`, `p."ssn"`) of type `type`
 * by `rule`, as output masking would. `key` is only used by tokenize, and its pads then appear in
 * the SQL text: see SqlTokenKey.secrets.
 */
export function maskExpression(rule: ColumnRule, column: string, type: SourceColumnType, key: SqlTokenKey): MaskedExpression {
  const c = columnOf(column, type);
  switch (rule.strategy) {
    case 'null':
      return typedNull(c);
    case 'redact':
      return redact(c, rule.placeholder);
    case 'partial':
      return partial(c, rule.keepFirst, rule.keepLast);
    case 'tokenize':
      return tokenize(c, key);
    case 'year_only':
      return yearOnly(c, rule.placeholder);
  }
}
