// The policy endpoints: `POST /admin/policy` (admins apply a policy; with a shared store it is
// published to every replica first) and `GET /v1/policy/history` (admins and auditors). Each attempt,
// granted or refused, is a privileged audit record.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../auth/index.js';
import { PhigateError } from '../common/errors.js';
import { parsePolicyFile, type PolicyFile } from '../policy/file.js';
import { PolicyFileError } from '../policy/errors.js';
import type { PolicyActivation } from '../policy/history.js';
import type { PolicyBroadcast } from './shared-policy.js';
import { policyVersion } from '../policy/version.js';
import { privilegedEvent, type AuditEvent, type PrivilegedAction } from '../audit/events.js';
import { authenticated, readBody, refuse, sendError, sendJson, sendProblem, Refused } from './http.js';
import type { Logger } from '../common/log.js';
import { StoreError } from '../store/shared-db.js';

export const POLICY_APPLY_PATH = '/admin/policy';
export const POLICY_HISTORY_PATH = '/v1/policy/history';
const MAX_POLICY_BYTES = 1024 * 1024;

export interface PolicyRoutesDeps {
  authenticate: (req: IncomingMessage) => Promise<Identity>;
  log: Logger;
  /** The policy in force, its version and the activations so far. */
  policy: () => PolicyFile;
  version: () => string;
  history: () => PolicyActivation[];
  /** Validates and activates `text` here (throws PolicyFileError when it is invalid). */
  activate: (text: string, by: string) => { version: string; changed: boolean };
  /** With a shared store: publishes to the other replicas. */
  broadcast: () => PolicyBroadcast | undefined;
  record: (event: AuditEvent) => void;
}

export function createPolicyRoutes(deps: PolicyRoutesDeps): { handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> } {
  const { log } = deps;

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const path = url.pathname;
    if (path !== POLICY_APPLY_PATH && path !== POLICY_HISTORY_PATH) return false;
    const identity = await authenticated(deps.authenticate, log, req, res);
    if (!identity) return true;
    const policy = deps.policy();
    const isAdmin = identity.groups.some((g) => policy.adminGroups.includes(g));
    const isAuditor = identity.groups.some((g) => policy.auditorGroups.includes(g));
    const attempt = (action: PrivilegedAction, target: string, outcome: 'granted' | 'refused', code?: string): void =>
      deps.record(privilegedEvent(identity, action, target, outcome, code));
    if (path === POLICY_HISTORY_PATH) {
      if (req.method !== 'GET') return sendError(res, 'method_not_allowed', 'use GET');
      if (!isAdmin && !isAuditor) {
        attempt('policy.history', 'policy history', 'refused', 'forbidden');
        return refuse(log, req, res, new Refused('forbidden', `${identity.name}: only admins and auditors may read the policy history`, identity.subject,
          `ask a member of ${[...policy.adminGroups, ...policy.auditorGroups].join(' or ')} (identity.admin_groups, auditor_groups); \`phigate whoami\` shows your groups`));
      }
      attempt('policy.history', 'policy history', 'granted');
      sendJson(res, 200, { current: deps.version(), history: deps.history() });
      return true;
    }
    if (req.method !== 'POST') return sendError(res, 'method_not_allowed', 'POST the policy YAML to /admin/policy');
    if (!isAdmin) {
      attempt('policy.apply', 'policy', 'refused', 'forbidden');
      return refuse(log, req, res, new Refused('forbidden', `${identity.name}: only members of ${policy.adminGroups.join(', ')} may change the policy`, identity.subject,
        `ask a member of ${policy.adminGroups.join(' or ')} (the policy's identity.admin_groups) to apply it; \`phigate whoami\` shows your groups`));
    }
    let text: string;
    try {
      text = await readBody(req, MAX_POLICY_BYTES, 'too_large');
    } catch (err) {
      if (!(err instanceof PhigateError)) throw err;
      sendProblem(res, err);
      return true;
    }
    try {
      const broadcast = deps.broadcast();
      if (broadcast) {
        // Valid here first, then published (so every replica gets it), then in force here. If it
        // cannot be published, nothing changes anywhere.
        const next = parsePolicyFile(text, '<request body>');
        try {
          await broadcast.publish(policyVersion(next.source), text, identity.name);
        } catch (err) {
          if (!(err instanceof StoreError)) throw err;
          log.error('policy not published to the other replicas; not applied', { by: identity.name, error: err.message });
          attempt('policy.apply', policyVersion(next.source), 'refused', 'unavailable');
          return sendError(res, 'unavailable', 'the policy cannot be shared with the other replicas (the shared store is unavailable); nothing was changed');
        }
      }
      const { version, changed } = deps.activate(text, identity.name);
      attempt('policy.apply', version, 'granted');
      sendJson(res, 200, { version, changed, ...(broadcast ? { replicas: 'published' } : {}) });
    } catch (err) {
      if (!(err instanceof PolicyFileError)) throw err;
      log.warn('policy update rejected', { by: identity.name, error: err.message });
      attempt('policy.apply', 'invalid policy', 'refused', err.code);
      sendProblem(res, err);
    }
    return true;
  }

  return { handle };
}
