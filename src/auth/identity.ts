// Turns a verified token's claims into the Identity the gateway acts on (who, groups, human or service).
import type { JWTPayload } from 'jose';

export interface Identity {
  /** `sub` */
  subject: string;
  issuer: string;
  /** What humans see in logs: preferred_username ?? email ?? sub. */
  name: string;
  /** From the issuer's groups claim; [] when absent. */
  groups: string[];
  /** 'service' for client-credentials (machine) tokens, else 'human'. */
  kind: 'human' | 'service';
  clientId?: string;
  /**
   * Services only: the person (a human's subject) this service stands for, from the issuer's
   * `service_owners` or its `owner_claim`; absent when nobody owns it. See person.ts.
   */
  owner?: string;
  expiresAt: Date;
}

/** How an issuer says which person a service token stands for. */
export interface OwnerSources {
  ownerClaim?: string | undefined;
  serviceOwners?: Readonly<Record<string, string>> | undefined;
  /** The issuer's `service_tokens: all`: every token it mints is a workload's. */
  allServices?: boolean | undefined;
}

function nonEmptyString(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

/**
 * Reads a claim by name; when no claim has that exact name and the name contains dots, follows it as
 * a path into nested objects (`realm_access.roles`). Exact names win so that namespaced claims such
 * as `https://example.com/groups` work.
 */
export function readClaim(claims: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  if (!name.includes('.')) return undefined;
  let cur: unknown = claims;
  for (const part of name.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Groups from a claim value: an array of strings, or one space- or comma-separated string. */
export function parseGroups(value: unknown): string[] {
  let items: string[];
  if (Array.isArray(value)) items = value.filter((v): v is string => typeof v === 'string');
  else if (typeof value === 'string') items = value.split(/[\s,]+/);
  else return [];
  const seen = new Set<string>();
  for (const item of items) {
    const g = item.trim();
    if (g !== '') seen.add(g);
  }
  return [...seen];
}

/**
 * Whether the token was issued to a machine (client-credentials grant) rather than to a person:
 * an explicit grant-type claim (`gty`, Auth0), Entra ID's `idtyp: app`, a subject that is the client
 * itself (oidc-provider, Okta, Auth0 `<client>@clients`), a Keycloak service-account user, or a
 * platform's workload token (GitHub Actions' `job_workflow_ref`, Kubernetes' `kubernetes.io`): those
 * carry no client id, and taken for people they would be persons who can approve.
 */
export function isServiceToken(claims: JWTPayload, clientId: string | undefined): boolean {
  const gty = claims['gty'];
  if (gty === 'client_credentials' || gty === 'client-credentials') return true;
  if (Array.isArray(gty) && gty.includes('client_credentials')) return true;
  if (claims['idtyp'] === 'app') return true;
  const username = claims['preferred_username'];
  if (typeof username === 'string' && username.startsWith('service-account-')) return true;
  if (typeof claims['job_workflow_ref'] === 'string') return true;
  const k8s = claims['kubernetes.io'];
  if (typeof k8s === 'object' && k8s !== null) return true;
  const sub = claims.sub;
  if (sub === undefined) return false;
  if (clientId !== undefined && sub === clientId) return true;
  if (typeof claims['azp'] === 'string' && sub === claims['azp']) return true;
  if (clientId !== undefined && sub === `${clientId}@clients`) return true;
  return false;
}

export function identityFromClaims(claims: JWTPayload, groupsClaim: string, owners: OwnerSources = {}): Identity {
  // Callers have checked that sub, iss and exp are present and well-typed.
  const subject = claims.sub as string;
  const clientId = nonEmptyString(claims['client_id']) ?? nonEmptyString(claims['azp']) ?? nonEmptyString(claims['cid']) ?? nonEmptyString(claims['appid']);
  const identity: Identity = {
    subject,
    issuer: claims.iss as string,
    name: nonEmptyString(claims['preferred_username']) ?? nonEmptyString(claims['email']) ?? subject,
    groups: parseGroups(readClaim(claims, groupsClaim)),
    kind: owners.allServices === true || isServiceToken(claims, clientId) ? 'service' : 'human',
    expiresAt: new Date((claims.exp as number) * 1000),
  };
  if (clientId !== undefined) identity.clientId = clientId;
  if (identity.kind === 'service') {
    // The policy's mapping first (the operator's word), then the issuer's claim.
    const map = owners.serviceOwners;
    const mapped = map && ((clientId !== undefined && Object.hasOwn(map, clientId) ? map[clientId] : undefined) ?? (Object.hasOwn(map, subject) ? map[subject] : undefined));
    const owner = nonEmptyString(mapped) ?? (owners.ownerClaim ? nonEmptyString(readClaim(claims, owners.ownerClaim)) : undefined);
    if (owner !== undefined) identity.owner = owner.trim();
  }
  return identity;
}
