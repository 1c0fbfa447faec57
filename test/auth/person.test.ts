// Who a token stands for (issue 16): a human is their subject; a service is the person the policy or
// its issuer names as its owner, or nobody.
import { describe, expect, it } from 'vitest';
import { identityFromClaims } from '../../src/auth/identity.js';
import { personOf, samePerson } from '../../src/auth/person.js';

const base = { iss: 'https://idp.test', exp: Math.floor(Date.now() / 1000) + 60 };

describe('personOf', () => {
  it('is the subject for a human, whatever owner claim the token carries', () => {
    const id = identityFromClaims({ ...base, sub: 'bob', owner: 'alice' }, 'groups', { ownerClaim: 'owner' });
    expect(id.kind).toBe('human');
    expect(personOf(id)).toBe('bob');
  });

  it('is the service_owners entry for a service (by client id, then subject), before any claim', () => {
    const owners = { ownerClaim: 'owner', serviceOwners: { 'dev-bob': 'bob' } };
    const byClient = identityFromClaims({ ...base, sub: 'dev-bob', client_id: 'dev-bob', owner: 'mallory' }, 'groups', owners);
    expect(byClient.kind).toBe('service');
    expect(personOf(byClient)).toBe('bob');
    const byClaim = identityFromClaims({ ...base, sub: 'ci', client_id: 'ci', owner: ' carol ' }, 'groups', owners);
    expect(personOf(byClaim)).toBe('carol');
  });

  it('is nobody for a service without an owner, and nobody is never the same person as anyone', () => {
    const id = identityFromClaims({ ...base, sub: 'ci', client_id: 'ci' }, 'groups', {});
    expect(personOf(id)).toBeUndefined();
    expect(samePerson(personOf(id), 'ci')).toBe(false);
    expect(samePerson(' Bob', 'bob ')).toBe(true);
  });
});

describe('service or person (issue 14: workload tokens carry no client id)', () => {
  it('a GitHub Actions or Kubernetes service-account token is a service, not a person who could approve', () => {
    const gha = identityFromClaims({ ...base, sub: 'repo:acme/ehr:ref:refs/heads/main', job_workflow_ref: 'acme/ehr/.github/workflows/ci.yml@refs/heads/main' }, 'groups');
    expect(gha.kind).toBe('service');
    const k8s = identityFromClaims({ ...base, sub: 'system:serviceaccount:agents:runner', 'kubernetes.io': { namespace: 'agents' } }, 'groups');
    expect(k8s.kind).toBe('service');
    expect(identityFromClaims({ ...base, sub: 'alice' }, 'groups').kind).toBe('human');
  });

  it("an issuer's service_tokens: all makes every token of it a service, owned through service_owners", () => {
    const id = identityFromClaims({ ...base, sub: 'build-bot' }, 'groups', { allServices: true, serviceOwners: { 'build-bot': 'alice' } });
    expect(id).toMatchObject({ kind: 'service', owner: 'alice' });
  });
});
