// The pure analysis of one statement text, as the session needs it before forwarding: classification
// (with its fingerprint), the redacted text for evidence, and for masked readers the rewrite at the
// source and the lineage of its results. The same function runs inline and in the analysis worker
// (analysis-worker.ts), so both give the same answers; what crosses threads is this small plain
// result, never a parse tree.
//
// Why off the event loop at all: the PostgreSQL parser (WASM) costs about 0.4-0.8 us per byte and
// describing each statement about 15 us, so a 1 MiB text or a Query of thousands of statements would
// hold every other session for a second or more.
import { classificationFrom, classify, redactLiterals, type Classification, type Statement } from '../policy/classify/index.js';
import { lineageOf, type StatementLineage } from '../masking/lineage.js';
import type { SourceMasking, RewriteOutcome } from '../masking/source/index.js';
import type { CatalogSnapshot } from './catalog.js';

/** Texts from this length on are analysed off the event loop (about 5-10 ms of parsing inline). */
export const OFF_THREAD_CHARS = 8 * 1024;
/** ...and so are shorter ones of this many statements (about 15 us each to describe). */
export const OFF_THREAD_STATEMENTS = 64;

/** Is this text worth a trip to the worker (rather than a stall of the event loop)? */
export function isHeavy(sql: string): boolean {
  if (sql.length >= OFF_THREAD_CHARS) return true;
  if (sql.length < OFF_THREAD_STATEMENTS * 2) return false;
  // Semicolons bound the statement count from above; a cheap scan, only for mid-sized texts.
  let n = 0;
  for (let i = sql.indexOf(';'); i >= 0; i = sql.indexOf(';', i + 1)) if (++n >= OFF_THREAD_STATEMENTS) return true;
  return false;
}

/** A Classification as plain data: the fingerprint computed, the normalized text left out (nobody reads it here). */
export type PlainClassification =
  | { ok: true; statements: Statement[]; fingerprint: string }
  | { ok: false; error: string; position?: number };

export interface AnalysisRequest {
  sql: string;
  /** Rewrite at the source (a masked reader), with the session's options. */
  rewrite?: { allowUnknown: boolean; plainOutputs: boolean };
  /** Compute the lineage of the statement's results (results are masked or recorded masked). */
  lineage?: boolean;
}

export interface TextAnalysis {
  classification: PlainClassification;
  /** The text as evidence shows it: every literal and comment redacted. */
  redacted: string;
  rewrite?: RewriteOutcome;
  lineage?: StatementLineage[];
}

export interface AnalysisTools {
  /** Where classifications come from (a cache in the worker); classify itself when absent. */
  classifier?: { classify(sql: string): Classification };
  /** The connection's masking at the source (needed for `rewrite`). */
  masking?: SourceMasking;
  /** The catalog snapshot the rewrite and the lineage read. */
  snapshot?: CatalogSnapshot;
}

/** The pure pipeline: classify, fingerprint, redact, and (masked readers) rewrite and trace lineage. */
export function analyzeText(req: AnalysisRequest, tools: AnalysisTools): TextAnalysis {
  const { sql } = req;
  const c = tools.classifier ? tools.classifier.classify(sql) : classify(sql);
  const out: TextAnalysis = { classification: plain(c), redacted: redactLiterals(sql) };
  if (req.rewrite) {
    if (!tools.masking || !tools.snapshot) throw new Error('a rewrite at the source needs the masking and a catalog snapshot');
    out.rewrite = tools.masking.rewrite(sql, tools.snapshot, req.rewrite);
  }
  if (req.lineage && tools.snapshot) out.lineage = lineageOf(sql, tools.snapshot);
  return out;
}

function plain(c: Classification): PlainClassification {
  if (!c.ok) return c.position === undefined ? { ok: false, error: c.error } : { ok: false, error: c.error, position: c.position };
  // Statement objects are frozen plain data; the fingerprint is another parser pass, done here too.
  return { ok: true, statements: [...c.statements], fingerprint: c.fingerprint };
}

/** The Classification the gate reads, from a plain one. */
export function classificationOf(p: PlainClassification, sql: string): Classification {
  if (!p.ok) return Object.freeze(p.position === undefined ? { ok: false as const, error: p.error } : { ok: false as const, error: p.error, position: p.position });
  return classificationFrom(sql, p.statements, p.fingerprint);
}

/** Fails closed: what could not be analysed is refused like a text that cannot be classified. */
export function failedAnalysis(sql: string, why: string): TextAnalysis {
  return {
    classification: { ok: false, error: `phigate could not analyse this statement (${why})` },
    redacted: redactLiterals(sql.length > 4096 ? sql.slice(0, 4096) : sql),
    rewrite: { kind: 'refused', code: '58000', message: `phigate: could not analyse this statement for masking (${why}), so it was not run; try again` },
  };
}
