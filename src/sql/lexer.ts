// A small, total PostgreSQL lexer in JS: finds literals and comments for redaction and estimates nesting before the WASM parser sees a statement.
//
// It follows the token rules of PostgreSQL's scan.l closely enough that every byte the real scanner
// treats as part of a literal is also a literal here (the tests cross-check against libpg-query's
// scanner). It never throws: an unterminated literal, comment or quoted identifier runs to the end of
// the input, which is the conservative reading for redaction.

export type TokenKind =
  | 'string' // '...', E'...', N'...', B'...', X'...', U&'...', $tag$...$tag$
  | 'number' // 12, 1.5, .5, 1e-3, 0x1F, 1_000 (and numeric-looking junk such as 12abc)
  | 'param' // $1
  | 'word' // identifier or keyword
  | 'qident' // "quoted identifier", U&"..." (an unterminated one is reported as 'string': its text is hidden like a literal)
  | 'op' // run of operator characters
  | 'punct' // ( ) [ ] , ; : . and anything else
  | 'comment'
  | 'space';

export interface LexOptions {
  /**
   * Treat backslash as an escape inside plain '...' strings, as a server with
   * standard_conforming_strings=off does. The parser assumes on; redaction lexes both ways.
   */
  backslashEscapes?: boolean;
}

export type TokenSink = (kind: TokenKind, start: number, end: number) => void;

const OP_CHARS = new Set('~!@#^&|`?+-*/%<>=');

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 128;
}
function isIdentCont(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === 36;
}

/** Index just past a run of whitespace that contains a newline and is followed by `'` (SQL string continuation), or -1. */
function continuation(sql: string, i: number): number {
  const n = sql.length;
  let j = i;
  while (j < n && (sql.charCodeAt(j) === 32 || sql.charCodeAt(j) === 9 || sql.charCodeAt(j) === 12)) j++;
  if (j >= n || (sql.charCodeAt(j) !== 10 && sql.charCodeAt(j) !== 13)) return -1;
  // After the first newline any whitespace, and `--` comments that end in a newline, may follow.
  for (;;) {
    if (j < n && isSpace(sql.charCodeAt(j))) {
      j++;
      continue;
    }
    if (sql.startsWith('--', j)) {
      let k = j + 2;
      while (k < n && sql.charCodeAt(k) !== 10 && sql.charCodeAt(k) !== 13) k++;
      if (k >= n) return -1;
      j = k;
      continue;
    }
    break;
  }
  return j < n && sql.charCodeAt(j) === 39 ? j : -1;
}

/**
 * End of a quoted string whose opening quote is at `open`. `escapes` turns on backslash escapes (E'',
 * or plain strings under standard_conforming_strings=off); `doubling` allows '' inside (not in B''/X'').
 */
function quotedEnd(sql: string, open: number, escapes: boolean, doubling: boolean): number {
  const n = sql.length;
  let i = open + 1;
  for (;;) {
    if (i >= n) return n;
    const c = sql.charCodeAt(i);
    if (escapes && c === 92) {
      i += 2;
      continue;
    }
    if (c === 39) {
      if (doubling && sql.charCodeAt(i + 1) === 39) {
        i += 2;
        continue;
      }
      const next = continuation(sql, i + 1);
      if (next < 0) return i + 1;
      i = next + 1;
      continue;
    }
    i++;
  }
}

function blockCommentEnd(sql: string, start: number): number {
  // PostgreSQL block comments nest.
  const n = sql.length;
  let depth = 0;
  let i = start;
  while (i < n) {
    if (sql.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (sql.startsWith('*/', i)) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return n;
}

function numberEnd(sql: string, start: number): number {
  const n = sql.length;
  let i = start;
  const hex = sql.charCodeAt(start) === 48 && (sql.charCodeAt(start + 1) | 32) === 120;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isDigit(c) || isIdentStart(c)) {
      i++;
    } else if (c === 46 && sql.charCodeAt(i + 1) !== 46 && sql.charCodeAt(i - 1) !== 46) {
      i++;
    } else if ((c === 43 || c === 45) && !hex && (sql.charCodeAt(i - 1) | 32) === 101 && isDigit(sql.charCodeAt(i + 1))) {
      i++;
    } else {
      break;
    }
  }
  return i;
}

