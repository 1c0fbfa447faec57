// Extracts the bearer token from an HTTP Authorization header (RFC 6750), refusing anything else.
import { AuthError } from './errors.js';

/** Upper bound on a token's length; real access tokens are far below it. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Returns the token of an `Authorization: Bearer <token>` header.
 * Throws AuthError `missing_token` when there is no header or no token, and `malformed_token` for
 * any other scheme (Basic, ...) or a token with characters a bearer token cannot hold.
 */
export function bearerToken(authorizationHeader: string | undefined): string {
  const header = authorizationHeader?.trim() ?? '';
  if (header === '') {
    throw new AuthError('missing_token', 'no bearer token presented; run `phigate login`');
  }
  const space = header.search(/\s/);
  const scheme = space === -1 ? header : header.slice(0, space);
  const token = space === -1 ? '' : header.slice(space + 1).trim();
  if (scheme.toLowerCase() !== 'bearer') {
    const shown = /^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,19}$/.test(scheme) ? `"${scheme}"` : 'an unknown';
    throw new AuthError('malformed_token', `Authorization header uses ${shown} scheme, expected Bearer; run \`phigate login\``);
  }
  if (token === '') {
    throw new AuthError('missing_token', 'Authorization header has no bearer token; run `phigate login`');
  }
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new AuthError('malformed_token', `bearer token is longer than ${MAX_TOKEN_LENGTH} characters`);
  }
  if (!TOKEN68.test(token)) {
    throw new AuthError('malformed_token', 'bearer token contains characters a token cannot hold');
  }
  return token;
}
