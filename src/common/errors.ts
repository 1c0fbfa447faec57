// The one error model: every error a user can act on carries a stable machine-readable code, and one
// table says what that code is on each surface: HTTP status, CLI exit code and, where a PostgreSQL
// client sees it, SQLSTATE. Codes are wire contract (JSON `error` fields, scripts); never rename one.

/** Exit codes fixed by SPEC.md §1. */
export const ExitCode = {
  Ok: 0,
  Error: 1,
  Usage: 2,
  NotAuthenticated: 3,
  Denied: 4,
  Unreachable: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorSurfaces {
  /** The HTTP status a route answers with. */
  http: number;
  /** The exit code of a `phigate` command that ends with it. */
  exit: ExitCode;
  /** The SQLSTATE a PostgreSQL client is told, when the error can reach one. */
  sqlstate?: string;
}

/**
 * A refusal before any session exists reaches psql (through `phigate connect`) as PostgreSQL's own
 * rejected-connection class, the one pg_hba refusals use; so does any other refused tunnel.
 */
export const REJECTED_CONNECTION = '28000';

/**
 * Every code, once. The exits of HTTP-only codes are what the CLI makes of their status (401 → 3,
 * 403 → 4, 5xx → 5, other → 1), so a code means the same exit whichever way the CLI learns of it.
 */
export const ERROR_TABLE = {
  // The CLI's generic outcomes.
  error: { http: 500, exit: ExitCode.Error },
  usage: { http: 400, exit: ExitCode.Usage },
  unreachable: { http: 502, exit: ExitCode.Unreachable, sqlstate: '08001' },
  // The gateway's refusals of a request or a tunnel (tunnel/protocol.ts RefusalCode).
  unauthenticated: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  forbidden: { http: 403, exit: ExitCode.Denied, sqlstate: REJECTED_CONNECTION },
  unknown_connection: { http: 404, exit: ExitCode.Error, sqlstate: REJECTED_CONNECTION },
  access_required: { http: 403, exit: ExitCode.Denied, sqlstate: REJECTED_CONNECTION },
  unavailable: { http: 503, exit: ExitCode.Unreachable, sqlstate: REJECTED_CONNECTION },
  token_misplaced: { http: 400, exit: ExitCode.Usage, sqlstate: REJECTED_CONNECTION },
  // A statement the policy (or an approver) said no to.
  denied: { http: 403, exit: ExitCode.Denied, sqlstate: '42501' },
  // Requests the HTTP API cannot answer as asked.
  bad_request: { http: 400, exit: ExitCode.Error },
  not_found: { http: 404, exit: ExitCode.Error },
  method_not_allowed: { http: 405, exit: ExitCode.Error },
  too_large: { http: 413, exit: ExitCode.Error },
  ambiguous: { http: 400, exit: ExitCode.Error },
  login_unavailable: { http: 404, exit: ExitCode.Error },
  invalid_policy: { http: 400, exit: ExitCode.Error },
  // Approval decisions (approvals/service.ts ApprovalErrorCode).
  already_decided: { http: 409, exit: ExitCode.Error },
  not_an_approver: { http: 403, exit: ExitCode.Denied },
  self_approval: { http: 403, exit: ExitCode.Denied },
  unowned_service: { http: 403, exit: ExitCode.Denied },
  reason_required: { http: 400, exit: ExitCode.Error },
  // Just-in-time access requests (server/access-grants.ts AccessError).
  bad_duration: { http: 400, exit: ExitCode.Error },
  bad_reason: { http: 400, exit: ExitCode.Error },
  not_required: { http: 400, exit: ExitCode.Error },
  not_allowed: { http: 400, exit: ExitCode.Error },
  // Why a bearer token was refused (auth/errors.ts AuthError). The gateway answers them as
  // `unauthenticated` (or `unavailable` for the issuer's own failure), with the message.
  missing_token: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  malformed_token: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  unsupported_alg: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  unknown_issuer: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  unknown_key: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  bad_signature: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  expired: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  not_yet_valid: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  wrong_audience: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  wrong_issuer: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  missing_claim: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  invalid_claim: { http: 401, exit: ExitCode.NotAuthenticated, sqlstate: REJECTED_CONNECTION },
  issuer_unavailable: { http: 503, exit: ExitCode.Unreachable, sqlstate: REJECTED_CONNECTION },
  // The evidence stores (audit/errors.ts). A record that cannot be written ends the session with
  // PostgreSQL's io_error class; the HTTP routes answer it as `unavailable`.
  audit_write_failed: { http: 503, exit: ExitCode.Error, sqlstate: '58030' },
  audit_locked: { http: 500, exit: ExitCode.Error },
  audit_damaged: { http: 500, exit: ExitCode.Error },
  bad_key: { http: 500, exit: ExitCode.Error },
  // A client broke the PostgreSQL wire protocol (pg/errors.ts ProtocolError).
  protocol_violation: { http: 400, exit: ExitCode.Error, sqlstate: '08P01' },
} as const satisfies Record<string, ErrorSurfaces>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_TABLE, code);
}

export function surfacesOf(code: ErrorCode): ErrorSurfaces {
  return ERROR_TABLE[code];
}

/** The generic code of a bare exit code (`new PhigateError(msg, ExitCode.Usage)`, a child's exit status). */
function codeOfExit(exit: number): ErrorCode {
  switch (exit) {
    case ExitCode.Usage: return 'usage';
    case ExitCode.NotAuthenticated: return 'unauthenticated';
    case ExitCode.Denied: return 'forbidden';
    case ExitCode.Unreachable: return 'unreachable';
    default: return 'error';
  }
}

/**
 * An error a user can act on: one line of message, an optional hint, and its code. The second
 * argument is the code, or (the CLI's older form) an exit code: one of ExitCode, or a child's own
 * status passed through by `phigate exec`, which is kept as the exit code.
 */
export class PhigateError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  readonly hint?: string;

  constructor(message: string, code: ErrorCode | number = 'error', hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PhigateError';
    if (typeof code === 'number') {
      this.code = codeOfExit(code);
      this.exitCode = code;
    } else {
      this.code = code;
      this.exitCode = ERROR_TABLE[code].exit;
    }
    if (hint !== undefined) this.hint = hint;
  }

  get status(): number {
    return ERROR_TABLE[this.code].http;
  }

  get sqlstate(): string | undefined {
    return (ERROR_TABLE[this.code] as ErrorSurfaces).sqlstate;
  }
}

/** The JSON body every HTTP route answers an error with. */
export interface Problem {
  error: ErrorCode;
  message: string;
  hint?: string;
}

export function problemOf(err: PhigateError): Problem {
  return { error: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
}

/**
 * The code (ENOENT, EADDRINUSE, ...) of a Node system error, or of the error that caused it; a
 * PhigateError's own code is not one (its cause's may be).
 */
export function errnoOf(err: unknown, depth = 0): string | undefined {
  if (err === null || typeof err !== 'object' || depth > 4) return undefined;
  const { code, cause } = err as { code?: unknown; cause?: unknown };
  if (typeof code === 'string' && !(err instanceof PhigateError)) return code;
  return errnoOf(cause, depth + 1);
}

/** What to do about `err`, when it says (PhigateError, the audit errors, a listener's failure). */
export function hintOf(err: unknown): string | undefined {
  const hint = err !== null && typeof err === 'object' ? (err as { hint?: unknown }).hint : undefined;
  return typeof hint === 'string' && hint !== '' ? hint : undefined;
}
