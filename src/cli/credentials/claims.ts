// Who an access token says its holder is, for `phigate login` and `phigate whoami` to show. Read
// without verifying the signature (the gateway verifies; this is display only).
import { decodeJwt } from 'jose';
import { identityFromClaims } from '../../auth/identity.js';

export interface TokenIdentity {
  name: string;
  subject: string;
  kind: 'human' | 'service';
  groups: string[];
  issuer: string;
  clientId?: string;
  /** From the token's exp claim. */
  expiresAt?: Date;
}

/** undefined for a token that is not a JWT (opaque tokens name nobody locally). */
export function tokenIdentity(token: string, groupsClaim = 'groups'): TokenIdentity | undefined {
  let claims;
  try {
    claims = decodeJwt(token);
  } catch {
    return undefined;
  }
  if (typeof claims.sub !== 'string' || typeof claims.iss !== 'string') return undefined;
  const id = identityFromClaims({ ...claims, exp: typeof claims.exp === 'number' ? claims.exp : 0 }, groupsClaim);
  const out: TokenIdentity = { name: id.name, subject: id.subject, kind: id.kind, groups: id.groups, issuer: id.issuer };
  if (id.clientId !== undefined) out.clientId = id.clientId;
  if (typeof claims.exp === 'number') out.expiresAt = new Date(claims.exp * 1000);
  return out;
}
