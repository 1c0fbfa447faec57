// The PolicyFileError a policy text is refused with (tests of the policy file's sections).
import { parsePolicyFile } from '../../src/policy/file.js';
import { PolicyFileError } from '../../src/policy/errors.js';

export function policyErrorOf(text: string, file = 'p.yaml'): PolicyFileError {
  try {
    parsePolicyFile(text, file);
  } catch (err) {
    if (err instanceof PolicyFileError) return err;
    throw err;
  }
  throw new Error('expected a PolicyFileError');
}
