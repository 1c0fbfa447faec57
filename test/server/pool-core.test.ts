// The upstream pool's pure decisions: the `pool` policy key, when a given-back connection is reset
// or closed, what the reset and prepare statements are, and how their answers are judged.
import { describe, expect, it } from 'vitest';
import { parsePolicyFile } from '../../src/policy/file.js';
import { DEFAULT_LIMITS } from '../../src/policy/limits.js';
import { DEFAULT_POOL_IDLE_TIMEOUT_MS, DEFAULT_POOL_MAX_LIFETIME_MS, poolSettings } from '../../src/policy/pool.js';
import { BackendFramer, errorResponse, parameterStatus, readyForQuery } from '../../src/pg/index.js';
import {
  ScriptReader, acquireStep, prepareQuery, releaseVerdict, resetMessages, resetOutcome, type ScriptResult,
} from '../../src/server/pool/core.js';
import { policyErrorOf } from '../support/policy-errors.js';

const conn = (pool: string): string => `version: 1
connections:
  ehr: { upstream: "postgres://svc@127.0.0.1:5432/ehr", tls: disable${pool} }
`;

describe('connections.NAME.pool', () => {
  it('is on by default, sized to the connection\'s session ceiling', () => {
    const c = parsePolicyFile(conn('')).connections.get('ehr')!;
    expect(poolSettings(c.pool, DEFAULT_LIMITS, c.maxSessions)).toEqual({
      size: DEFAULT_LIMITS.sessionsPerConnection, idleTimeoutMs: DEFAULT_POOL_IDLE_TIMEOUT_MS, maxLifetimeMs: DEFAULT_POOL_MAX_LIFETIME_MS,
    });
    const capped = parsePolicyFile(conn(', max_sessions: 6')).connections.get('ehr')!;
    expect(poolSettings(capped.pool, DEFAULT_LIMITS, capped.maxSessions)?.size).toBe(6);
  });

  it('is off with false, and takes size, idle_timeout and max_lifetime', () => {
    const off = parsePolicyFile(conn(', pool: false')).connections.get('ehr')!;
    expect(poolSettings(off.pool, DEFAULT_LIMITS, undefined)).toBeUndefined();
    const c = parsePolicyFile(conn(', pool: { size: 3, idle_timeout: 30s, max_lifetime: 2h }')).connections.get('ehr')!;
    expect(poolSettings(c.pool, DEFAULT_LIMITS, 9)).toEqual({ size: 3, idleTimeoutMs: 30_000, maxLifetimeMs: 7_200_000 });
  });

  it('refuses a bad size or duration, naming the key', () => {
    expect(policyErrorOf(conn(', pool: { size: 0 }')).message).toMatch(/connections\.ehr\.pool\.size.*positive whole number/);
    expect(policyErrorOf(conn(', pool: { idle_timeout: soon }')).message).toMatch(/connections\.ehr\.pool\.idle_timeout.*duration/);
    expect(policyErrorOf(conn(', pool: { min: 1 }')).message).toMatch(/connections\.ehr\.pool\.min.*unknown key/);
  });
});

describe('releaseVerdict', () => {
  const fresh = { createdAt: 1_000, generation: 1, cancelsInFlight: 0 };
  it('resets a quiet connection, rolling back an open transaction first', () => {
    expect(releaseVerdict({ quiet: true, status: 'I' }, fresh, 2_000, 60_000, 1, false)).toEqual({ action: 'reset', rollback: false });
    expect(releaseVerdict({ quiet: true, status: 'T' }, fresh, 2_000, 60_000, 1, false)).toEqual({ action: 'reset', rollback: true });
    expect(releaseVerdict({ quiet: true, status: 'E' }, fresh, 2_000, 60_000, 1, false)).toEqual({ action: 'reset', rollback: true });
  });
  it('closes a busy connection, one of an older generation, an old one, and all when retired', () => {
    expect(releaseVerdict({ quiet: false, status: 'I' }, fresh, 2_000, 60_000, 1, false).action).toBe('close');
    expect(releaseVerdict({ quiet: true, status: 'I' }, fresh, 2_000, 60_000, 2, false).action).toBe('close');
    expect(releaseVerdict({ quiet: true, status: 'I' }, fresh, 61_000, 60_000, 1, false).action).toBe('close');
    expect(releaseVerdict({ quiet: true, status: 'I' }, fresh, 2_000, 60_000, 1, true).action).toBe('close');
  });
});

