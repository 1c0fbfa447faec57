// Owns the libpg-query WASM instance: loads it, parses with it, and replaces it after an internal fault.
//
// A native stack overflow inside the WASM parser (very deep trees) is thrown as a RangeError but
// leaves the instance's own stack pointer and allocator in a broken state: later calls return
// "memory access out of bounds" or, worse, could misbehave quietly. So after any error that is not
// an ordinary SQL syntax error the instance is dropped and a fresh one is loaded from the CommonJS
// build (a new `require` gives a new instance). Until it is ready, parse() reports 'unavailable' and
// callers refuse the statement (fail closed). classify() screens deep statements out beforehand
// (see nestingEstimate), so this is the second line of defence, not the normal path.
import { createRequire } from 'node:module';
import type * as LibPgQuery from 'libpg-query';

type Lib = typeof LibPgQuery;
export type ParseTree = ReturnType<Lib['parseSync']>;

const require = createRequire(import.meta.url);
const MODULE_ID = 'libpg-query';
/** A process that keeps faulting is not worth more fresh instances (each costs a few MB until GC). */
const MAX_RELOADS = 20;

type State = 'uninitialized' | 'ready' | 'recovering' | 'failed';

let lib: Lib | undefined;
let state: State = 'uninitialized';
let reloads = 0;
let pending: Promise<void> | undefined;

export class ClassifierNotInitializedError extends Error {
  constructor() {
    super('SQL classifier used before initClassifier() was awaited');
    this.name = 'ClassifierNotInitializedError';
  }
}

function loadFresh(): Lib {
  const id = require.resolve(MODULE_ID);
  delete require.cache[id];
  return require(id) as Lib;
}

/** Loads the WASM module once; later calls return at once (or wait for a reload in progress). */
export async function initParser(): Promise<void> {
  if (state === 'ready') return;
  if (pending !== undefined) return pending;
  const candidate = lib ?? (require(MODULE_ID) as Lib);
  pending = candidate.loadModule().then(
    () => {
      lib = candidate;
      state = 'ready';
      pending = undefined;
    },
    (err: unknown) => {
      pending = undefined;
      throw err;
    },
  );
  return pending;
}

export function parserState(): State {
  return state;
}

/** Resolves when a reload after a fault has finished (at once if none is in progress). */
export async function parserSettled(): Promise<void> {
  await pending?.catch(() => undefined);
}

function recover(): void {
  lib = undefined;
  if (reloads >= MAX_RELOADS) {
    state = 'failed';
    return;
  }
  reloads++;
  state = 'recovering';
  let fresh: Lib;
  try {
    fresh = loadFresh();
  } catch {
    state = 'failed';
    return;
  }
  pending = fresh.loadModule().then(
    () => {
      lib = fresh;
      state = 'ready';
      pending = undefined;
    },
    () => {
      state = 'failed';
      pending = undefined;
    },
  );
}

export type ParserOutcome<T> =
  | { ok: true; value: T }
  | { ok: false; reason: 'syntax'; message: string; position?: number }
  | { ok: false; reason: 'unavailable'; message: string };

function isSqlError(err: unknown): err is Error & { sqlDetails?: { cursorPosition?: number } } {
  return err instanceof Error && err.name === 'SqlError';
}

const UNAVAILABLE = 'the SQL parser is restarting after an internal fault';

function run<T>(call: (l: Lib) => T): ParserOutcome<T> {
  if (state === 'uninitialized') throw new ClassifierNotInitializedError();
  if (state !== 'ready' || lib === undefined) {
    return { ok: false, reason: 'unavailable', message: state === 'failed' ? 'the SQL parser is unavailable' : UNAVAILABLE };
  }
  try {
    return { ok: true, value: call(lib) };
  } catch (err) {
    if (isSqlError(err)) {
      const position = err.sqlDetails?.cursorPosition;
      return typeof position === 'number'
        ? { ok: false, reason: 'syntax', message: err.message, position }
        : { ok: false, reason: 'syntax', message: err.message };
    }
    // fingerprint/normalize report syntax errors as plain Errors with these prefixes.
    if (err instanceof Error && !(err instanceof RangeError) && /^(syntax error|ERROR|deparse error)/.test(err.message)) {
      return { ok: false, reason: 'syntax', message: err.message };
    }
    recover();
    return { ok: false, reason: 'unavailable', message: UNAVAILABLE };
  }
}

export function parseTree(sql: string): ParserOutcome<ParseTree> {
  return run((l) => l.parseSync(sql));
}

export function fingerprintOf(sql: string): ParserOutcome<string> {
  return run((l) => l.fingerprintSync(sql));
}

export function normalizedOf(sql: string): ParserOutcome<string> {
  return run((l) => l.normalizeSync(sql));
}
