// Who a token stands for. Separation of duties compares persons, not tokens: a human's person is
// their subject; a service's is its owner (identity.ts), and a service nobody owns stands for nobody.

export interface PersonSource {
  kind: 'human' | 'service' | 'agent';
  subject: string;
  owner?: string;
}

/** The person behind an identity, or undefined for a service without an owner. */
export function personOf(who: PersonSource): string | undefined {
  if (who.kind === 'human') return who.subject;
  return who.owner;
}

/**
 * Whether two person names are the same person. Case and surrounding space are ignored: a
 * look-alike is treated as the same person (refused), never as a stranger (fail closed).
 */
export function samePerson(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const x = a.trim().toLowerCase();
  return x !== '' && x === b.trim().toLowerCase();
}
