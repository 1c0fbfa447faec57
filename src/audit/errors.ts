// Typed failures of the evidence stores, each carrying what an operator needs to act on it.

/**
 * A record could not be written (disk full, I/O error, log closed). The gateway refuses the
 * statement it was about to forward: no evidence, no statement.
 */
export class AuditWriteError extends Error {
  constructor(
    readonly file: string,
    /** errno code (ENOSPC, EIO, ...) or 'closed' / 'broken'. */
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'AuditWriteError';
  }
}

/** Another live process holds the log: two writers would fork the chain. */
export class AuditLockedError extends Error {
  constructor(readonly dir: string, readonly pid: number) {
    super(`the audit log in ${dir} is in use by process ${pid}`);
    this.name = 'AuditLockedError';
  }
  readonly hint = 'stop the other phigate server, or give this one its own --data-dir';
}

/** A file that should hold audit material does not (not ours, or damaged beyond the torn-tail repair). */
export class AuditFormatError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'AuditFormatError';
  }
}

/** A signing key file exists but cannot be used. */
export class AuditKeyError extends Error {
  constructor(readonly file: string, message: string, readonly hint?: string) {
    super(`${file}: ${message}`);
    this.name = 'AuditKeyError';
  }
}
