// Typed error for a policy file that cannot be loaded: names the file, line, key and what was expected.
export class PolicyFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly column: number | undefined,
    readonly key: string,
    readonly problem: string,
  ) {
    const where = line === undefined ? file : `${file}:${line}:${column ?? 1}`;
    super(`${where}: ${key ? `${key}: ` : ''}${problem}`);
    this.name = 'PolicyFileError';
  }
}
