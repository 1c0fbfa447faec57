// Classification cache keyed by statement shape: the text with literal values replaced, so that
// `... WHERE aid = 1` and `... WHERE aid = 2` cost one parse between them. Safe only where the
// classifier's answer cannot depend on a literal's value, so shapes are used for single DML
// statements only, and the row cap after LIMIT / FETCH FIRST (which decides "without WHERE") is kept
// verbatim. Everything else falls back to the exact-text cache.
import { lex } from '../sql/lexer.js';
import { ClassifierCache, type Classification } from './classify/index.js';

const SHAPE_STARTS = new Set(['select', 'insert', 'update', 'delete', 'with', 'values', 'table']);
const MAX_SHAPE_TEXT = 4096;
/** From these words on, numbers are kept verbatim: they are row caps, which decide "without WHERE". */
const ROW_CAP_WORDS = new Set(['limit', 'fetch']);

/** A statement's shape key and where its tokens (spaces and comments left out) start and end. */
export interface Shape {
  /** undefined when the classification might depend on a literal (see shapeKey). */
  key: string | undefined;
  /** Token boundaries (string indexes), filled only when `key` is defined. */
  starts: number[];
  ends: number[];
}

const NO_SHAPE: Shape = { key: undefined, starts: [], ends: [] };
/** The classifier and the source rewrite ask for the same text in a row: one lexer pass serves both. */
let lastShape: { sql: string; shape: Shape } | undefined;

/** The statement's shape, or undefined when its classification might depend on a literal. */
export function shapeKey(sql: string): string | undefined {
  return shapeOf(sql).key;
}

/** shapeKey with the token boundaries it lexed (the source rewrite replays its edits on them). */
export function shapeOf(sql: string): Shape {
  if (lastShape?.sql === sql) return lastShape.shape;
  const shape = computeShape(sql);
  lastShape = { sql, shape };
  return shape;
}

function computeShape(sql: string): Shape {
  // Text the parser refuses must reach the parser: never answer it from a shape.
  if (sql.includes('\0') || !sql.isWellFormed()) return NO_SHAPE;
  // The key is the text itself with each literal replaced ('' or 0) and comments dropped: finer than
  // the tokens alone (whitespace stays), and built from a few slices rather than one per token.
  let out = '';
  let seg = 0;
  let first = true;
  let keepNumbers = false;
  let cacheable = true;
  let afterSemicolon = false;
  const starts: number[] = [];
  const ends: number[] = [];
  lex(sql, (kind, start, end) => {
    if (!cacheable || kind === 'space') return;
    if ((kind === 'string' || kind === 'qident' || kind === 'comment') && !terminated(sql, kind, start, end)) {
      cacheable = false;
      return;
    }
    if (kind === 'comment') {
      out += `${sql.slice(seg, start)} `;
      seg = end;
      return;
    }
    starts.push(start);
    ends.push(end);
    if (afterSemicolon) {
      cacheable = false; // a second statement: keep multi-statement strings on the exact path
      return;
    }
    if (first) {
      first = false;
      if (kind !== 'word' || !SHAPE_STARTS.has(sql.slice(start, end).toLowerCase())) {
        cacheable = false;
        return;
      }
    }
    if (kind === 'punct' && end - start === 1 && sql.charCodeAt(start) === 59 /* ; */) {
      afterSemicolon = true;
      return;
    }
    if (kind === 'word' && end - start === 5 && !keepNumbers && ROW_CAP_WORDS.has(sql.slice(start, end).toLowerCase())) keepNumbers = true;
    if (kind === 'string' || (kind === 'number' && !keepNumbers)) {
      out += `${sql.slice(seg, start)}${kind === 'string' ? "''" : '0'}`;
      seg = end;
    }
  });
  if (!cacheable || first) return NO_SHAPE;
  return { key: out + sql.slice(seg), starts, ends };
}

/** Did the lexer find the end of this literal, quoted identifier or comment (or run out of text)? */
function terminated(sql: string, kind: 'string' | 'qident' | 'comment', start: number, end: number): boolean {
  const t = sql.slice(start, end);
  if (kind === 'comment') {
    if (t.startsWith('--')) return true;
    return (t.match(/\/\*/g)?.length ?? 0) === (t.match(/\*\//g)?.length ?? 0) && t.endsWith('*/');
  }
  if (kind === 'qident') return closes(t.slice(t.indexOf('"')), '"', false);
  const dollar = /^\$([A-Za-z_\u0080-\uFFFF][A-Za-z0-9_\u0080-\uFFFF]*)?\$/.exec(t);
  if (dollar) return t.length >= 2 * dollar[0].length && t.endsWith(dollar[0]);
  const q = t.indexOf("'");
  return q >= 0 && closes(t.slice(q), "'", /^[eE]/.test(t));
}

/** `body` starts with the quote; true when it ends with the closing quote and nothing after it. */
function closes(body: string, quote: string, backslashEscapes: boolean): boolean {
  for (let i = 1; i < body.length; i++) {
    const c = body[i];
    if (backslashEscapes && c === '\\') {
      i++;
      continue;
    }
    if (c === quote) {
      if (body[i + 1] === quote) {
        i++;
        continue;
      }
      return i === body.length - 1;
    }
  }
  return false;
}

export class ShapeClassifierCache {
  private readonly shapes = new Map<string, Classification>();
  private shapeHits = 0;

  constructor(
    readonly exact: ClassifierCache = new ClassifierCache(5000),
    readonly maxShapes = 5000,
  ) {}

  classify(sql: string): Classification {
    // Long texts are rare and costly to lex on every call: the exact-text cache serves them.
    const key = sql.length <= MAX_SHAPE_TEXT ? shapeKey(sql) : undefined;
    if (key !== undefined) {
      const hit = this.shapes.get(key);
      if (hit) {
        this.shapeHits++;
        return hit;
      }
    }
    const c = this.exact.classify(sql);
    if (key !== undefined && c.ok) {
      this.shapes.set(key, c);
      if (this.shapes.size > this.maxShapes) this.shapes.delete(this.shapes.keys().next().value as string);
    }
    return c;
  }

  /**
   * The classification of a text seen before, without parsing; undefined when classify would have
   * to parse. Only the exact-text cache is asked: the texts this is for are too long for shapes.
   */
  cached(sql: string): Classification | undefined {
    return this.exact.peek(sql);
  }

  stats(): { hits: number; misses: number; shapeHits: number; size: number; shapes: number } {
    return { ...this.exact.stats(), shapeHits: this.shapeHits, shapes: this.shapes.size };
  }
}
