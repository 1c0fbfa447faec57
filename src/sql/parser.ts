// Owns the libpg-query WASM instance: creates it, parses with it, and replaces it after an internal fault.
//
// A native stack overflow inside the WASM parser (very deep trees) is thrown as a RangeError but
// leaves the instance's own stack pointer and allocator broken: later calls fail with "memory access
// out of bounds" or, worse, could misbehave quietly. So after any error that is not an ordinary SQL
// syntax error the instance is dropped and a fresh one created; until it is ready, callers get
// 'unavailable' and refuse the statement (fail closed). classify() screens deep statements out first
// (nestingEstimate), so this is the second line of defence, not the normal path.
//
// Why not libpg-query's exported parseSync: it wraps one module-level instance that cannot be
// replaced, and re-requiring the package to get another leaks every old instance (Node's loader
// keeps them reachable; about 10 MB each). The package's own Emscripten factory makes instances that
// are collected once dropped, so this file calls it and reads the results exactly as the package's
// parseSync/fingerprintSync/normalizeSync do (libpg-query 18.x; the tests check both give the same
// trees, fingerprints, normalized text and errors).
import { createRequire } from 'node:module';
import type { ParseResult } from '@pgsql/types';

/** The parts of the Emscripten module libpg-query builds that are used here. */
interface WasmParser {
  _malloc(size: number): number;
  _free(ptr: number): void;
  lengthBytesUTF8(s: string): number;
  stringToUTF8(s: string, ptr: number, maxBytes: number): void;
  UTF8ToString(ptr: number): string;
  getValue(ptr: number, type: 'i32'): number;
  _wasm_parse_query_raw(queryPtr: number): number;
  _wasm_free_parse_result(resultPtr: number): void;
  _wasm_fingerprint(queryPtr: number): number;
  _wasm_normalize_query(queryPtr: number): number;
  _wasm_free_string(ptr: number): void;
}
type Factory = () => Promise<WasmParser>;

const REQUIRED: Array<keyof WasmParser> = [
  '_malloc', '_free', 'lengthBytesUTF8', 'stringToUTF8', 'UTF8ToString', 'getValue',
  '_wasm_parse_query_raw', '_wasm_free_parse_result', '_wasm_fingerprint', '_wasm_normalize_query', '_wasm_free_string',
];

const require = createRequire(import.meta.url);

type State = 'uninitialized' | 'ready' | 'recovering' | 'failed';

let instance: WasmParser | undefined;
let state: State = 'uninitialized';
let pending: Promise<void> | undefined;

export class ClassifierNotInitializedError extends Error {
  constructor() {
    super('SQL classifier used before initClassifier() was awaited');
    this.name = 'ClassifierNotInitializedError';
  }
}

async function create(): Promise<WasmParser> {
  const factory = require('libpg-query/wasm/libpg-query.js') as Factory;
  const m = await factory();
  const missing = REQUIRED.filter((name) => typeof m[name] !== 'function');
  if (missing.length > 0) throw new Error(`libpg-query's WASM module lacks ${missing.join(', ')}; this version is not supported`);
  return m;
}

function startLoading(): Promise<void> {
  pending = create().then(
    (m) => {
      instance = m;
      state = 'ready';
      pending = undefined;
    },
    (err: unknown) => {
      state = 'failed';
      pending = undefined;
      throw err;
    },
  );
  return pending;
}

/** Creates the WASM instance once; later calls return at once (or wait for a replacement in progress). */
export async function initParser(): Promise<void> {
  if (state === 'ready') return;
  if (pending !== undefined) return pending;
  return startLoading();
}

export function parserState(): State {
  return state;
}

/** Resolves when a replacement after a fault has finished (at once if none is in progress). */
export async function parserSettled(): Promise<void> {
  await pending?.catch(() => undefined);
}