/** Calls `sink` for every token of `sql`, in order, covering the whole input. */
export function lex(sql: string, sink: TokenSink, options: LexOptions = {}): void {
  const n = sql.length;
  const plainEscapes = options.backslashEscapes === true;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    const start = i;
    if (isSpace(c)) {
      while (i < n && isSpace(sql.charCodeAt(i))) i++;
      sink('space', start, i);
      continue;
    }
    if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      while (i < n && sql.charCodeAt(i) !== 10 && sql.charCodeAt(i) !== 13) i++;
      sink('comment', start, i);
      continue;
    }
    if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      i = blockCommentEnd(sql, i);
      sink('comment', start, i);
      continue;
    }
    if (c === 39) {
      i = quotedEnd(sql, i, plainEscapes, true);
      sink('string', start, i);
      continue;
    }
    if (c === 34) {
      const close = quotedIdentEnd(sql, i);
      i = close < 0 ? n : close;
      sink(close < 0 ? 'string' : 'qident', start, i);
      continue;
    }
    if (isIdentStart(c)) {
      const lower = c | 32;
      const next = sql.charCodeAt(i + 1);
      if (next === 39 && (lower === 101 || lower === 98 || lower === 120 || lower === 110)) {
        // E'..' escapes; B'..'/X'..' have no '' doubling; N'..' is a plain string.
        const escapes = lower === 101 || (lower === 110 && plainEscapes);
        i = quotedEnd(sql, i + 1, escapes, lower === 101 || lower === 110);
        sink('string', start, i);
        continue;
      }
      if (lower === 117 && next === 38 && (sql.charCodeAt(i + 2) === 39 || sql.charCodeAt(i + 2) === 34)) {
        if (sql.charCodeAt(i + 2) === 39) {
          i = quotedEnd(sql, i + 2, false, true);
          sink('string', start, i);
        } else {
          const close = quotedIdentEnd(sql, i + 2);
          i = close < 0 ? n : close;
          sink(close < 0 ? 'string' : 'qident', start, i);
        }
        continue;
      }
      while (i < n && isIdentCont(sql.charCodeAt(i))) i++;
      sink('word', start, i);
      continue;
    }
    if (isDigit(c) || (c === 46 && isDigit(sql.charCodeAt(i + 1)))) {
      i = numberEnd(sql, i);
      sink('number', start, i);
      continue;
    }
    if (c === 36) {
      const next = sql.charCodeAt(i + 1);
      if (isDigit(next)) {
        i++;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
        sink('param', start, i);
        continue;
      }
      let j = i + 1;
      if (isIdentStart(next)) {
        j++;
        while (j < n && (isIdentStart(sql.charCodeAt(j)) || isDigit(sql.charCodeAt(j)))) j++;
      }
      if (sql.charCodeAt(j) === 36) {
        const delimiter = sql.slice(i, j + 1);
        const close = sql.indexOf(delimiter, j + 1);
        i = close < 0 ? n : close + delimiter.length;
        sink('string', start, i);
        continue;
      }
      i++;
      sink('punct', start, i);
      continue;
    }
    if (OP_CHARS.has(sql[i] ?? '')) {
      i++;
      // An operator never swallows the start of a comment.
      while (i < n && OP_CHARS.has(sql[i] ?? '') && !sql.startsWith('--', i) && !sql.startsWith('/*', i)) i++;
      sink('op', start, i);
      continue;
    }
    if (c === 58 && sql.charCodeAt(i + 1) === 58) {
      i += 2;
      sink('op', start, i);
      continue;
    }
    // A lone surrogate half stays with its partner so no token splits a code point.
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < n ? 2 : 1;
    sink('punct', start, i);
  }
}

