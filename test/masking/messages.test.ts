// Values PostgreSQL echoes in error and notice texts are masked; identifiers stay readable.
import { describe, expect, it } from 'vitest';
import { DetectorSet, maskServerText } from '../../src/masking/index.js';

const d = new DetectorSet([{ kind: 'builtin', name: 'us_ssn' }, { kind: 'builtin', name: 'email' }]);

describe('server message masking', () => {
  it.each([
    ['invalid input syntax for type integer: "Ada Lovelace"', 'invalid input syntax for type integer: "***"'],
    ['value "123456789012" is out of range for type integer', 'value "***" is out of range for type integer'],
    ['invalid input value for enum mood: "sad"', 'invalid input value for enum mood: "***"'],
    ['Key (ssn)=(123-45-6789) already exists.', 'Key (ssn)=(***) already exists.'],
    ['Key (lower(email), id)=(ada@example.org, 7) is not present in table "patients".', 'Key (lower(email), id)=(***) is not present in table "patients".'],
    ['Failing row contains (7, MRN-1, 123-45-6789, Ada).', 'Failing row contains (***).'],
    ['column "ssn" does not exist', 'column "ssn" does not exist'],
    ['relation "patients" does not exist', 'relation "patients" does not exist'],
    ['duplicate key value violates unique constraint "patients_ssn_key"', 'duplicate key value violates unique constraint "patients_ssn_key"'],
    ['patient 123-45-6789 (ada@example.org) was here', 'patient ***-**-6789 (<email>) was here'],
  ])('%s', (input, out) => {
    expect(maskServerText(input, d)).toBe(out);
  });
});
