// Policy file loading: the identity and connections sections, with errors that name line and key.
import { describe, expect, it } from 'vitest';
import { parsePolicyFile } from '../../src/policy/file.js';
import { policyErrorOf } from '../support/policy-errors.js';

const GOOD = `version: 1
identity:
  issuers:
    - issuer: https://idp.example.com/
      audience: phigate
      groups_claim: roles
connections:
  ehr:
    type: postgres
    upstream: postgres://phigate_svc@db.internal:5432/ehr
    password_env: EHR_DB_PASSWORD
    tls: verify-full
    allow_groups: [engineering, ai-agents]
    access_approval:
      groups: [ai-agents]
      approvers: [privacy-officers]
      max_duration: 8h
rules:
  - name: no-ddl
    when: { statement: [drop] }
    action: block
default: block
`;

describe('policy file', () => {
  it('loads the SPEC example sections', () => {
    const p = parsePolicyFile(GOOD, 'p.yaml');
    expect(p.issuers).toEqual([{ issuer: 'https://idp.example.com/', audience: 'phigate', groupsClaim: 'roles' }]);
    const ehr = p.connections.get('ehr');
    expect(ehr).toMatchObject({
      name: 'ehr', upstream: 'postgres://phigate_svc@db.internal:5432/ehr', passwordEnv: 'EHR_DB_PASSWORD', tls: 'verify-full',
      allowGroups: ['engineering', 'ai-agents'],
      accessApproval: { groups: ['ai-agents'], approvers: ['privacy-officers'], maxDuration: '8h' },
    });
    expect(p.default).toBe('block');
    expect(p.rules).toHaveLength(1);
  });

  it('defaults tls to verify-full and groups_claim to groups', () => {
    const p = parsePolicyFile(`version: 1
identity: { issuers: [{ issuer: "https://i/", audience: a }] }
connections: { x: { upstream: "postgres://u@h/d", allow_groups: [g] } }
`);
    expect(p.connections.get('x')?.tls).toBe('verify-full');
    expect(p.issuers[0]?.groupsClaim).toBe('groups');
  });

  it('reads service owners, the owner claim and the approvals rules (issue 16); strict defaults', () => {
    const p = parsePolicyFile(GOOD.replace('      groups_claim: roles\n', '      groups_claim: roles\n      owner_claim: act_for\n      service_owners: { ci-nightly: alice, "svc-7": bob }\n')
      + 'approvals: { reason_required: false, unowned_service_approvers: allow }\n');
    expect(p.issuers[0]).toMatchObject({ ownerClaim: 'act_for', serviceOwners: { 'ci-nightly': 'alice', 'svc-7': 'bob' } });
    expect(p.approvals).toMatchObject({ reasonRequired: false, unownedServiceApprovers: 'allow' });
    expect(parsePolicyFile(GOOD).approvals).toMatchObject({ reasonRequired: true, unownedServiceApprovers: 'refuse' });
  });

  it('reads service_tokens (all: an issuer that mints only workload tokens); absent means detect', () => {
    expect(parsePolicyFile(GOOD.replace('      groups_claim: roles\n', '      groups_claim: roles\n      service_tokens: all\n')).issuers[0]?.serviceTokens).toBe('all');
    expect(parsePolicyFile(GOOD).issuers[0]?.serviceTokens).toBeUndefined();
    expect(() => parsePolicyFile(GOOD.replace('      groups_claim: roles\n', '      groups_claim: roles\n      service_tokens: some\n')))
      .toThrow(/identity\.issuers\[0\]\.service_tokens: expected detect or all, got "some"/);
  });

  const bad: [string, string, RegExp][] = [
    ['service_owners not a map', GOOD.replace('      groups_claim: roles\n', '      groups_claim: roles\n      service_owners: [alice]\n'), /^p\.yaml:7:23: identity\.issuers\[0\]\.service_owners: expected a map/],
    ['an empty service owner', GOOD.replace('      groups_claim: roles\n', '      groups_claim: roles\n      service_owners: { ci: "  " }\n'), /identity\.issuers\[0\]\.service_owners\.ci: expected the subject of the person/],
    ['a bad unowned_service_approvers', `${GOOD}approvals: { unowned_service_approvers: maybe }\n`, /^p\.yaml:23:\d+: approvals\.unowned_service_approvers: expected one of refuse, allow, got "maybe"$/],
    ['a non-boolean reason_required', `${GOOD}approvals: { reason_required: sometimes }\n`, /approvals\.reason_required: expected true or false/],
    ['a wrong tls mode', GOOD.replace('tls: verify-full', 'tls: on'), /^p\.yaml:12:10: connections\.ehr\.tls: expected one of disable, require, verify-full, got "on"$/],
    ['an unknown key', GOOD.replace('    tls: verify-full\n', '    tsl: verify-full\n'), /^p\.yaml:12:5: connections\.ehr\.tsl: unknown key/],
    ['a password in the URL', GOOD.replace('phigate_svc@', 'phigate_svc:secret@'), /connections\.ehr\.upstream: must not contain a password/],
    ['a missing version', GOOD.replace('version: 1\n', ''), /version: expected 1, got nothing/],
    ['version 2', GOOD.replace('version: 1', 'version: 2'), /^p\.yaml:1:10: version: expected 1, got 2$/],
    ['allow_groups not a list', GOOD.replace('allow_groups: [engineering, ai-agents]', 'allow_groups: engineering'), /allow_groups: expected a list of strings, got "engineering"/],
    ['broken YAML', 'version: 1\nconnections: [\n', /^p\.yaml:\d+:\d+: invalid YAML/],
    ['no connections', 'version: 1\n', /connections: missing/],
    ['a bad connection name', GOOD.replace('  ehr:\n', '  "Bad Name":\n'), /connections\.Bad Name: connection names are lower-case/],
    ['a non-URL issuer', GOOD.replace('https://idp.example.com/', 'idp.example.com'), /identity\.issuers\[0\]\.issuer: expected an http\(s\) URL/],
    ['duplicate keys', GOOD.replace('    tls: verify-full\n', '    tls: verify-full\n    tls: disable\n'), /p\.yaml:1[23]:\d+: .*(duplicate|unique)/i],
    ['both password sources', GOOD.replace('    password_env: EHR_DB_PASSWORD\n', '    password_env: EHR_DB_PASSWORD\n    password_file: /x\n'), /either password_env or password_file/],
  ];
  for (const [name, text, re] of bad) {
    it(`rejects ${name} with file, line and key`, () => {
      expect(policyErrorOf(text).message).toMatch(re);
    });
  }
});
