// Authentication errors: one stable code per way a bearer token can be refused, with a one-line message.

import { PhigateError } from '../common/errors.js';

/** Codes of common/errors.ts ERROR_TABLE: 401 and exit 3, but `issuer_unavailable` 503 and exit 5. */
export type AuthErrorCode =
  | 'missing_token'
  | 'malformed_token'
  | 'unsupported_alg'
  | 'unknown_issuer'
  | 'unknown_key'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_audience'
  | 'wrong_issuer'
  | 'missing_claim'
  | 'invalid_claim'
  | 'issuer_unavailable';

/**
 * Why a bearer token was refused. `message` is one line a CLI can print as is; it never contains the
 * token. `issuer_unavailable` is the gateway's (or the IdP's) problem, every other code is the token's.
 */
export class AuthError extends PhigateError {
  declare readonly code: AuthErrorCode;

  constructor(code: AuthErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, code, undefined, options);
    this.name = 'AuthError';
  }
}

export function isAuthError(err: unknown): err is AuthError {
  return err instanceof AuthError;
}

/**
 * Renders a value taken from an untrusted token for a one-line message: JSON (so control characters
 * are escaped and strings are quoted), at most 80 characters.
 */
export function quote(value: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(typeof value === 'string' && value.length > 80 ? `${value.slice(0, 77)}...` : value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
