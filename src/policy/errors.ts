// Typed error for a policy file that cannot be loaded: names the file, line, key and what was expected.
import { PhigateError } from '../common/errors.js';

/** Code `invalid_policy`: HTTP 400 from `PUT /v1/policy`, exit 1 from the CLI. */
export class PolicyFileError extends PhigateError {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly column: number | undefined,
    readonly key: string,
    readonly problem: string,
  ) {
    const where = line === undefined ? file : `${file}:${line}:${column ?? 1}`;
    super(`${where}: ${key ? `${key}: ` : ''}${problem}`, 'invalid_policy');
    this.name = 'PolicyFileError';
  }
}
