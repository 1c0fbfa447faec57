// The errors a client gets when it asks more of the gateway than the policy's `limits` allow: a
// message, a statement text or a Query's statement count over its limit. Each names the limit and the
// policy key that raises it, with SQLSTATE 54000 (program_limit_exceeded) as PostgreSQL uses for
// its own size limits. Pure: the session decides when to ask.
import type { ErrorFields } from '../pg/index.js';
import { formatBytes, limitKey, type Limits } from '../policy/limits.js';
import { redactLiterals } from '../policy/classify/index.js';

export const PROGRAM_LIMIT_EXCEEDED = '54000';

/** A size as people read it: "900 bytes", "12.5 KiB", "2.1 MiB". */
export function humanBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const [unit, size] = n < 1024 ** 2 ? ['KiB', 1024] as const : n < 1024 ** 3 ? ['MiB', 1024 ** 2] as const : ['GiB', 1024 ** 3] as const;
  const v = n / size;
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${unit}`;
}

/** The error for a statement text over limits.statement_bytes, or undefined when it is within. */
export function statementSizeError(sql: string, limits: Pick<Limits, 'statementBytes'>): ErrorFields | undefined {
  // Each UTF-16 unit is at most 3 UTF-8 bytes: most texts are settled without counting.
  if (sql.length * 3 <= limits.statementBytes) return undefined;
  const bytes = Buffer.byteLength(sql, 'utf8');
  if (bytes <= limits.statementBytes) return undefined;
  return {
    severity: 'ERROR', code: PROGRAM_LIMIT_EXCEEDED,
    message: `phigate: statement of ${humanBytes(bytes)} exceeds ${limitKey('statementBytes')} (${formatBytes(limits.statementBytes)}), so it was not run`,
    hint: `Send it in smaller statements, or raise ${limitKey('statementBytes')} in the policy.`,
  };
}

/** The error for a Query of more statements than limits.statements_per_query allows. */
export function statementCountError(count: number, limits: Pick<Limits, 'statementsPerQuery'>): ErrorFields | undefined {
  if (count <= limits.statementsPerQuery) return undefined;
  return {
    severity: 'ERROR', code: PROGRAM_LIMIT_EXCEEDED,
    message: `phigate: query of ${count} statements exceeds ${limitKey('statementsPerQuery')} (${limits.statementsPerQuery}), so none of them was run`,
    hint: `Send the statements in several queries, or raise ${limitKey('statementsPerQuery')} in the policy.`,
  };
}

/** The FATAL error for a message whose length field is over limits.message_bytes. */
export function messageSizeError(length: number, limit: number): ErrorFields {
  return {
    severity: 'FATAL', code: PROGRAM_LIMIT_EXCEEDED,
    message: `phigate: message of ${humanBytes(length)} exceeds ${limitKey('messageBytes')} (${formatBytes(limit)}); the connection is closed`,
    hint: `Raise ${limitKey('messageBytes')} in the policy to accept larger messages.`,
  };
}

/** How much of an over-size statement the evidence keeps (redacted), so recording it costs little. */
const EVIDENCE_PREFIX = 4096;

/** Evidence text of a statement refused for its size: the start of it, literals redacted. */
export function oversizeEvidence(sql: string): string {
  if (sql.length <= EVIDENCE_PREFIX) return redactLiterals(sql);
  // Never between the halves of a surrogate pair. A literal cut at the end stays unterminated, which
  // the redaction treats as a literal to the end.
  const cut = (sql.charCodeAt(EVIDENCE_PREFIX - 1) & 0xfc00) === 0xd800 ? EVIDENCE_PREFIX - 1 : EVIDENCE_PREFIX;
  return `${redactLiterals(sql.slice(0, cut))} /* phigate: ${sql.length - cut} more characters not recorded */`;
}
