// What a login leaves behind for one (server, profile), and the interface every secret store offers.

export interface StoredCredential {
  version: 1;
  server: string;
  profile: string;
  issuer: string;
  clientId: string;
  /** How the tokens were obtained; decides how they are renewed. */
  grant: 'device_code' | 'client_credentials';
  /** Sent as `resource` on token requests when the server advertised one. */
  resource?: string;
  scopes: string[];
  accessToken: string;
  /** ms since the epoch, by the local clock when the token arrived (expires_in), so IdP clock skew does not matter. */
  accessTokenExpiresAt: number;
  /** ms since the epoch, local clock; with the expiry it gives the token's lifetime. */
  accessTokenObtainedAt: number;
  refreshToken?: string;
  /**
   * Client-credentials logins keep the client secret so the access token can be renewed for as long
   * as the job runs; it sits in the same store, with the same protection, as a refresh token would.
   */
  clientSecret?: string;
}

/** One place secrets can live. Implementations throw StoreUnavailableError when the place does not work. */
export interface SecretStore {
  readonly kind: 'keychain' | 'file';
  /** Where, for people: "OS keychain (service phigate)", a file path. */
  readonly description: string;
  load(key: string): Promise<StoredCredential | undefined>;
  save(key: string, cred: StoredCredential): Promise<void>;
  /** True when something was deleted. */
  delete(key: string): Promise<boolean>;
}

export class StoreUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

export const DEFAULT_PROFILE = 'default';

/** The identifier of a (server, profile) pair in every store. */
export function credentialKey(server: string, profile: string): string {
  return `${profile}@${server}`;
}

/** Checks the shape of something read back from a store; a store holding junk is treated as empty. */
export function isStoredCredential(v: unknown): v is StoredCredential {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as Record<string, unknown>;
  return c['version'] === 1 && typeof c['accessToken'] === 'string' && typeof c['issuer'] === 'string' &&
    typeof c['clientId'] === 'string' && typeof c['accessTokenExpiresAt'] === 'number' &&
    typeof c['accessTokenObtainedAt'] === 'number' && (c['grant'] === 'device_code' || c['grant'] === 'client_credentials');
}
