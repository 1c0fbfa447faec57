// The error model's table: every code has a valid HTTP status and exit code, codes are stable, and the
// CLI's reading of a gateway answer (tunnel/refusal.ts) and the tunnel's statuses agree with it.
import { STATUS_CODES } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_TABLE, ExitCode, PhigateError, errnoOf, isErrorCode, problemOf, type ErrorCode } from '../../src/common/errors.js';
import { PhigateError as CliPhigateError, ExitCode as CliExitCode } from '../../src/cli/errors.js';
import { ApprovalError } from '../../src/approvals/service.js';
import { AccessError } from '../../src/server/access-grants.js';
import { REFUSAL_CODES, isRefusalCode } from '../../src/tunnel/protocol.js';
import { Refused } from '../../src/server/http.js';
import { AuthError } from '../../src/auth/errors.js';
import { PolicyFileError } from '../../src/policy/errors.js';
import { AuditFormatError, AuditKeyError, AuditLockedError, AuditWriteError } from '../../src/audit/errors.js';
import { ProtocolError } from '../../src/pg/errors.js';
import { SettingsFileError } from '../../src/cli/credentials/config.js';
import { CredentialLockBusy } from '../../src/cli/credentials/lock.js';
import { parseRefusal, refusalError } from '../../src/tunnel/refusal.js';
import { tableFilterKey, tableKey } from '../../src/common/table-name.js';

const codes = Object.keys(ERROR_TABLE) as ErrorCode[];
/** Codes only the CLI or a PostgreSQL client sees: never a JSON `error` of the gateway's HTTP API. */
const NOT_ON_HTTP: ErrorCode[] = ['error', 'usage', 'unreachable', 'denied'];

describe('the error table', () => {
  it('keeps every code it has ever had, with the same surfaces (codes are wire contract)', () => {
    // Adding a code is fine (add it here too); changing or removing one breaks clients and scripts.
    expect(Object.fromEntries(codes.map((c) => [c, [ERROR_TABLE[c].http, ERROR_TABLE[c].exit, (ERROR_TABLE[c] as { sqlstate?: string }).sqlstate ?? null]]))).toEqual({
      error: [500, 1, null], usage: [400, 2, null], unreachable: [502, 5, '08001'],
      unauthenticated: [401, 3, '28000'], forbidden: [403, 4, '28000'], unknown_connection: [404, 1, '28000'],
      access_required: [403, 4, '28000'], unavailable: [503, 5, '28000'], token_misplaced: [400, 2, '28000'],
      denied: [403, 4, '42501'],
      bad_request: [400, 1, null], not_found: [404, 1, null], method_not_allowed: [405, 1, null], too_large: [413, 1, null],
      ambiguous: [400, 1, null], login_unavailable: [404, 1, null], invalid_policy: [400, 1, null],
      already_decided: [409, 1, null], not_an_approver: [403, 4, null], self_approval: [403, 4, null], unowned_service: [403, 4, null],
      reason_required: [400, 1, null], bad_duration: [400, 1, null], bad_reason: [400, 1, null], not_required: [400, 1, null], not_allowed: [400, 1, null],
      missing_token: [401, 3, '28000'], malformed_token: [401, 3, '28000'], unsupported_alg: [401, 3, '28000'], unknown_issuer: [401, 3, '28000'],
      unknown_key: [401, 3, '28000'], bad_signature: [401, 3, '28000'], expired: [401, 3, '28000'], not_yet_valid: [401, 3, '28000'],
      wrong_audience: [401, 3, '28000'], wrong_issuer: [401, 3, '28000'], missing_claim: [401, 3, '28000'], invalid_claim: [401, 3, '28000'],
      issuer_unavailable: [503, 5, '28000'],
      audit_write_failed: [503, 1, '58030'], audit_locked: [500, 1, null], audit_damaged: [500, 1, null], bad_key: [500, 1, null],
      protocol_violation: [400, 1, '08P01'],
    });
  });

  it('maps every code to an HTTP error status, a non-zero SPEC exit code and a well-formed SQLSTATE', () => {
    const exits = new Set<number>(Object.values(ExitCode));
    for (const code of codes) {
      const { http, exit, sqlstate } = ERROR_TABLE[code] as { http: number; exit: number; sqlstate?: string };
      expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(http >= 400 && http <= 599 && STATUS_CODES[http] !== undefined, `${code}: ${http}`).toBe(true);
      expect(exits.has(exit) && exit !== ExitCode.Ok, `${code}: exit ${exit}`).toBe(true);
      if (sqlstate !== undefined) expect(sqlstate, code).toMatch(/^[0-9A-Z]{5}$/);
      expect(isErrorCode(code)).toBe(true);
    }
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode('nope')).toBe(false);
  });

  it('agrees with the tunnel: its refusal statuses, and the exit the CLI makes of every answer the gateway sends', () => {
    // Every refusal code is a code of the table, refused to psql with the rejected-connection class.
    for (const code of REFUSAL_CODES) {
      expect(isErrorCode(code), code).toBe(true);
      expect((ERROR_TABLE[code] as { sqlstate?: string }).sqlstate, code).toBe('28000');
      expect(new Refused(code, 'no').status, code).toBe(ERROR_TABLE[code].http);
      expect(parseRefusal(JSON.stringify({ error: code, message: 'no' }))?.error, code).toBe(code);
    }
    expect(isRefusalCode('not_found')).toBe(false);
    expect(parseRefusal(JSON.stringify({ error: 'toString', message: 'no' }))).toBeUndefined();
    for (const code of codes.filter((c) => !NOT_ON_HTTP.includes(c))) {
      const err = new PhigateError(`a ${code} problem`, code);
      const seen = refusalError(err.status, JSON.stringify(problemOf(err)));
      expect(seen.exitCode, code).toBe(ERROR_TABLE[code].exit);
      expect(seen.message, code).toContain(`a ${code} problem`);
    }
    // A refusal's hint from the gateway reaches the CLI as the hint.
    const refusal = new PhigateError('only admins may change the policy', 'forbidden', 'ask an admin');
    expect(parseRefusal(JSON.stringify(problemOf(refusal)))).toEqual({ error: 'forbidden', message: 'only admins may change the policy', hint: 'ask an admin' });
    expect(refusalError(403, JSON.stringify(problemOf(refusal))).hint).toBe('ask an admin');
  });
});

