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

/** Query parameters and headers where clients (or attackers copying RFC 6750 §2.3) put tokens. */
const TOKEN_PARAMS = new Set(['access_token', 'token', 'bearer', 'jwt', 'id_token', 'auth', 'authorization', 'api_key', 'apikey']);
const TOKEN_HEADERS = ['x-access-token', 'x-auth-token', 'x-api-key', 'access-token', 'token', 'proxy-authorization'];
const JWT_LIKE = /^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * Where a request carries a bearer token other than the Authorization header, or undefined. Such a
 * request is refused whatever it asks: a URL is written to proxy and browser logs and histories, so a
 * token there is as good as published. Pure: callers pass the parsed URL and the headers.
 */
export function misplacedToken(url: URL, headers: Record<string, string | string[] | undefined>): string | undefined {
  for (const [name, value] of url.searchParams) {
    if (TOKEN_PARAMS.has(name.toLowerCase()) || JWT_LIKE.test(value.trim())) return `the URL's query string (parameter "${name.slice(0, 40)}")`;
  }
  if (JWT_LIKE.test(decodeSafely(url.pathname.split('/').pop() ?? ''))) return 'the URL\'s path';
  for (const h of TOKEN_HEADERS) if (headers[h] !== undefined) return `the ${h} header`;
  return undefined;
}

function decodeSafely(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The refusal's words: where the token was, and where it belongs. */
export function misplacedTokenMessage(where: string): string {
  return `a bearer token was sent in ${where}; tokens are accepted only in the Authorization header (Authorization: Bearer <token>). ` +
    'Treat that token as exposed: log in again (`phigate login`) so that it is replaced';
}
