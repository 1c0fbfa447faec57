// An in-process gateway for the approvals end-to-end tests: a real Gateway (HTTP API, stream) with
// a real OpenID Provider, so the CLI runs as real processes while the test makes requests directly
// through `gateway.approvals.request(...)` and sees their outcomes.
import { inject } from 'vitest';
import { Gateway } from '../../src/server/gateway.js';
import { parsePolicyFile } from '../../src/policy/file.js';
import { silentLogger } from '../../src/common/log.js';
import type { ApprovalRequestInput } from '../../src/approvals/types.js';
import { policyYaml } from '../support/harness.js';
import { startTestIdp, type TestIdp } from '../support/oidc.js';
import { run, type Proc } from '../support/proc.js';
import { heldDelete } from './support.js';

export const APPROVAL_IDENTITIES: Record<string, string[]> = {
  alice: ['engineering'],
  bob: ['privacy-officers'],
  carol: ['privacy-officers'],
  mallory: ['marketing'],
  audrey: ['auditors'],
};

export interface InProcessGateway {
  gateway: Gateway;
  idp: TestIdp;
  url: string;
  /** A held DELETE by alice (agent claude), as a session would make it. */
  request(over?: Partial<ApprovalRequestInput>): ReturnType<Gateway['approvals']['request']>;
  /** Runs the CLI as `name` and waits for it to exit. */
  cli(name: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  close(): Promise<void>;
}

export async function startInProcessGateway(): Promise<InProcessGateway> {
  const idp = await startTestIdp({ identities: APPROVAL_IDENTITIES });
  const policy = parsePolicyFile(policyYaml(inject('pg'), idp, 1));
  const gateway = new Gateway({ policy, host: '127.0.0.1', port: 0, log: silentLogger });
  const { url } = await gateway.start();
  const tokens = new Map<string, string>();
  const token = async (name: string): Promise<string> => {
    let t = tokens.get(name);
    if (!t) tokens.set(name, (t = await idp.mint(name)));
    return t;
  };
  // The test IdP's subjects are client ids and its issuer is the one the gateway trusts.
  const requester = { subject: 'alice', issuer: idp.issuer, name: 'alice', groups: ['engineering'], kind: 'agent' as const, label: 'claude' };
  return {
    gateway,
    idp,
    url,
    request: (over = {}) => gateway.approvals.request(heldDelete({ requester, ...over })),
    async cli(name, args) {
      const p: Proc = run([...args, '--server', url], { PHIGATE_TOKEN: await token(name) });
      const { code } = await p.exited;
      return { code, stdout: p.stdout(), stderr: p.stderr() };
    },
    async close() {
      await gateway.stop();
      await idp.close();
    },
  };
}
