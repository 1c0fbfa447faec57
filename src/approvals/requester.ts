// The requester of an approval as the service stores it: who asked (token subject and issuer, the
// person behind it) and the session's label, which is shown as a label and never taken for a person.
import { personOf, type Identity } from '../auth/index.js';
import type { RequesterIdentity } from './types.js';

export function requesterOf(identity: Identity, label: string | undefined): RequesterIdentity {
  const person = personOf(identity);
  return {
    subject: identity.subject, issuer: identity.issuer, name: identity.name, groups: identity.groups,
    kind: label ? 'agent' : identity.kind,
    ...(label ? { label } : {}),
    ...(person !== undefined ? { person } : {}),
  };
}
