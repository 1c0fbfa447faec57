// Typed failures of the evidence stores, each carrying what an operator needs to act on it; their
// codes are in common/errors.ts ERROR_TABLE.
import { PhigateError } from '../common/errors.js';

/**
 * A record could not be written (disk full, I/O error, log closed). The gateway refuses the
 * statement it was about to forward: no evidence, no statement.
 */
export class AuditWriteError extends PhigateError {
  constructor(
    readonly file: string,
    /** errno code (ENOSPC, EIO, ...) or 'closed' / 'broken'. */
    readonly fault: string,
    message: string,
    hint?: string,
  ) {
    super(message, 'audit_write_failed', hint);
    this.name = 'AuditWriteError';
  }
}

/** Another live process holds the log: two writers would fork the chain. */
export class AuditLockedError extends PhigateError {
  constructor(readonly dir: string, readonly pid: number) {
    super(`the audit log in ${dir} is in use by process ${pid}`, 'audit_locked', 'stop the other phigate server, or give this one its own --data-dir');
    this.name = 'AuditLockedError';
  }
}

/** A file that should hold audit material does not (not ours, or damaged beyond the torn-tail repair). */
export class AuditFormatError extends PhigateError {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`, 'audit_damaged');
    this.name = 'AuditFormatError';
  }
}

/** A signing key file exists but cannot be used. */
export class AuditKeyError extends PhigateError {
  constructor(readonly file: string, message: string, hint?: string) {
    super(`${file}: ${message}`, 'bad_key', hint);
    this.name = 'AuditKeyError';
  }
}