function recover(): void {
  // No cap on replacements: a dropped instance is collected, and refusing to replace it would turn a
  // handful of hostile statements into a lasting outage.
  instance = undefined;
  state = 'recovering';
  startLoading().catch(() => undefined);
}

export type ParserOutcome<T> =
  | { ok: true; value: T }
  | { ok: false; reason: 'syntax'; message: string; position?: number }
  | { ok: false; reason: 'unavailable'; message: string };

/** An ordinary SQL error reported by the parser (the instance is fine). */
class SyntaxFailure extends Error {
  constructor(
    message: string,
    readonly position?: number,
  ) {
    super(message);
  }
}

function withString<T>(m: WasmParser, text: string, call: (ptr: number) => T): T {
  const size = m.lengthBytesUTF8(text) + 1;
  const ptr = m._malloc(size);
  if (!ptr) throw new Error('WASM allocation failed');
  try {
    m.stringToUTF8(text, ptr, size);
    return call(ptr);
  } finally {
    m._free(ptr);
  }
}

const UNAVAILABLE = 'the SQL parser is restarting after an internal fault';

function run<T>(call: (m: WasmParser) => T): ParserOutcome<T> {
  if (state === 'uninitialized') throw new ClassifierNotInitializedError();
  const m = instance;
  if (state !== 'ready' || m === undefined) {
    return { ok: false, reason: 'unavailable', message: state === 'failed' ? 'the SQL parser is unavailable' : UNAVAILABLE };
  }
  try {
    return { ok: true, value: call(m) };
  } catch (err) {
    if (err instanceof SyntaxFailure) {
      return err.position === undefined
        ? { ok: false, reason: 'syntax', message: err.message }
        : { ok: false, reason: 'syntax', message: err.message, position: err.position };
    }
    recover();
    return { ok: false, reason: 'unavailable', message: UNAVAILABLE };
  }
}

/** The JSON parse tree, as libpg-query's parseSync returns it (fields at their default value are omitted). */
export function parseTree(sql: string): ParserOutcome<ParseResult> {
  return run((m) =>
    withString(m, sql, (queryPtr) => {
      const result = m._wasm_parse_query_raw(queryPtr);
      if (!result) throw new Error('WASM parse returned no result');
      try {
        // struct PgQueryParseResult { char *parse_tree; char *stderr_buffer; PgQueryError *error; }
        const tree = m.getValue(result, 'i32');
        const error = m.getValue(result + 8, 'i32');
        if (error) {
          // struct PgQueryError { char *message; char *funcname; char *filename; int lineno; int cursorpos; ... }
          const messagePtr = m.getValue(error, 'i32');
          const cursor = m.getValue(error + 16, 'i32');
          throw new SyntaxFailure(messagePtr ? m.UTF8ToString(messagePtr) : 'syntax error', cursor > 0 ? cursor - 1 : 0);
        }
        if (!tree) throw new Error('WASM parse returned no tree');
        return JSON.parse(m.UTF8ToString(tree)) as ParseResult;
      } finally {
        m._wasm_free_parse_result(result);
      }
    }),
  );
}

function stringResult(m: WasmParser, sql: string, fn: (queryPtr: number) => number): string {
  return withString(m, sql, (queryPtr) => {
    const ptr = fn(queryPtr);
    if (!ptr) throw new Error('WASM call returned no result');
    try {
      const text = m.UTF8ToString(ptr);
      // These entry points report failure as text rather than a struct.
      if (/^(syntax error|deparse error|ERROR|Invalid input)/.test(text)) throw new SyntaxFailure(text);
      return text;
    } finally {
      m._wasm_free_string(ptr);
    }
  });
}

export function fingerprintOf(sql: string): ParserOutcome<string> {
  return run((m) => stringResult(m, sql, (p) => m._wasm_fingerprint(p)));
}

export function normalizedOf(sql: string): ParserOutcome<string> {
  return run((m) => stringResult(m, sql, (p) => m._wasm_normalize_query(p)));
}