/** The text of each simple Query in `bytes`. */
function queries(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let off = 0; off < bytes.length;) {
    const len = bytes.readInt32BE(off + 1);
    expect(String.fromCharCode(bytes[off]!)).toBe('Q');
    out.push(bytes.toString('utf8', off + 5, off + len));
    off += 1 + len;
  }
  return out.map((q) => q.replace(/\0$/, ''));
}

describe('reset and prepare statements', () => {
  it('resets with DISCARD ALL (after ROLLBACK when in a transaction), each its own Query, then checks extensions', () => {
    const plain = resetMessages(false);
    expect(queries(plain.bytes).slice(0, 1)).toEqual(['DISCARD ALL']);
    expect(plain.readies).toBe(2);
    const rolled = resetMessages(true);
    expect(queries(rolled.bytes).slice(0, 2)).toEqual(['ROLLBACK', 'DISCARD ALL']);
    expect(queries(rolled.bytes)[2]).toMatch(/pg_extension.*'dblink'.*'postgres_fdw'/);
  });

  it('applies startup parameters with set_config, quoted, application_name always, client_encoding last, others ignored', () => {
    expect(queries(prepareQuery({}))).toEqual(["SELECT pg_catalog.set_config('application_name', '', false)"]);
    const q = queries(prepareQuery({ client_encoding: 'UTF8', application_name: "it's", DateStyle: 'ISO, DMY', search_path: 'a, b', options: '-c x=y' }))[0]!;
    expect(q).toBe("SELECT pg_catalog.set_config('application_name', 'it''s', false), pg_catalog.set_config('datestyle', 'ISO, DMY', false), "
      + "pg_catalog.set_config('search_path', 'a, b', false), pg_catalog.set_config('client_encoding', 'UTF8', false)");
  });
});

function read(readies: number, ...messages: Buffer[]): ScriptResult {
  const reader = new ScriptReader(readies);
  const frames = new BackendFramer().push(Buffer.concat(messages));
  if (!Array.isArray(frames)) throw frames;
  for (const f of frames) if (reader.frame(f)) break;
  return reader.result;
}

const dataRow = (v: string): Buffer => {
  const b = Buffer.alloc(1 + 4 + 2 + 4 + v.length);
  b.write('D', 0);
  b.writeInt32BE(b.length - 1, 1);
  b.writeInt16BE(1, 5);
  b.writeInt32BE(v.length, 7);
  b.write(v, 11);
  return b;
};

describe('ScriptReader and resetOutcome', () => {
  it('accepts a clean reset and keeps the reported settings', () => {
    const r = read(2, parameterStatus('application_name', 'phigate-pool'), readyForQuery('I'), dataRow('0'), readyForQuery('I'));
    expect(r.parameters).toEqual([['application_name', 'phigate-pool']]);
    expect(resetOutcome(r)).toEqual({ ok: true });
  });
  it('refuses an error, a transaction left open, a stateful extension and a FATAL', () => {
    expect(resetOutcome(read(2, errorResponse({ severity: 'ERROR', code: '25001', message: 'x' }), readyForQuery('T'), dataRow('0'), readyForQuery('T'))).ok).toBe(false);
    expect(resetOutcome(read(2, readyForQuery('T'), dataRow('0'), readyForQuery('T'))).ok).toBe(false);
    expect(resetOutcome(read(2, readyForQuery('I'), dataRow('1'), readyForQuery('I')))).toMatchObject({ ok: false, reason: expect.stringMatching(/extension/) });
    expect(resetOutcome(read(2, errorResponse({ severity: 'FATAL', code: '57P01', message: 'terminating' })))).toMatchObject({ ok: false, reason: expect.stringMatching(/ended/) });
  });
});

describe('acquireStep', () => {
  it('takes an idle connection, waits for one being reset, opens while there is room, else waits', () => {
    expect(acquireStep({ idle: 1, total: 5, resetting: 0, waiting: 0, size: 5 })).toBe('take');
    expect(acquireStep({ idle: 0, total: 2, resetting: 1, waiting: 0, size: 5 })).toBe('wait');
    expect(acquireStep({ idle: 0, total: 2, resetting: 1, waiting: 1, size: 5 })).toBe('open');
    expect(acquireStep({ idle: 0, total: 5, resetting: 0, waiting: 0, size: 5 })).toBe('wait');
  });
});
