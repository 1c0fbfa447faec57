// Exit codes (docs/engineer.md "Exit codes"; scripts rely on them, so they never change) and the error type every command throws to reach them.
export const ExitCode = {
  Ok: 0,
  Error: 1,
  Usage: 2,
  NotAuthenticated: 3,
  Denied: 4,
  Unreachable: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error a user can act on: one line of message, an optional hint, and the exit code. */
export class PhigateError extends Error {
  constructor(
    message: string,
    /** One of ExitCode, or a child's own code passed through by `phigate exec`. */
    readonly exitCode: number = ExitCode.Error,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'PhigateError';
  }
}
