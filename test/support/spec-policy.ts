// The reference example policy's rules (the product specification's, as in docs/policy.md), shared by the decision tests and the decision benchmark.
export const SPEC_RULES = `rules:                                     # first match wins
  - name: no-ddl
    when: { statement: [drop, truncate, alter, create, grant, revoke] }
    action: block
    message: DDL is not allowed through phigate
  - name: phi-writes
    when: { statement: [insert, update, delete, copy_from], tables: [patients, visits] }
    action: approve
    approvers: [privacy-officers]
    timeout: 15m
  - name: bulk-phi-read
    when: { statement: [select, copy_to], tables: [patients], without_where: true }
    action: approve
    approvers: [privacy-officers]
default: allow                             # or block
`;
