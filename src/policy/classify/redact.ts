// Literal redaction for evidence: statement text with every literal and comment replaced, so no PHI reaches logs or audit records.
import { lex, type LexOptions } from '../../sql/lexer.js';

/** Placeholder for string-like literals: '...', E'...', N'...', U&'...', $$...$$, B'...', X'...'. */
export const REDACTED_STRING = "'<redacted>'";
/** Placeholder for numeric literals; not valid SQL on purpose, so it cannot be mistaken for a real value. */
export const REDACTED_NUMBER = '<n>';
export const REDACTED_BLOCK_COMMENT = '/* <redacted> */';
export const REDACTED_LINE_COMMENT = '-- <redacted>';

type RangeKind = 'string' | 'number' | 'comment';
interface Range {
  start: number;
  end: number;
  kind: RangeKind;
}

const PRIORITY: Record<RangeKind, number> = { number: 0, comment: 1, string: 2 };

function literalRanges(sql: string, options: LexOptions): Range[] {
  const ranges: Range[] = [];
  lex(
    sql,
    (kind, start, end) => {
      if (kind === 'string' || kind === 'number' || kind === 'comment') ranges.push({ start, end, kind });
    },
    options,
  );
  return ranges;
}

function merge(a: Range[], b: Range[]): Range[] {
  const all = [...a, ...b].sort((x, y) => x.start - y.start || y.end - x.end);
  const out: Range[] = [];
  for (const r of all) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start < last.end) {
      last.end = Math.max(last.end, r.end);
      if (PRIORITY[r.kind] > PRIORITY[last.kind]) last.kind = r.kind;
    } else {
      out.push({ ...r });
    }
  }
  return out;
}

function placeholder(sql: string, r: Range): string {
  if (r.kind === 'string') return REDACTED_STRING;
  if (r.kind === 'number') return REDACTED_NUMBER;
  return sql.startsWith('--', r.start) ? REDACTED_LINE_COMMENT : REDACTED_BLOCK_COMMENT;
}

/**
 * The statement with every literal replaced: strings of every flavour by `'<redacted>'`, numbers by
 * `<n>`, comments by `/* <redacted> *\/` or `-- <redacted>` (comments are free text and may carry
 * PHI). Identifiers, keywords, operators and `$1` parameters stay, so the shape is readable.
 *
 * Works on any input, parseable or not: an unterminated literal or comment is redacted to the end.
 * The server's standard_conforming_strings is not known here, so when the text contains a backslash
 * it is lexed both ways and whatever either reading treats as a literal is redacted.
 */
export function redactLiterals(sql: string): string {
  if (typeof sql !== 'string') return '';
  return replaceRanges(sql, literalSpans(sql));
}

/** The spans (JS string indices) redactLiterals replaces, sorted and non-overlapping. */
export function literalSpans(sql: string): Array<{ start: number; end: number; kind: RangeKind }> {
  const ranges = literalRanges(sql, {});
  return sql.includes('\\') ? merge(ranges, literalRanges(sql, { backslashEscapes: true })) : ranges;
}

/** Only the comments replaced: for text whose literals are already gone (the parser's normalized form keeps comments). */
export function redactComments(sql: string): string {
  return replaceRanges(
    sql,
    literalRanges(sql, {}).filter((r) => r.kind === 'comment'),
  );
}

function replaceRanges(sql: string, ranges: Range[]): string {
  if (ranges.length === 0) return sql;
  let out = '';
  let at = 0;
  for (const r of ranges) {
    out += sql.slice(at, r.start) + placeholder(sql, r);
    at = r.end;
  }
  return out + sql.slice(at);
}
