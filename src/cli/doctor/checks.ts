// `phigate doctor`'s checks: a server configuration against the live world (the policy file, the
// identity providers, each connection's database and role, the shared store, the data directory and
// its keys, the addresses to listen on). Each check reuses the piece the server itself runs (policy
// loader, token verifier, upstream connector and privilege query, key loaders) so that what passes
// here passes at start. Nothing is created or changed; no password or token is ever in a result.
import { errnoOf } from '../../common/errors.js';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { dirname, join } from 'node:path';
import { loadPolicyFile, type ConnectionPolicy, type IssuerPolicy, type PolicyFile } from '../../policy/file.js';
import { PolicyFileError } from '../../policy/errors.js';
import { policyVersion } from '../../policy/version.js';
import { limitKey } from '../../policy/limits.js';
import { verifierFor } from '../../server/gateway.js';
import { isLoopbackHost } from '../../server/loopback.js';
import { resolveUpstreamTarget } from '../../server/targets.js';
import { parseUpstreamUrl, UpstreamError, type UpstreamTarget } from '../../server/upstream.js';
import { checkUpstreamPrivileges, type UpstreamPrivileges } from '../../server/upstream-privileges.js';
import { redactStoreUrl } from '../../store/shared-db.js';
import { STORE_SCHEMA_VERSION } from '../../store/migrations.js';
import { readTokenKey, TOKEN_KEY_FILE } from '../../server/secrets.js';
import { decideConnectionAccess } from '../../server/access.js';
import { keyFingerprint, loadSigningKey, SIGNING_KEY_FILE } from '../../audit/keys.js';
import { AuthError } from '../../auth/errors.js';
import { issuerConfig } from '../credentials/issuer.js';
import type { CheckResult } from './report.js';

export interface DoctorOptions {
  /** Absolute path of the policy file. */
  config: string;
  listen: { host: string; port: number };
  metricsListen?: { host: string; port: number };
  dataDir: string;
  store?: string;
  maskingKeyFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** A sample bearer token to verify as the gateway would (never printed). */
  token?: string;
  env?: NodeJS.ProcessEnv;
}

const OPERATOR_DOC = 'docs/operator.md';
const ROLE_DOC = `"Least-privilege upstream role" in ${OPERATOR_DOC}`;
const CERT_RENEW_DAYS = 30;

/** Every check, in the order shown. Network checks run at once; none takes longer than its own timeout. */
export async function runDoctor(o: DoctorOptions): Promise<CheckResult[]> {
  const env = o.env ?? process.env;
  const policy = checkPolicy(o.config);
  const p = policy.policy;
  const local: CheckResult[] = [
    policy.result,
    await checkListen('listen', o.listen, Boolean(o.tlsCert)),
    ...(o.metricsListen ? [await checkListen('metrics-listen', o.metricsListen)] : []),
    checkServerTls(o),
    checkDataDir(o.dataDir),
    checkSigningKey(o.dataDir),
    ...(p ? [checkMaskingKey(p, o)] : []),
  ];
  const remote = await Promise.all([
    o.store ? checkStore(o.store) : Promise.resolve([]),
    p ? checkIdentity(p, o.token) : Promise.resolve([]),
    ...(p ? [...p.connections.values()].map((c) => checkConnection(c, p, env)) : []),
  ]);
  return [...local, ...remote.flat()];
}

// ---------------------------------------------------------------------------------------------
// Policy

