// SQL classification for policy decisions: parse with the real PostgreSQL parser (libpg-query), describe each statement, cache by exact text.
//
// Pure and sans-I/O apart from loading the WASM module once (initClassifier). Everything that cannot
// be classified with confidence comes back as { ok: false } so the caller refuses it (fail closed):
// syntax errors, NUL characters, lone surrogates, statements nested deeper than the parser can safely
// handle, and the short window after an internal parser fault while a fresh instance loads.
import { nestingEstimate } from '../../sql/lexer.js';
import { ClassifierNotInitializedError, fingerprintOf, initParser, normalizedOf, parseTree, parserState } from '../../sql/parser.js';
import { sanitizeParserMessage } from '../../sql/parser-message.js';
import { redactComments, redactLiterals } from './redact.js';
import { describe } from './describe.js';
import { list, num, obj } from '../../sql/ast.js';
import type { Classification, Statement } from './types.js';

export type { Classification, CopyInfo, PredicateColumn, RelationLink, Statement, StatementKind, TableRef } from './types.js';
export { redactLiterals } from './redact.js';
export { LIMIT_RESTRICTS_UP_TO } from './analyze.js';
export { ClassifierNotInitializedError, parserState } from '../../sql/parser.js';

/**
 * Largest nesting estimate (see nestingEstimate) accepted. Measured on Node 20 with the default stack,
 * the WASM parser first overflowed at an estimate of about 5,900 (nested scalar subqueries; operator
 * chains at about 7,400), so this leaves a margin of more than 2x for deeper call stacks; real
 * queries stay far below it. The tests classify the deepest admitted statement of two dozen shapes.
 */
export const MAX_NESTING = 2500;

/** Loads the WASM parser once. classify() throws ClassifierNotInitializedError until this has resolved. */
export async function initClassifier(): Promise<void> {
  await initParser();
}

interface Outcome {
  result: Classification;
  /** False when the refusal is transient (parser restarting), so it must not be cached. */
  cacheable: boolean;
}

function refuse(error: string, position?: number): Classification {
  return position === undefined ? { ok: false, error } : { ok: false, error, position };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    // Data properties only: reading the lazy getters here would compute them.
    for (const descriptor of Object.values(Object.getOwnPropertyDescriptors(value))) {
      if ('value' in descriptor) deepFreeze(descriptor.value);
    }
  }
  return value;
}

function success(sql: string, statements: Statement[], knownFingerprint?: string): Classification {
  // Computed on first use: each is another full pass of the WASM parser and most callers never read them.
  let fingerprint: string | undefined = knownFingerprint;
  let normalized: string | undefined;
  const text = sql.length === 0 ? ' ' : sql;
  return {
    ok: true,
    statements,
    get fingerprint(): string {
      if (fingerprint === undefined) {
        const r = fingerprintOf(text);
        fingerprint = r.ok ? r.value : '';
      }
      return fingerprint;
    },
    get normalized(): string {
      if (normalized === undefined) {
        const r = normalizedOf(text);
        normalized = r.ok ? redactComments(r.value) : redactLiterals(sql);
      }
      return normalized;
    },
  };
}

function classifyOutcome(sql: string): Outcome {
  if (parserState() === 'uninitialized') throw new ClassifierNotInitializedError();
  if (typeof sql !== 'string') return { result: refuse('query text is not a string'), cacheable: false };
  // PostgreSQL never sees text after a NUL (wire strings end there); the WASM parser would stop there too.
  if (sql.includes('\0')) return { result: refuse('query text contains a NUL character'), cacheable: true };
  if (!sql.isWellFormed()) return { result: refuse('query text is not valid Unicode'), cacheable: true };

  const depth = nestingEstimate(sql);
  if (depth > MAX_NESTING) {
    return {
      result: refuse(`statement is nested too deeply to classify safely (estimated depth ${depth}, limit ${MAX_NESTING})`),
      cacheable: true,
    };
  }
  if (sql.length === 0) return { result: success(sql, []), cacheable: true };

  const parsed = parseTree(sql);
  if (!parsed.ok) {
    if (parsed.reason === 'unavailable') return { result: refuse(parsed.message), cacheable: false };
    return { result: refuse(sanitizeParserMessage(parsed.message), parsed.position), cacheable: true };
  }

  let statements: Statement[];
  try {
    let totalBytes: number | undefined;
    statements = list(obj(parsed.value)?.stmts).map((raw) => {
      const r = obj(raw) ?? {};
      const start = num(r.stmt_location) ?? 0;
      const len = num(r.stmt_len) ?? 0;
      // stmt_len 0 means "to the end of the string".
      const end = len > 0 ? start + len : (totalBytes ??= Buffer.byteLength(sql, 'utf8'));
      return { ...describe(r.stmt), start, end };
    });
  } catch {
    // Our own walk ran out of stack on a pathological tree; no WASM state is involved here.
    return { result: refuse('statement is too complex to classify'), cacheable: true };
  }
  return { result: success(sql, statements), cacheable: true };
}

/**
 * A classification made elsewhere (the analysis worker) from its statements and fingerprint, behaving
 * as classify's own (the normalized text computed on first use). Frozen one level into each
 * statement only: deepFreeze of a thousand statements costs 10-15 ms of the event loop, and nothing
 * writes into a classification (classify's own are deeply frozen, so a write would already throw).
 */
export function classificationFrom(sql: string, statements: Statement[], fingerprint: string): Classification {
  for (const st of statements) Object.freeze(st);
  Object.freeze(statements);
  return Object.freeze(success(sql, statements, fingerprint));
}

/** Classifies every statement in `sql`. Results are deeply frozen. Throws only if initClassifier() was not awaited. */
export function classify(sql: string): Classification {
  return deepFreeze(classifyOutcome(sql).result);
}

/** The text of one statement, from its UTF-8 byte span. */
export function statementText(sql: string, statement: Pick<Statement, 'start' | 'end'>): string {
  return Buffer.from(sql, 'utf8').subarray(statement.start, statement.end).toString('utf8');
}

/**
 * LRU cache of classifications keyed by the exact query text, so a repeated statement costs a Map
 * lookup. Transient refusals (parser restarting) are not cached; texts longer than maxTextLength are
 * classified but not kept, so a few huge statements cannot crowd out the working set.
 */
export class ClassifierCache {
  private readonly entries = new Map<string, Classification>();
  private hits = 0;
  private misses = 0;

  constructor(
    readonly maxEntries = 2000,
    readonly maxTextLength = 16 * 1024,
  ) {}

  classify(sql: string): Classification {
    const cached = this.entries.get(sql);
    if (cached !== undefined) {
      this.hits++;
      this.entries.delete(sql);
      this.entries.set(sql, cached);
      return cached;
    }
    this.misses++;
    const { result, cacheable } = classifyOutcome(sql);
    deepFreeze(result);
    if (cacheable && this.maxEntries > 0 && sql.length <= this.maxTextLength) {
      this.entries.set(sql, result);
      while (this.entries.size > this.maxEntries) {
        const oldest = this.entries.keys().next();
        if (oldest.done === true) break;
        this.entries.delete(oldest.value);
      }
    }
    return result;
  }

  /** The cached classification of exactly this text, if any (no parse, no change to the LRU order). */
  peek(sql: string): Classification | undefined {
    return this.entries.get(sql);
  }

  stats(): { hits: number; misses: number; size: number } {
    return { hits: this.hits, misses: this.misses, size: this.entries.size };
  }

  clear(): void {
    this.entries.clear();
  }
}
