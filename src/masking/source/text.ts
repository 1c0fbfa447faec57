// Text helpers of the source rewrite: identifier quoting, UTF-8 byte offsets (what the parser
// reports) to string indexes, and the statement's tokens (what edits are anchored to).
import { lex, type TokenKind } from '../../sql/lexer.js';

/** Always quoted: exact whatever the case, keywords or characters of the name. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A relation name as the statement wrote it (catalog, schema, name), quoted part by part. */
export function qualifiedName(parts: readonly (string | undefined)[]): string {
  return parts.filter((p): p is string => p !== undefined).map(quoteIdent).join('.');
}

/** Maps UTF-8 byte offsets of `text` to string (UTF-16) indexes; the identity for ASCII text. */
export class Offsets {
  private readonly starts: Int32Array | undefined;

  constructor(readonly text: string) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes === text.length) return;
    // byte offset → string index, for every byte that starts a character
    const map = new Int32Array(bytes + 1).fill(-1);
    let b = 0;
    for (let i = 0; i < text.length; i++) {
      map[b] = i;
      const c = text.codePointAt(i)!;
      if (c > 0xffff) {
        b += 4;
        i++;
      } else b += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
    }
    map[b] = text.length;
    this.starts = map;
  }

  index(byteOffset: number): number {
    if (this.starts === undefined) return byteOffset;
    const i = this.starts[byteOffset];
    if (i === undefined || i < 0) throw new RangeError(`byte offset ${byteOffset} is not at a character boundary`);
    return i;
  }
}

export interface Token {
  kind: TokenKind;
  start: number;
  end: number;
}

/** The statement's tokens without spaces and comments (string indexes). */
export function tokensOf(sql: string): Token[] {
  const out: Token[] = [];
  lex(sql, (kind, start, end) => {
    if (kind !== 'space' && kind !== 'comment') out.push({ kind, start, end });
  });
  return out;
}

/** Index of the token starting exactly at `start`, or -1 (binary search: tokens are in order). */
export function tokenAt(tokens: readonly Token[], start: number): number {
  let lo = 0;
  let hi = tokens.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const t = tokens[mid]!;
    if (t.start === start) return mid;
    if (t.start < start) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

export function tokenText(sql: string, t: Token | undefined): string {
  return t === undefined ? '' : sql.slice(t.start, t.end);
}

export function isWord(sql: string, t: Token | undefined, word: string): boolean {
  return t !== undefined && t.kind === 'word' && sql.slice(t.start, t.end).toLowerCase() === word;
}

export function isPunct(sql: string, t: Token | undefined, p: string): boolean {
  return t !== undefined && (t.kind === 'punct' || t.kind === 'op') && sql.slice(t.start, t.end) === p;
}

/** Index of the ')' that closes the '(' at token index `open`, or -1. */
export function closingParen(sql: string, tokens: readonly Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'punct') continue;
    const s = sql.slice(t.start, t.end);
    if (s === '(' || s === '[') depth++;
    else if (s === ')' || s === ']') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** The end index (exclusive) of a dotted name starting at token `i`: name ('.' name)*. */
export function dottedNameEnd(sql: string, tokens: readonly Token[], i: number): number {
  let j = i;
  if (tokens[j]?.kind !== 'word' && tokens[j]?.kind !== 'qident') return -1;
  while (isPunct(sql, tokens[j + 1], '.') && (tokens[j + 2]?.kind === 'word' || tokens[j + 2]?.kind === 'qident')) j += 2;
  return j + 1;
}
