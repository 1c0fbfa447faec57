// The one error type the upstream connector throws, so callers can map every failure to a reply.
import type { DatabaseError } from 'pg-protocol';

export type UpstreamErrorKind = 'unreachable' | 'timeout' | 'tls' | 'auth' | 'server' | 'protocol';

/** SQLSTATE used when the failure is ours rather than the server's (libpq uses the same classes). */
export const SQLSTATE_CONNECTION_FAILURE = '08001';
export const SQLSTATE_PROTOCOL_VIOLATION = '08P01';
export const SQLSTATE_INVALID_AUTHORIZATION = '28000';

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  /** What went wrong without where (no host, port or role): the part a client may be told. */
  readonly reason: string;
  constructor(
    readonly kind: UpstreamErrorKind,
    readonly sqlstate: string,
    message: string,
    /** Fields of the server's ErrorResponse keyed by their protocol letter (S, C, M, D, H, ...). */
    readonly serverFields?: Record<string, string>,
    options?: { cause?: unknown; reason?: string },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.reason = options?.reason ?? message;
  }
}

// pg-protocol decodes ErrorResponse fields into named properties; callers that relay the error to a
// client need the protocol letters back, so this is the inverse of its field table.
const FIELD_LETTERS: ReadonlyArray<[keyof DatabaseError, string]> = [
  ['severity', 'S'], ['code', 'C'], ['message', 'M'], ['detail', 'D'], ['hint', 'H'], ['position', 'P'],
  ['internalPosition', 'p'], ['internalQuery', 'q'], ['where', 'W'], ['schema', 's'], ['table', 't'],
  ['column', 'c'], ['dataType', 'd'], ['constraint', 'n'], ['file', 'F'], ['line', 'L'], ['routine', 'R'],
];

export function errorFields(err: DatabaseError): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [prop, letter] of FIELD_LETTERS) {
    const value = err[prop];
    if (typeof value === 'string') fields[letter] = value;
  }
  return fields;
}

/** Raised by the pure helpers when the server breaks the protocol; upstream.ts adds host:port. */
export class ProtocolViolation extends Error {}