/** Index just past the closing quote, or -1 when the identifier is never closed. */
function quotedIdentEnd(sql: string, open: number): number {
  let i = open + 1;
  for (;;) {
    const close = sql.indexOf('"', i);
    if (close < 0) return -1;
    if (sql.charCodeAt(close + 1) === 34) {
      i = close + 2;
      continue;
    }
    return close + 1;
  }
}

/**
 * Words that continue an expression chain, so long runs of them build a deep parse tree, with their
 * weight: AT (TIME ZONE / LOCAL) and COLLATE build heavier nodes and overflowed at about 60% of the
 * depth of a plain operator chain.
 */
const CHAIN_WORDS = new Map([
  ['not', 1], ['is', 1], ['isnull', 1], ['notnull', 1], ['like', 1], ['ilike', 1], ['similar', 1], ['between', 1], ['in', 1],
  ['overlaps', 1], ['union', 1], ['intersect', 1], ['except', 1], ['join', 1], ['collate', 2], ['at', 2],
]);
/** Words after which the parser starts a new flat list element, as a comma does. */
const FLAT_WORDS = new Set(['and', 'or', 'when', 'then', 'else']);

/** Weight of one bracket or CASE level in the estimate: a nested query costs several tree levels. */
const FRAME_WEIGHT = 3;

/**
 * A cheap upper estimate of the parse tree's depth, in "levels": each open bracket or CASE counts
 * FRAME_WEIGHT, each operator in an unbroken chain counts 1 (AND/OR/CASE branches and commas are flat
 * lists in PostgreSQL's tree, so they reset the chain). Used to refuse a statement before the WASM
 * parser recurses deeply enough to exhaust the native stack, which leaves the WASM instance corrupt.
 */
export function nestingEstimate(sql: string): number {
  const chains: number[] = [0];
  const isCase: boolean[] = [false];
  let frames = 0;
  let chainTotal = 0;
  let max = 0;
  lex(sql, (kind, start, end) => {
    if (kind === 'space' || kind === 'comment') return;
    const top = chains.length - 1;
    let bump = 0;
    if (kind === 'punct') {
      const ch = sql.charCodeAt(start);
      if (ch === 40 || ch === 91) {
        chains.push(0);
        isCase.push(false);
        frames++;
      } else if ((ch === 41 || ch === 93) && chains.length > 1) {
        chainTotal -= chains.pop() ?? 0;
        isCase.pop();
        frames--;
        // The bracketed thing is an operand of the enclosing chain: `1 OPERATOR(+) 1 OPERATOR(+) 1 ...`
        // nests as deeply as `1 + 1 + 1`, with every operator inside its own brackets.
        bump = 1;
      } else if (ch === 44 || ch === 59) {
        chainTotal -= chains[top] ?? 0;
        chains[top] = 0;
      }
    } else if (kind === 'op') {
      bump = 1;
    } else if (kind === 'word' && end - start <= 9) {
      const word = sql.slice(start, end).toLowerCase();
      if (word === 'case') {
        chains.push(0);
        isCase.push(true);
        frames++;
      } else if (word === 'end' && isCase[isCase.length - 1] === true) {
        chainTotal -= chains.pop() ?? 0;
        isCase.pop();
        frames--;
        bump = 1;
      } else if (FLAT_WORDS.has(word)) {
        chainTotal -= chains[top] ?? 0;
        chains[top] = 0;
      } else {
        bump = CHAIN_WORDS.get(word) ?? 0;
      }
    }
    if (bump > 0) {
      const at = chains.length - 1;
      chains[at] = (chains[at] ?? 0) + bump;
      chainTotal += bump;
    }
    const depth = frames * FRAME_WEIGHT + chainTotal;
    if (depth > max) max = depth;
  });
  return max;
}
