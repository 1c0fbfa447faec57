// Classification cache keyed by statement shape: the text with literal values replaced, so that
// `... WHERE aid = 1` and `... WHERE aid = 2` cost one parse between them. Safe only where the
// classifier's answer cannot depend on a literal's value, so shapes are used for single DML
// statements only, and the row cap after LIMIT / FETCH FIRST (which decides "without WHERE") is kept
// verbatim. Everything else falls back to the exact-text cache.
import { lex } from './classify/lexer.js';
import { ClassifierCache, type Classification } from './classify/index.js';

const SHAPE_STARTS = new Set(['select', 'insert', 'update', 'delete', 'with', 'values', 'table']);
const MAX_SHAPE_TEXT = 4096;
const KEEP_NUMBER_AFTER = new Set(['limit', 'first', 'next']);

/** The statement's shape, or undefined when its classification might depend on a literal. */
export function shapeKey(sql: string): string | undefined {
  let out = '';
  let first = true;
  let prevWord = '';
  let cacheable = true;
  let afterSemicolon = false;
  lex(sql, (kind, start, end) => {
    if (!cacheable || kind === 'space' || kind === 'comment') return;
    if (afterSemicolon) {
      cacheable = false; // a second statement: keep multi-statement strings on the exact path
      return;
    }
    const text = sql.slice(start, end);
    if (first) {
      first = false;
      if (kind !== 'word' || !SHAPE_STARTS.has(text.toLowerCase())) {
        cacheable = false;
        return;
      }
    }
    if (kind === 'punct' && text === ';') {
      afterSemicolon = true;
      out += ';';
      return;
    }
    if (kind === 'string') out += " '' ";
    else if (kind === 'number') out += KEEP_NUMBER_AFTER.has(prevWord) ? ` ${text} ` : ' 0 ';
    else out += ` ${text}`;
    prevWord = kind === 'word' ? text.toLowerCase() : '';
  });
  return cacheable && !first ? out : undefined;
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

  stats(): { hits: number; misses: number; shapeHits: number; size: number; shapes: number } {
    return { ...this.exact.stats(), shapeHits: this.shapeHits, shapes: this.shapes.size };
  }
}