function checkPolicy(file: string): { result: CheckResult; policy?: PolicyFile } {
  try {
    const p = loadPolicyFile(file);
    const n = p.connections.size;
    return {
      policy: p,
      result: {
        check: 'policy', status: 'ok',
        message: `valid: version ${policyVersion(p.source).slice(0, 19)}…, ${n} ${n === 1 ? 'connection' : 'connections'}, ${p.rules.length} rules (default ${p.default})`,
      },
    };
  } catch (err) {
    if (!(err instanceof PolicyFileError)) throw err;
    return {
      result: {
        check: 'policy', status: 'fail', message: err.message,
        fix: 'correct the key on the line named (`phigate policy check FILE` shows the same); the checks that need the policy are skipped',
      },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Addresses and TLS of the gateway itself

function hostPort(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/**
 * Whether a phigate gateway answers /healthz at `addr` (doctor run next to the server it checks).
 * Certificates are not checked: this only asks what holds the port, and sends nothing secret.
 */
function gatewayAnswers(addr: { host: string; port: number }, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (tls ? httpsRequest : httpRequest)({
      host: addr.host, port: addr.port, path: '/healthz', method: 'GET', timeout: 2000, rejectUnauthorized: false,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { if (body.length < 4096) body += d; });
      res.on('end', () => resolve(res.statusCode === 200 && /"status"\s*:\s*"ok"/.test(body)));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Binds the address for a moment, as the server would, and lets it go. */
async function checkListen(check: string, addr: { host: string; port: number }, tls = false): Promise<CheckResult> {
  const subject = hostPort(addr);
  const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e));
    s.listen({ host: addr.host, port: addr.port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
  if (!err) return { check, subject, status: 'ok', message: 'free; the server can listen here' };
  if (err.code === 'EADDRINUSE' && check === 'listen' && await gatewayAnswers(addr, tls)) {
    return { check, subject, status: 'ok', message: 'in use by a running phigate gateway (its /healthz answers)' };
  }
  const fix = err.code === 'EADDRINUSE' ? 'another process holds it (`ss -ltnp` names it): stop it, or pick another address'
    : err.code === 'EACCES' ? 'ports below 1024 need privileges: use a port above 1024 and let a proxy or a Service map 443 to it'
      : err.code === 'EADDRNOTAVAIL' ? 'no interface of this machine has that address: use one it has, or 0.0.0.0 inside a container'
        : 'pick an address this machine can listen on';
  return { check, subject, status: 'fail', message: `cannot listen: ${err.code ?? err.message}`, fix };
}

function checkServerTls(o: DoctorOptions): CheckResult {
  const check = 'tls';
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) {
    return { check, status: 'fail', message: 'only one of --tls-cert and --tls-key given', fix: 'give both, or neither (and terminate TLS in front of the gateway)' };
  }
  if (!o.tlsCert || !o.tlsKey) {
    if (isLoopbackHost(o.listen.host)) return { check, status: 'ok', message: 'plain HTTP on a loopback address (a TLS proxy in front, or local use only)' };
    return {
      check, status: 'warn', message: `plain HTTP on ${o.listen.host}: bearer tokens cross the network in clear unless a TLS terminator is in front`,
      fix: `give --tls-cert and --tls-key, or keep a TLS-terminating proxy or ingress as the only way in (see "From demo to production" in ${OPERATOR_DOC})`,
    };
  }
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(o.tlsCert);
    key = readFileSync(o.tlsKey);
  } catch (err) {
    return { check, status: 'fail', message: `cannot read TLS material: ${errnoOf(err) ?? (err as Error).message}`, fix: 'the files must be readable by the user the server runs as' };
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    return { check, status: 'fail', message: `the certificate and key do not make a usable pair: ${(err as Error).message}`, fix: '--tls-key must be the private key of --tls-cert (PEM, the leaf certificate first, then intermediates)' };
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    return { check, status: 'fail', message: `--tls-cert is not a PEM certificate: ${(err as Error).message}`, fix: 'give the PEM certificate chain, leaf first' };
  }
  const until = new Date(leaf.validTo);
  const days = Math.floor((until.getTime() - Date.now()) / 86_400_000);
  const subject = leaf.subjectAltName ?? leaf.subject;
  if (days < 0) return { check, status: 'fail', message: `the certificate expired on ${until.toISOString().slice(0, 10)} (${subject})`, fix: 'renew it and restart the server' };
  if (days < CERT_RENEW_DAYS) return { check, status: 'warn', message: `the certificate expires in ${days} ${days === 1 ? 'day' : 'days'} (${subject})`, fix: 'renew it; the server reads it at start' };
  return { check, status: 'ok', message: `HTTPS/WSS with a certificate for ${subject}, valid ${days} more days` };
}

// ---------------------------------------------------------------------------------------------
// Data directory and keys

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

function checkDataDir(dir: string): CheckResult {
  const check = 'data-dir';
  if (existsSync(dir)) {
    try {
      if (!statSync(dir).isDirectory()) return { check, subject: dir, status: 'fail', message: 'is not a directory', fix: 'point --data-dir at a directory' };
      accessSync(dir, constants.W_OK | constants.X_OK);
    } catch (err) {
      return { check, subject: dir, status: 'fail', message: `not writable by this user: ${errnoOf(err) ?? (err as Error).message}`, fix: `chown -R ${process.getuid?.() ?? 'USER'} ${dir}; in a container mount a volume, in Kubernetes set fsGroup` };
    }
    const mode = modeOf(dir);
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      return { check, subject: dir, status: 'warn', message: `writable, but others may enter it (mode ${mode.toString(8).padStart(4, '0')}): it holds evidence and keys`, fix: `chmod 700 ${dir}` };
    }
    return { check, subject: dir, status: 'ok', message: 'writable, only by this user' };
  }
  let parent = dirname(dir);
  while (!existsSync(parent) && parent !== dirname(parent)) parent = dirname(parent);
  try {
    accessSync(parent, constants.W_OK | constants.X_OK);
  } catch {
    return { check, subject: dir, status: 'fail', message: `does not exist, and ${parent} is not writable by this user`, fix: `create it for the server's user: mkdir -p ${dir} && chown ${process.getuid?.() ?? 'USER'} ${dir} && chmod 700 ${dir}` };
  }
  return { check, subject: dir, status: 'ok', message: 'does not exist yet; the server creates it (mode 0700)' };
}

function checkSigningKey(dataDir: string): CheckResult {
  const check = 'signing-key';
  const file = join(dataDir, SIGNING_KEY_FILE);
  if (!existsSync(file)) {
    if (existsSync(join(dataDir, 'audit', 'audit.jsonl'))) {
      return {
        check, subject: file, status: 'fail', message: 'missing, but the audit log exists: a new key would sign what follows, and auditors pinned the old one',
        fix: 'restore audit-signing-key.pem from its backup (mode 0600) before starting the server',
      };
    }
    return { check, subject: file, status: 'ok', message: 'not created yet; the server creates it at first start (back it up then)' };
  }
  try {
    const key = loadSigningKey(file);
    return { check, subject: file, status: 'ok', message: `Ed25519 key ${keyFingerprint(key)}, mode 0600` };
  } catch (err) {
    const hint = (err as { hint?: unknown }).hint;
    return { check, subject: file, status: 'fail', message: (err as Error).message.replace(`${file}: `, ''), fix: typeof hint === 'string' ? hint : 'the key must be readable by the server\'s user only (chmod 600)' };
  }
}

function checkMaskingKey(p: PolicyFile, o: DoctorOptions): CheckResult {
  const check = 'masking-key';
  const tokenizes = p.masking.columns.some((c) => c.strategy === 'tokenize');
  const file = o.maskingKeyFile ?? join(o.dataDir, TOKEN_KEY_FILE);
  if (o.maskingKeyFile === undefined && !existsSync(file)) {
    if (o.store && tokenizes) {
      return {
        check, status: 'warn', message: 'replicas share a store but each would create its own tokenize key: tokens would differ between replicas',
        fix: 'give every replica the same --masking-key-file (openssl rand -base64 32, from a secret)',
      };
    }
    return { check, subject: file, status: 'ok', message: 'not created yet; the server creates it at first start' };
  }
  try {
    readTokenKey(file);
    return { check, subject: file, status: 'ok', message: 'readable, base64, mode 0600 or less' };
  } catch (err) {
    return { check, subject: file, status: 'fail', message: (err as Error).message, fix: 'a base64 key of at least 16 bytes (openssl rand -base64 32), mode 0600, owned by the server\'s user' };
  }
}

// ---------------------------------------------------------------------------------------------
// Shared store

async function checkStore(url: string): Promise<CheckResult[]> {
  const check = 'store';
  const subject = redactStoreUrl(url);
  if (!/^postgres(ql)?:\/\//.test(url)) return [{ check, subject, status: 'fail', message: 'not a postgres:// URL', fix: 'e.g. --store postgres://phigate@db.internal/phigate (password in PGPASSWORD or ~/.pgpass)' }];
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: 'phigate-doctor' });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    return [{
      check, subject, status: 'fail', message: `cannot connect: ${(err as Error).message}`,
      fix: 'check the host, the role, PGPASSWORD or ~/.pgpass, pg_hba.conf, and ?sslmode=verify-full&sslrootcert=FILE for TLS',
    }];
  }
  try {
    const r = await client.query<{ meta: string | null; can_create: boolean }>(
      `SELECT pg_catalog.to_regclass('phigate.meta')::text AS meta,
              pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE') AS can_create`);
    const row = r.rows[0]!;
    if (row.meta === null) {
      if (row.can_create) return [{ check, subject, status: 'ok', message: 'reachable; the schema phigate is created at the first server start' }];
      return [{
        check, subject, status: 'fail', message: 'reachable, but the schema phigate does not exist and this role may not create it',
        fix: 'GRANT CREATE ON DATABASE <db> TO <role>, or CREATE SCHEMA phigate AUTHORIZATION <role> as an administrator',
      }];
    }
    const v = await client.query<{ value: string }>("SELECT value FROM phigate.meta WHERE key = 'schema_version'");
    const found = Number(v.rows[0]?.value);
    if (found > STORE_SCHEMA_VERSION) {
      return [{ check, subject, status: 'fail', message: `set up by a newer phigate (schema ${found}; this one knows up to ${STORE_SCHEMA_VERSION})`, fix: 'upgrade this replica to the version the others run' }];
    }
    return [{ check, subject, status: 'ok', message: `reachable, schema phigate version ${found}` }];
  } catch (err) {
    return [{ check, subject, status: 'fail', message: `reachable, but reading the schema phigate failed: ${(err as Error).message}`, fix: 'give the role USAGE on the schema phigate and rights on its tables (it created them, normally)' }];
  } finally {
    await client.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Identity providers

const ISSUER_URL_FIX = 'the issuer must be the URL whose /.well-known/openid-configuration exists: Okta https://ORG.okta.com/oauth2/default (a custom authorization server), '
  + 'Entra ID https://login.microsoftonline.com/TENANT_ID/v2.0, Keycloak https://HOST/realms/REALM, Google https://accounts.google.com';

function issuerFix(message: string): string {
  const named = /names issuer (.+)\)$/.exec(message)?.[1];
  if (named) {
    return `set issuer to exactly what the discovery document names (${named}); for Entra ID use the tenant's id, not "common" or "organizations"`;
  }
  if (/answered HTTP \d+/.test(message)) return ISSUER_URL_FIX;
  if (/JWKS|jwks_uri/.test(message)) return 'the signing keys at jwks_uri cannot be fetched or used from this host: check egress to it, or set jwks_uri';
  return 'check that this host reaches the issuer over HTTPS (DNS, firewall, egress rules)';
}

async function checkIdentity(p: PolicyFile, token: string | undefined): Promise<CheckResult[]> {
  if (p.issuers.length === 0) {
    return [{
      check: 'issuer', status: 'fail', message: 'identity.issuers is empty: no token can be verified (only --dev brings an issuer of its own)',
      fix: `add your identity provider under identity.issuers (see "From demo to production" in ${OPERATOR_DOC})`,
    }];
  }
  const out = await Promise.all(p.issuers.map((i) => checkIssuer(p, i)));
  const results = out.flat();
  if (!p.issuers.some((i) => i.cliClientId)) {
    results.push({
      check: 'login', status: 'warn', message: 'no issuer has cli_client_id: the gateway offers no `phigate login` (device flow or --client-credentials)',
      fix: 'register a public client with the device grant at your IdP and set cli_client_id (and cli_scopes); without it every user needs PHIGATE_TOKEN or --token-file',
    });
  }
  if (token !== undefined) results.push(await checkToken(p, token));
  return results;
}

async function checkIssuer(p: PolicyFile, i: IssuerPolicy): Promise<CheckResult[]> {
  const check = 'issuer';
  const subject = i.issuer;
  let verifier;
  try {
    verifier = verifierFor({ ...p, issuers: [i] });
  } catch (err) {
    return [{ check, subject, status: 'fail', message: (err as Error).message, fix: 'use the https URL of the issuer; plain http is accepted on loopback only (tests, --dev)' }];
  }
  const [warm] = await verifier.warmUp();
  if (warm?.error) {
    const message = warm.error.message.replace(/^cannot verify the token: /, '').replace(`issuer ${i.issuer} is unavailable`, 'unavailable');
    return [{ check, subject, status: 'fail', message, fix: issuerFix(message) }];
  }
  const out: CheckResult[] = [{
    check, subject, status: 'ok',
    message: `discovery and signing keys reachable; tokens must carry aud "${i.audience}", groups from claim "${i.groupsClaim}"`,
  }];
  if (i.cliClientId) out.push(await checkLoginClient(i));
  return out;
}

/** The device flow `phigate login` runs against the advertised client: the issuer must offer it. */
async function checkLoginClient(i: IssuerPolicy): Promise<CheckResult> {
  const check = 'login';
  const subject = `${i.cliClientId} at ${i.issuer}`;
  try {
    const config = await issuerConfig(i.issuer, i.cliClientId!, { kind: 'public' });
    if (!config.serverMetadata().device_authorization_endpoint) {
      return {
        check, subject, status: 'warn', message: 'the issuer publishes no device_authorization_endpoint: `phigate login` cannot run the device flow',
        fix: 'enable the device authorization grant (Okta: on the app and the authorization server policy; Keycloak: "OAuth 2.0 Device Authorization Grant" on the client; Entra ID: "Allow public client flows")',
      };
    }
    return { check, subject, status: 'ok', message: `device flow offered; \`phigate login\` asks for scopes ${(i.cliScopes ?? ['openid', 'offline_access']).join(' ')}` };
  } catch (err) {
    return { check, subject, status: 'fail', message: (err as Error).message, fix: issuerFix((err as Error).message) };
  }
}

const TOKEN_FIX: Partial<Record<string, string>> = {
  wrong_audience: 'set audience to what the IdP puts in aud (Entra ID v2: the API app\'s application (client) id; Okta: the authorization server\'s audience; Keycloak: an audience mapper), or have the IdP add it',
  unknown_issuer: 'add the token\'s issuer under identity.issuers, or get the token from a configured one',
  wrong_issuer: 'the issuer string must match the token\'s iss exactly (trailing slash aside)',
  expired: 'get a fresh token and run again',
  not_yet_valid: 'check the clocks of this host and the IdP',
  unsupported_alg: 'the IdP must sign with RS*, PS*, ES* or EdDSA (not HS*)',
};

async function checkToken(p: PolicyFile, token: string): Promise<CheckResult> {
  const check = 'token';
  let identity;
  try {
    identity = await verifierFor(p).verify(token);
  } catch (err) {
    const code = err instanceof AuthError ? err.code : 'malformed_token';
    return { check, status: 'fail', message: (err as Error).message, fix: TOKEN_FIX[code] ?? 'give a JWT access token of a configured issuer' };
  }
  const issuer = p.issuers.find((i) => i.issuer.replace(/\/+$/, '') === identity.issuer.replace(/\/+$/, ''));
  const claim = issuer?.groupsClaim ?? 'groups';
  const who = `${identity.name} (${identity.kind}${identity.owner ? `, stands for ${identity.owner}` : ''})`;
  if (identity.groups.length === 0) {
    return {
      check, subject: who, status: 'warn', message: `verified, but claim "${claim}" holds no groups: this identity may use no connection`,
      fix: 'have the IdP put groups in the token (Okta: a groups claim on the authorization server; Entra ID: groups or app roles; Keycloak: a group membership mapper), or set groups_claim to the claim that holds them',
    };
  }
  const usable = [...p.connections.values()].filter((c) => decideConnectionAccess(identity.groups, c).allowed).map((c) => c.name);
  const groups = `groups ${identity.groups.join(', ')}`;
  if (usable.length === 0) {
    return {
      check, subject: who, status: 'warn', message: `verified; ${groups}; none of them is in any connection's allow_groups`,
      fix: 'add one of these groups to connections.NAME.allow_groups, or check that group names (not ids) are what the IdP sends',
    };
  }
  return { check, subject: who, status: 'ok', message: `verified; ${groups}; may use ${usable.join(', ')}` };
}

// ---------------------------------------------------------------------------------------------
// Connections

async function checkConnection(c: ConnectionPolicy, p: PolicyFile, env: NodeJS.ProcessEnv): Promise<CheckResult[]> {
  const subject = c.name;
  const tls = checkUpstreamTls(c);
  let target: UpstreamTarget;
  try {
    target = { ...resolveUpstreamTarget(c, env), connectTimeoutMs: p.limits.upstreamConnectTimeoutMs };
  } catch (err) {
    return [{ check: 'upstream', subject, status: 'fail', message: (err as Error).message, fix: configFix(c) }, tls];
  }
  const where = `${target.user}@${hostPort(target)}/${target.database}`;
  const started = Date.now();
  let priv: UpstreamPrivileges;
  try {
    priv = await checkUpstreamPrivileges(target);
  } catch (err) {
    const e = err instanceof UpstreamError ? err : undefined;
    return [{ check: 'upstream', subject, status: 'fail', message: (err as Error).message, fix: e ? upstreamFix(e, c, target, p) : 'see the message' }, tls];
  }
  return [
    { check: 'upstream', subject, status: 'ok', message: `connected and authenticated as ${where} in ${Date.now() - started} ms (tls ${c.tls})` },
    tls,
    roleCheck(c, priv),
  ];
}

function checkUpstreamTls(c: ConnectionPolicy): CheckResult {
  const check = 'upstream-tls';
  const subject = c.name;
  let host = '';
  try {
    host = parseUpstreamUrl(c.upstream).host;
  } catch {
    // the upstream check reports an unusable URL
  }
  if (c.tls === 'verify-full') {
    return { check, subject, status: 'ok', message: `verify-full: certificate checked against ${c.tlsCaFile ? `tls_ca_file ${c.tlsCaFile}` : 'the system roots'} and host name ${host}` };
  }
  if (c.tls === 'disable' && isLoopbackHost(host)) return { check, subject, status: 'ok', message: 'disable, on a loopback address' };
  return {
    check, subject, status: 'warn',
    message: c.tls === 'require' ? 'require: encrypted, but the database\'s certificate is not checked (whoever sits in between can read and change the session, PHI included)'
      : `disable: statements and PHI cross the network to ${host} in clear`,
    fix: `set connections.${c.name}.tls: verify-full and tls_ca_file to the CA that signed the database's certificate`,
  };
}

function configFix(c: ConnectionPolicy): string {
  if (c.passwordEnv) return `export ${c.passwordEnv} in the server's environment (from your secret store; a Kubernetes Secret in deploy/kubernetes/phigate.yaml)`;
  if (c.passwordFile) return `make ${c.passwordFile} readable by the server's user (mode 0600 or 0400)`;
  if (c.tlsCaFile) return `make ${c.tlsCaFile} readable by the server's user`;
  return `fix connections.${c.name}`;
}

function upstreamFix(e: UpstreamError, c: ConnectionPolicy, t: UpstreamTarget, p: PolicyFile): string {
  switch (e.kind) {
    case 'unreachable':
      return `check the host and port in connections.${c.name}.upstream, and that this host may reach them (DNS, firewall, listen_addresses on the database)`;
    case 'timeout':
      return `something answers TCP there but not as PostgreSQL within ${limitKey('upstreamConnectTimeoutMs')} (${p.limits.upstreamConnectTimeoutMs} ms): check the port and any proxy or firewall in between`;
    case 'tls':
      return c.tls === 'verify-full'
        ? `the database needs ssl = on, its certificate must name ${t.host} and be signed by ${c.tlsCaFile ? 'the CA in tls_ca_file' : 'a system root (or set tls_ca_file to its CA)'}`
        : 'the database must accept TLS (ssl = on), or connect over a trusted loopback with tls: disable';
    case 'auth': {
      const secret = c.passwordEnv ? `$${c.passwordEnv}` : c.passwordFile ?? 'no password (set password_env or password_file)';
      return `the database refused ${t.user}: check the password in ${secret}, and that pg_hba.conf has a ${c.tls === 'disable' ? 'host' : 'hostssl'} line for ${t.user} and ${t.database} with scram-sha-256`;
    }
    case 'server': {
      if (!e.serverFields) return configFix(c);
      const code = e.serverFields['C'];
      if (code === '3D000') return `create the database, or fix the database name in connections.${c.name}.upstream`;
      if (code === '53300') return 'the database has no free connection slot: raise max_connections or the role\'s CONNECTION LIMIT, or lower max_sessions';
      if (code === '57P03') return 'the database is starting, stopping or in recovery: run doctor again shortly';
      return 'PostgreSQL\'s answer above says what is wrong';
    }
    case 'protocol':
      return `is PostgreSQL listening there? check the port in connections.${c.name}.upstream`;
  }
}

/** A superuser fails: nothing the gateway decides holds against code that runs as one. The rest warn. */
function roleCheck(c: ConnectionPolicy, p: UpstreamPrivileges): CheckResult {
  const check = 'upstream-role';
  const subject = c.name;
  if (p.superuser) {
    return {
      check, subject, status: 'fail',
      message: `${p.role} is a superuser: function bodies, DO blocks and triggers phigate cannot see run with every privilege, past masking and the server-access baseline`,
      fix: `connect as a role without SUPERUSER that holds only the grants the policy needs: see ${ROLE_DOC}`,
    };
  }
  const findings: string[] = [];
  if (p.serverRoles.length > 0) findings.push(`member of ${p.serverRoles.join(', ')} (programs or files on the database server)`);
  if (p.createRole) findings.push('CREATEROLE (can create roles and grant memberships)');
  if (p.bypassRls) findings.push('BYPASSRLS (row-level security does not apply)');
  if (p.ownedRelations > 0) findings.push(`owns ${p.ownedRelations} ${p.ownedRelations === 1 ? 'relation' : 'relations'} (an owner can add triggers, rules and views, and alter them)`);
  if (findings.length > 0) {
    return { check, subject, status: 'warn', message: `${p.role}: ${findings.join('; ')}`, fix: `REVOKE these from ${p.role} (tables owned by another role): see ${ROLE_DOC}` };
  }
  return { check, subject, status: 'ok', message: `${p.role}: no superuser, server-file or program roles, CREATEROLE or BYPASSRLS; owns no tables` };
}
