// Loads and validates the policy file (docs/policy.md): identity, connections, rules (rules.ts), masking
// (masking/config.ts), approvals, server_access (server-access.ts) and functions (functions.ts), with
// errors that name the file, line and key.
import { errnoOf } from '../common/errors.js';
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isSeq, isScalar, type Node, type Document } from 'yaml';
import { Reader, describe } from './yaml-reader.js';
import { parseRules, type Rule } from './rules.js';
import { parseMasking, type MaskingConfig } from '../masking/config.js';
import { PolicyFileError } from './errors.js';
import { parseServerAccess, type ServerAccess } from './server-access.js';
import { parseFunctions, type FunctionPolicy } from './functions.js';
import { parseLimits, type Limits } from './limits.js';
import { parsePool, type PoolPolicy } from './pool.js';

/** Who may administer and who may audit when the policy's `identity` does not say. */
export const DEFAULT_ADMIN_GROUPS: readonly string[] = ['admins'];
export const DEFAULT_AUDITOR_GROUPS: readonly string[] = ['auditors'];

export type TlsMode = 'disable' | 'require' | 'verify-full';

export interface IssuerPolicy {
  issuer: string;
  audience: string;
  groupsClaim: string;
  jwksUri?: string;
  /** Public client `phigate login` uses for the device flow against this issuer (advertised by the server). */
  cliClientId?: string;
  cliScopes?: string[];
  /** Claim of this issuer's service tokens naming the person the service acts for (`owner_claim`). */
  ownerClaim?: string;
  /** This issuer's service principals (client id or subject) → the person each stands for (`service_owners`). */
  serviceOwners?: Record<string, string>;
  /**
   * `service_tokens`: `detect` (default) tells services from people by the token's claims; `all`
   * makes every token of this issuer a service, for issuers that only mint workload tokens.
   */
  serviceTokens?: 'detect' | 'all';
}

export interface ConnectionPolicy {
  name: string;
  type: 'postgres';
  /** postgres://user@host:port/db; the password never lives here. */
  upstream: string;
  passwordEnv?: string;
  passwordFile?: string;
  tls: TlsMode;
  /** PEM file with the CA that signs the upstream's certificate (verify-full); system roots when absent. */
  tlsCaFile?: string;
  allowGroups: string[];
  accessApproval?: { groups: string[]; approvers: string[]; maxDuration: string };
  /** Most live sessions on this connection; `limits.sessions_per_connection` when absent. */
  maxSessions?: number;
  /** Upstream connection pooling (`pool`); on with defaults when absent. */
  pool?: PoolPolicy;
}

export interface ApprovalsPolicy {
  /** Where approval requests and decisions are POSTed: JSON, with a Slack-compatible `text`. */
  webhook?: { url: string; format: 'json' | 'slack' };
  /** Approvals and denials need a non-empty reason (`reason_required`, default true). */
  reasonRequired: boolean;
  /** May a service identity that stands for no person decide requests (`unowned_service_approvers`, default refuse)? */
  unownedServiceApprovers: 'refuse' | 'allow';
}

export interface PolicyFile {
  version: 1;
  issuers: IssuerPolicy[];
  /** Groups whose members may change the policy (default: admins). */
  adminGroups: string[];
  /** Groups whose members may read evidence (default: auditors). */
  auditorGroups: string[];
  connections: Map<string, ConnectionPolicy>;
  rules: Rule[];
  approvals: ApprovalsPolicy;
  default: 'allow' | 'block';
  masking: MaskingConfig;
  /** The server-access baseline's lifts (server-access.ts): capability → groups; nobody by default. */
  serverAccess: ServerAccess;
  /** What the operator declares about user-defined functions (functions.ts). */
  functions: readonly FunctionPolicy[];
  /** How much one client may ask of the gateway, and how long it waits on peers (limits.ts). */
  limits: Limits;
  source: string;
}

const TOP_KEYS = new Set(['version', 'identity', 'connections', 'rules', 'default', 'masking', 'approvals', 'server_access', 'functions', 'limits']);
const CONNECTION_KEYS = new Set([
  'type', 'upstream', 'password_env', 'password_file', 'tls', 'tls_ca_file', 'allow_groups', 'access_approval', 'max_sessions', 'pool',
]);
const ISSUER_KEYS = new Set(['issuer', 'audience', 'groups_claim', 'jwks_uri', 'cli_client_id', 'cli_scopes', 'owner_claim', 'service_owners', 'service_tokens']);
const CONNECTION_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Every group whose members may decide some request under `p`: approve rules' and access requests' approvers. */
export function approverGroupsOf(p: PolicyFile): string[] {
  const groups = new Set<string>();
  for (const r of p.rules) if (r.action === 'approve') for (const g of r.approvers ?? []) groups.add(g);
  for (const c of p.connections.values()) for (const g of c.accessApproval?.approvers ?? []) groups.add(g);
  return [...groups].sort();
}

