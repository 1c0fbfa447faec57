// The CLI's error type and exit codes (docs/engineer.md "Exit codes"; scripts rely on them): the shared
// error model (common/errors.ts), re-exported here so commands keep their import path.
export { ExitCode, PhigateError } from '../common/errors.js';