describe('PhigateError', () => {
  it('takes its exit code, status and SQLSTATE from its code', () => {
    const e = new PhigateError('bob: not allowed', 'forbidden', 'ask an admin');
    expect([e.code, e.exitCode, e.status, e.sqlstate, e.hint]).toEqual(['forbidden', 4, 403, '28000', 'ask an admin']);
    expect(problemOf(e)).toEqual({ error: 'forbidden', message: 'bob: not allowed', hint: 'ask an admin' });
    expect(problemOf(new PhigateError('gone', 'not_found'))).toEqual({ error: 'not_found', message: 'gone' });
  });

  it('keeps the CLI form: an exit code names the generic code, and a child exit status stays as it is', () => {
    expect(CliPhigateError).toBe(PhigateError);
    expect(CliExitCode).toBe(ExitCode);
    const usage = new PhigateError('--duration needs a value', ExitCode.Usage);
    expect([usage.code, usage.exitCode]).toEqual(['usage', 2]);
    const child = new PhigateError('psql exited with 7', 7);
    expect([child.code, child.exitCode]).toEqual(['error', 7]);
    expect(new PhigateError('x').exitCode).toBe(ExitCode.Error);
    expect(new PhigateError('x', ExitCode.Unreachable).code).toBe('unreachable');
  });

  it('is the base of the approval and access errors, whose codes answer HTTP as before', () => {
    const self = new ApprovalError('self_approval', 'you cannot approve your own request');
    expect(self).toBeInstanceOf(PhigateError);
    expect([self.name, self.status, self.exitCode]).toEqual(['ApprovalError', 403, 4]);
    expect(new ApprovalError('already_decided', 'decided').status).toBe(409);
    const access = new AccessError('bad_duration', 'duration must be at most 1h');
    expect(access).toBeInstanceOf(PhigateError);
    expect([access.name, access.status, problemOf(access)]).toEqual(['AccessError', 400, { error: 'bad_duration', message: 'duration must be at most 1h' }]);
  });

  it('errnoOf reads a system error code, or its cause\'s, without casts at the call site', () => {
    expect(errnoOf(Object.assign(new Error('x'), { code: 'EADDRINUSE' }))).toBe('EADDRINUSE');
    expect(errnoOf(new Error('fetch failed', { cause: Object.assign(new Error('y'), { code: 'ECONNREFUSED' }) }))).toBe('ECONNREFUSED');
    expect(errnoOf(new Error('plain'))).toBeUndefined();
    expect(errnoOf('ENOENT')).toBeUndefined();
    expect(errnoOf(null)).toBeUndefined();
  });
});

/** Every .ts file under src/, as [path relative to the repository, text]. */
function sources(dir = join(import.meta.dirname, '..', '..', 'src')): [string, string][] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e): [string, string][] => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [[relative(join(import.meta.dirname, '..', '..'), p), readFileSync(p, 'utf8')]] : [];
  });
}