export function loadPolicyFile(path: string): PolicyFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PolicyFileError(path, undefined, undefined, '', `cannot read file: ${errnoOf(err) ?? String(err)}`);
  }
  return parsePolicyFile(text, path);
}

export function parsePolicyFile(text: string, file = '<policy>'): PolicyFile {
  const lines = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  const r: Reader = new Reader(file, lines);
  const yamlErr = doc.errors[0];
  if (yamlErr) {
    const pos = yamlErr.linePos?.[0];
    throw new PolicyFileError(file, pos?.line, pos?.col, '', `invalid YAML: ${yamlErr.message.split('\n')[0]}`);
  }
  const top = r.map(doc.contents as Node | null, '', TOP_KEYS);

  const versionNode = top.get('version');
  if (!isScalar(versionNode) || versionNode.value !== 1) r.fail(versionNode, 'version', `expected 1, got ${describe(versionNode)}`);

  const issuers: IssuerPolicy[] = [];
  let adminGroups = [...DEFAULT_ADMIN_GROUPS];
  let auditorGroups = [...DEFAULT_AUDITOR_GROUPS];
  const identity = top.get('identity');
  if (identity !== undefined) {
    const id = r.map(identity, 'identity', new Set(['issuers', 'admin_groups', 'auditor_groups']));
    if (id.has('admin_groups')) adminGroups = r.strings(id.get('admin_groups'), 'identity.admin_groups');
    if (id.has('auditor_groups')) auditorGroups = r.strings(id.get('auditor_groups'), 'identity.auditor_groups');
    const list = id.get('issuers');
    if (list !== undefined) {
      if (!isSeq(list)) r.fail(list, 'identity.issuers', `expected a list, got ${describe(list)}`);
      list.items.forEach((item, i) => {
        const key = `identity.issuers[${i}]`;
        const m = r.map(item as Node, key, ISSUER_KEYS);
        const issuer = r.string(m.get('issuer'), `${key}.issuer`);
        if (!/^https?:\/\//.test(issuer)) r.fail(m.get('issuer'), `${key}.issuer`, 'expected an http(s) URL');
        const entry: IssuerPolicy = {
          issuer,
          audience: r.string(m.get('audience'), `${key}.audience`),
          groupsClaim: m.has('groups_claim') ? r.string(m.get('groups_claim'), `${key}.groups_claim`) : 'groups',
        };
        if (m.has('jwks_uri')) entry.jwksUri = r.string(m.get('jwks_uri'), `${key}.jwks_uri`);
        if (m.has('cli_client_id')) entry.cliClientId = r.string(m.get('cli_client_id'), `${key}.cli_client_id`);
        if (m.has('cli_scopes')) entry.cliScopes = r.strings(m.get('cli_scopes'), `${key}.cli_scopes`);
        if (m.has('owner_claim')) entry.ownerClaim = r.string(m.get('owner_claim'), `${key}.owner_claim`);
        if (m.has('service_tokens')) {
          const v = r.string(m.get('service_tokens'), `${key}.service_tokens`);
          if (v !== 'detect' && v !== 'all') r.fail(m.get('service_tokens'), `${key}.service_tokens`, `expected detect or all, got ${JSON.stringify(v)}`);
          entry.serviceTokens = v;
        }
        if (m.has('service_owners')) {
          const owners: Record<string, string> = {};
          for (const [principal, node] of r.map(m.get('service_owners'), `${key}.service_owners`, new Set())) {
            const person = r.string(node, `${key}.service_owners.${principal}`).trim();
            if (person === '' || /[\p{Cc}]/u.test(person)) r.fail(node, `${key}.service_owners.${principal}`, 'expected the subject of the person this service stands for');
            owners[principal] = person;
          }
          entry.serviceOwners = owners;
        }
        issuers.push(entry);
      });
    }
  }

  const connections = new Map<string, ConnectionPolicy>();
  const connNode = top.get('connections');
  if (connNode === undefined) r.fail(doc.contents as Node, 'connections', 'missing: at least one connection is required');
  for (const [name, node] of r.map(connNode, 'connections', new Set())) {
    const key = `connections.${name}`;
    if (!CONNECTION_NAME.test(name)) {
      r.fail(node, key, 'connection names are lower-case letters, digits, "-" and "_" (at most 63)');
    }
    const m = r.map(node, key, CONNECTION_KEYS);
    const upstream = r.string(m.get('upstream'), `${key}.upstream`);
    if (!/^postgres(ql)?:\/\//.test(upstream)) r.fail(m.get('upstream'), `${key}.upstream`, 'expected a postgres:// URL');
    if (/^postgres(ql)?:\/\/[^/@]*:[^/@]*@/.test(upstream)) {
      r.fail(m.get('upstream'), `${key}.upstream`, 'must not contain a password; use password_env or password_file');
    }
    const conn: ConnectionPolicy = {
      name,
      type: m.has('type') ? r.oneOf(m.get('type'), `${key}.type`, ['postgres'] as const) : 'postgres',
      upstream,
      tls: m.has('tls') ? r.oneOf(m.get('tls'), `${key}.tls`, ['disable', 'require', 'verify-full'] as const) : 'verify-full',
      allowGroups: m.has('allow_groups') ? r.strings(m.get('allow_groups'), `${key}.allow_groups`) : [],
    };
    if (m.has('password_env') && m.has('password_file')) {
      r.fail(m.get('password_file'), `${key}.password_file`, 'give either password_env or password_file, not both');
    }
    if (m.has('password_env')) conn.passwordEnv = r.string(m.get('password_env'), `${key}.password_env`);
    if (m.has('password_file')) conn.passwordFile = r.string(m.get('password_file'), `${key}.password_file`);
    if (m.has('tls_ca_file')) conn.tlsCaFile = r.string(m.get('tls_ca_file'), `${key}.tls_ca_file`);
    if (m.has('access_approval')) {
      const akey = `${key}.access_approval`;
      const a = r.map(m.get('access_approval'), akey, new Set(['groups', 'approvers', 'max_duration']));
      conn.accessApproval = {
        groups: r.strings(a.get('groups'), `${akey}.groups`),
        approvers: r.strings(a.get('approvers'), `${akey}.approvers`),
        maxDuration: a.has('max_duration') ? r.string(a.get('max_duration'), `${akey}.max_duration`) : '8h',
      };
    }
    if (m.has('max_sessions')) {
      const v = m.get('max_sessions');
      const n = isScalar(v) ? v.value : undefined;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) r.fail(v, `${key}.max_sessions`, `expected a positive whole number, got ${describe(v)}`);
      conn.maxSessions = n;
    }
    if (m.has('pool')) conn.pool = parsePool(r, m.get('pool'), `${key}.pool`);
    connections.set(name, conn);
  }
  if (connections.size === 0) r.fail(connNode, 'connections', 'at least one connection is required');

  const rules = parseRules(r, top.get('rules'));
  const approvals: ApprovalsPolicy = { reasonRequired: true, unownedServiceApprovers: 'refuse' };
  if (top.has('approvals')) {
    const a = r.map(top.get('approvals'), 'approvals', new Set(['webhook', 'reason_required', 'unowned_service_approvers']));
    if (a.has('reason_required')) approvals.reasonRequired = r.boolean(a.get('reason_required'), 'approvals.reason_required');
    if (a.has('unowned_service_approvers')) {
      approvals.unownedServiceApprovers = r.oneOf(a.get('unowned_service_approvers'), 'approvals.unowned_service_approvers', ['refuse', 'allow'] as const);
    }
    if (a.has('webhook')) {
      const w = r.map(a.get('webhook'), 'approvals.webhook', new Set(['url', 'format']));
      const url = r.string(w.get('url'), 'approvals.webhook.url');
      if (!/^https?:\/\//.test(url)) r.fail(w.get('url'), 'approvals.webhook.url', 'expected an http(s) URL');
      approvals.webhook = { url, format: w.has('format') ? r.oneOf(w.get('format'), 'approvals.webhook.format', ['json', 'slack'] as const) : 'json' };
    }
  }
  return {
    version: 1,
    issuers,
    adminGroups,
    auditorGroups,
    connections,
    rules,
    approvals,
    default: top.has('default') ? r.oneOf(top.get('default'), 'default', ['allow', 'block'] as const) : 'allow',
    masking: parseMasking(r, top.get('masking')),
    serverAccess: parseServerAccess(r, top.get('server_access')),
    functions: parseFunctions(r, top.get('functions')),
    limits: parseLimits(r, top.get('limits')),
    source: text,
  };
}
