// Public face of bearer-token authentication: extract the token, verify it, get an Identity.
export { AuthError, isAuthError, type AuthErrorCode } from './errors.js';
export { bearerToken, misplacedToken, misplacedTokenMessage, MAX_TOKEN_LENGTH } from './bearer.js';
export { type Identity, type OwnerSources, parseGroups } from './identity.js';
export { personOf, samePerson, type PersonSource } from './person.js';
export { ACCEPTED_ALGORITHMS, TokenVerifier, type IssuerConfig, type TokenVerifierOptions } from './verifier.js';
