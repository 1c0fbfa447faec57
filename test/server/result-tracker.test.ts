// The result tracker pairs backend messages with the frontend messages that caused them.
import { describe, expect, it } from 'vitest';
import { ResultTracker } from '../../src/server/result-tracker.js';
import type { FieldDescription } from '../../src/pg/index.js';

const field = (name: string, format = 0): FieldDescription => ({ name, tableOid: 16384, columnAttr: 1, typeOid: 25, typeSize: -1, typeModifier: -1, format });
const T = 0x54, D = 0x44, C = 0x43, Z = 0x5a, E = 0x45, N = 0x4e, t = 0x74, n = 0x6e;
const ONE = 0x31, TWO = 0x32, H = 0x48, d = 0x64;

describe('ResultTracker', () => {
  it('an error that arrives before the rest of its batch: what follows up to Sync gets no answer, the next batch pairs right', () => {
    const r = new ResultTracker();
    r.parse('', 'SELECT refused');
    r.bind('', '', [1]);
    r.describe('P', '');
    // The server answers the failed Parse before the client's Execute and Sync have been forwarded.
    expect(r.backend(E, () => []).kind).toBe('pass');
    r.parse('', 'PHIGATE_REFUSED_x'); // a refusal standing in for the Execute: skipped by the server too
    r.execute('');
    r.sync();
    expect(r.backend(Z, () => []).kind).toBe('pass');
    // The next statement's rows are its own, with its own description.
    r.parse('', 'SELECT ssn FROM patients');
    r.bind('', '', [1]);
    r.describe('P', '');
    r.execute('');
    r.sync();
    r.backend(ONE, () => []);
    r.backend(TWO, () => []);
    expect(r.backend(T, () => [field('ssn', 1)])).toMatchObject({ kind: 'rowDescription', shape: { sql: 'SELECT ssn FROM patients' } });
    expect(r.backend(D, () => [])).toMatchObject({ kind: 'dataRow', shape: { sql: 'SELECT ssn FROM patients', fields: [{ format: 1 }] } });
  });

  it('is idle once every forwarded message is answered or discarded after an extended-protocol error', () => {
    const r = new ResultTracker();
    expect(r.idle).toBe(true);
    r.bind('', 'missing', []);
    r.query("SET client_encoding TO 'LATIN1'"); // the server discards it: no ReadyForQuery will answer it
    expect(r.idle).toBe(false);
    r.backend(E, () => []);
    expect(r.idle).toBe(true);
    r.query('RESET ALL'); // forwarded after the error arrived: discarded too, never queued
    expect(r.idle).toBe(true);
    r.sync();
    expect(r.idle).toBe(false);
    r.backend(Z, () => []);
    r.query('RESET ALL');
    r.backend(C, () => []);
    expect(r.idle).toBe(false);
    r.backend(Z, () => []);
    expect(r.idle).toBe(true);
  });

  it('simple query: each result set gets its own description and index', () => {
    const r = new ResultTracker();
    r.query('SELECT a FROM x; SELECT b FROM y');
    expect(r.backend(T, () => [field('a')])).toMatchObject({ kind: 'rowDescription', shape: { resultIndex: 0 } });
    expect(r.backend(D, () => [])).toMatchObject({ kind: 'dataRow', shape: { resultIndex: 0, fields: [{ name: 'a' }] } });
    expect(r.backend(C, () => []).kind).toBe('pass');
    expect(r.backend(N, () => []).kind).toBe('pass');
    r.backend(T, () => [field('b')]);
    expect(r.backend(D, () => [])).toMatchObject({ kind: 'dataRow', shape: { resultIndex: 1, fields: [{ name: 'b' }] } });
    r.backend(C, () => []);
    r.backend(Z, () => []);
    // the next query starts clean
    r.query('SELECT 1');
    expect(r.backend(D, () => [])).toMatchObject({ kind: 'dataRow', shape: undefined });
  });

  it('extended: rows after Execute use the statement description and Bind\'s formats', () => {
    const r = new ResultTracker();
    r.parse('s1', 'SELECT ssn FROM patients');
    r.describe('S', 's1');
    r.sync();
    r.backend(ONE, () => []);
    r.backend(t, () => []);
    expect(r.backend(T, () => [field('ssn')])).toMatchObject({ kind: 'rowDescription' });
    r.backend(Z, () => []);
    r.bind('', 's1', [1]);
    expect(r.needsDescribe('')).toBe(false);
    r.execute('');
    r.sync();
    r.backend(TWO, () => []);
    expect(r.backend(D, () => [])).toMatchObject({ kind: 'dataRow', shape: { sql: 'SELECT ssn FROM patients', fields: [{ name: 'ssn', format: 1 }] } });
    expect(r.backend(C, () => []).kind).toBe('pass');
    expect(r.backend(Z, () => []).kind).toBe('pass');
  });

  it('a portal nobody described needs an injected Describe, whose answer is swallowed', () => {
    const r = new ResultTracker();
    r.parse('', 'SELECT mrn FROM patients');
    r.bind('', '', []);
    expect(r.needsDescribe('')).toBe(true);
    r.describe('P', '', true);
    r.execute('');
    r.sync();
    r.backend(ONE, () => []);
    r.backend(TWO, () => []);
    expect(r.backend(T, () => [field('mrn')]).kind).toBe('swallow');
    expect(r.backend(D, () => [])).toMatchObject({ kind: 'dataRow', shape: { fields: [{ name: 'mrn' }] } });
    expect(r.needsDescribe('')).toBe(false);
  });

  it('an error in the extended protocol skips to Sync', () => {
    const r = new ResultTracker();
    r.parse('', 'SELECT 1/0');
    r.bind('', '', []);
    r.describe('P', '');
    r.execute('');
    r.sync();
    r.backend(ONE, () => []);
    r.backend(TWO, () => []);
    r.backend(n, () => []);
    expect(r.backend(E, () => []).kind).toBe('pass');
    expect(r.backend(Z, () => []).kind).toBe('pass');
    r.query('SELECT 2');
    expect(r.backend(T, () => [field('x')])).toMatchObject({ kind: 'rowDescription', shape: { sql: 'SELECT 2' } });
  });

  it('COPY TO STDOUT: CopyData belongs to the copy of its statement', () => {
    const r = new ResultTracker();
    r.query('COPY patients TO STDOUT');
    expect(r.backend(H, () => [])).toMatchObject({ kind: 'copyOut', sql: 'COPY patients TO STDOUT' });
    r.setCopyFormats(0, [0, 0]);
    expect(r.backend(d, () => [])).toMatchObject({ kind: 'copyData', format: 0, columnFormats: [0, 0] });
    r.backend(0x63, () => []);
    r.backend(C, () => []);
    expect(r.backend(d, () => []).kind).toBe('pass');
  });
});