describe('every typed error goes through the table', () => {
  it('every code of the table is used: named in src/ outside the table, or what a bare exit code means', () => {
    const elsewhere = sources().filter(([p]) => p !== join('src', 'common', 'errors.ts')).map(([, t]) => t).join('\n');
    const ofExits = new Set(Object.values(ExitCode).map((x) => new PhigateError('x', x).code));
    const unused = codes.filter((c) => !ofExits.has(c) && !elsewhere.includes(`'${c}'`));
    expect(unused).toEqual([]);
  });

  it('the typed errors are PhigateErrors whose code gives their status, exit code and SQLSTATE', () => {
    const typed: [PhigateError, ErrorCode][] = [
      [new AuthError('expired', 'token expired at 12:00'), 'expired'],
      [new AuthError('issuer_unavailable', 'cannot fetch JWKS'), 'issuer_unavailable'],
      [new PolicyFileError('p.yaml', 3, 5, 'rules', 'expected a list'), 'invalid_policy'],
      [new AuditWriteError('/d/audit.log', 'ENOSPC', 'cannot write', 'free space'), 'audit_write_failed'],
      [new AuditLockedError('/d', 42), 'audit_locked'],
      [new AuditFormatError('/d/audit.log', 'not an audit log'), 'audit_damaged'],
      [new AuditKeyError('/d/key.pem', 'not a key'), 'bad_key'],
      [new ProtocolError('invalid message'), 'protocol_violation'],
      [new Refused('forbidden', 'no'), 'forbidden'],
      [new ApprovalError('self_approval', 'no'), 'self_approval'],
      [new AccessError('bad_reason', 'no'), 'bad_reason'],
    ];
    for (const [err, code] of typed) {
      expect(err, err.name).toBeInstanceOf(PhigateError);
      expect([err.code, err.status, err.exitCode, err.sqlstate], err.name)
        .toEqual([code, ERROR_TABLE[code].http, ERROR_TABLE[code].exit, (ERROR_TABLE[code] as { sqlstate?: string }).sqlstate]);
    }
    // What users saw before the errors joined the model: the same messages, hints and fields.
    expect(new PolicyFileError('p.yaml', 3, 5, 'rules', 'expected a list').message).toBe('p.yaml:3:5: rules: expected a list');
    expect(new AuditLockedError('/d', 42).hint).toBe('stop the other phigate server, or give this one its own --data-dir');
    expect(new AuditWriteError('/d/audit.log', 'ENOSPC', 'cannot write', 'free space').fault).toBe('ENOSPC');
    expect(new ProtocolError('bad', { length: 9, limit: 8 }).size).toEqual({ length: 9, limit: 8 });
    expect([new SettingsFileError('/f', 'bad').code, new CredentialLockBusy('/f', 1000).code].every(isErrorCode)).toBe(true);
  });

  it('an error class of src/ that is not a PhigateError is one of the listed internal ones (caught and turned into a typed error, or a bug)', () => {
    // Each never reaches a user as itself: its catcher says what to do about it.
    const INTERNAL = new Set([
      'ClassifierNotInitializedError', 'SyntaxFailure', 'ScramError', 'UpstreamError', 'ProtocolViolation', 'UnmaskableResult',
      'PoolWaitTimeout', 'SqlError', 'TimeArgumentError', 'StaleIndex', 'AmbiguousSession', 'CanonicalFormError',
      'RecordingLookupError', 'RecordingFormatError', 'RecordingRepairError', 'StoreUnavailableError', 'RewriteRefused',
      'UnsafePatternError', 'StoreError', 'TourAborted',
    ]);
    const direct = sources().flatMap(([, t]) => [...t.matchAll(/class (\w+) extends Error\b/g)].map((m) => m[1]!)).filter((n) => n !== 'PhigateError');
    expect(direct.filter((n) => !INTERNAL.has(n))).toEqual([]);
  });
});

describe('table names', () => {
  it('tableKey: one relation, exactly as parsed: case kept, unqualified and qualified apart', () => {
    expect(tableKey(undefined, 'patients')).toBe('patients');
    expect(tableKey('public', 'patients')).toBe('public\u0000patients');
    expect(tableKey(undefined, 'Patients')).not.toBe(tableKey(undefined, 'patients'));
    expect(tableKey('public', 'patients')).not.toBe(tableKey(undefined, 'patients'));
    // A quoted name holding a dot is not schema a, table b.
    expect(tableKey(undefined, 'a.b')).not.toBe(tableKey('a', 'b'));
    expect(new Set([tableKey('a', 'b.c'), tableKey('a.b', 'c'), tableKey(undefined, 'a.b.c')]).size).toBe(3);
  });

  it('tableFilterKey: what a person meant: lower case, quotes and schema dropped', () => {
    expect(tableFilterKey('public.Patients')).toBe('patients');
    expect(tableFilterKey('"Public"."Patients"')).toBe('patients');
    expect(tableFilterKey('patients')).toBe('patients');
    expect(tableFilterKey('db.public.visits')).toBe('visits');
    // Stored in the shared store's table lists: a change here would miss evidence shipped before it.
    expect(tableFilterKey('"a.b"')).toBe('b');
  });
});
