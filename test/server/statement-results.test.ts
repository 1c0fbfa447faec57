// StatementResults: each forwarded Query or Execute is completed by the backend messages that answer
// it, in order, including pipelines, errors that make the server skip to Sync, and refused messages.
import { describe, expect, it } from 'vitest';
import { StatementResults } from '../../src/server/statement-results.js';

const C = 0x43;
const E = 0x45;
const Z = 0x5a;
const I = 0x49;
const s = 0x73;
const PARSE_COMPLETE = 0x31;
const BIND_COMPLETE = 0x32;
const ROW_DESCRIPTION = 0x54;
const DATA_ROW = 0x44;

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('StatementResults', () => {
  it('completes a simple query at its ReadyForQuery, with rows summed over the statements of the string', () => {
    const c = clock();
    const r = new StatementResults<string>(c.now);
    r.query('q');
    expect(r.backend(ROW_DESCRIPTION)).toEqual([]);
    expect(r.backend(DATA_ROW)).toEqual([]);
    expect(r.backend(C, { tag: 'INSERT 0 2' })).toEqual([]);
    expect(r.backend(C, { tag: 'UPDATE 1' })).toEqual([]);
    expect(r.backend(C, { tag: 'COMMIT' })).toEqual([]);
    c.advance(7);
    expect(r.backend(Z)).toEqual([{ ref: 'q', durationMs: 7, rows: 3, tag: 'COMMIT' }]);
    expect(r.pending).toBe(0);
  });

  it('gives each pipelined query its own result, and keeps the first error of a query', () => {
    const r = new StatementResults<string>();
    r.query('a');
    r.query('b');
    r.backend(C, { tag: 'SELECT 2' });
    expect(r.backend(Z).map((o) => [o.ref, o.rows, o.tag])).toEqual([['a', 2, 'SELECT 2']]);
    r.backend(E, { code: '22012' });
    expect(r.backend(Z)).toMatchObject([{ ref: 'b', rows: 0, error: '22012' }]);
  });

  it('completes each Execute of a pipeline on its own answer; after an error the rest of the batch is skipped', () => {
    const c = clock();
    const r = new StatementResults<string>(c.now);
    r.execute('e1');
    r.execute('e2');
    r.execute('e3');
    r.sync();
    r.execute('e4');
    r.sync();
    expect(r.pending).toBe(4);
    r.backend(PARSE_COMPLETE);
    r.backend(BIND_COMPLETE);
    c.advance(2);
    expect(r.backend(C, { tag: 'SELECT 1' })).toEqual([{ ref: 'e1', durationMs: 2, rows: 1, tag: 'SELECT 1' }]);
    expect(r.backend(E, { code: '22012' })).toEqual([{ ref: 'e2', durationMs: 2, rows: 0, error: '22012' }]);
    expect(r.backend(Z)).toEqual([{ ref: 'e3', durationMs: 2, rows: 0, skipped: true }]);
    // the next batch is unaffected
    expect(r.backend(C, { tag: 'DELETE 4' })).toMatchObject([{ ref: 'e4', rows: 4, tag: 'DELETE 4' }]);
    expect(r.backend(Z)).toEqual([]);
    expect(r.pending).toBe(0);
  });

  it('marks a portal stopped by a row limit as suspended, and an empty query as done', () => {
    const r = new StatementResults<string>();
    r.execute('first-10');
    r.execute('next-10');
    r.execute('empty');
    r.sync();
    expect(r.backend(s)).toMatchObject([{ ref: 'first-10', suspended: true }]);
    expect(r.backend(C, { tag: 'SELECT 3' })).toMatchObject([{ ref: 'next-10', rows: 3 }]);
    expect(r.backend(I)).toMatchObject([{ ref: 'empty', rows: 0 }]);
    expect(r.backend(Z)).toEqual([]);
  });

  it('consumes the answers of messages that were not recorded (refused ones) without reporting them', () => {
    const r = new StatementResults<string>();
    r.query(undefined); // a refused Query: the server answers our stand-in with an error
    r.query('after');
    r.execute(undefined);
    r.execute('skipped');
    r.sync();
    expect(r.backend(E, { code: '42601' })).toEqual([]);
    expect(r.backend(Z)).toEqual([]);
    r.backend(C, { tag: 'SELECT 1' });
    expect(r.backend(Z)).toMatchObject([{ ref: 'after', rows: 1 }]);
    expect(r.backend(E, { code: '42601' })).toEqual([]);
    expect(r.backend(Z)).toMatchObject([{ ref: 'skipped', skipped: true }]);
  });

  it('ignores answers nothing is waiting for (a Sync alone, notices, an idle error)', () => {
    const r = new StatementResults<string>();
    expect(r.backend(E, { code: '57P01' })).toEqual([]);
    expect(r.backend(Z)).toEqual([]);
    r.sync();
    expect(r.backend(E, { code: '42P01' })).toEqual([]);
    expect(r.backend(Z)).toEqual([]);
    expect(r.pending).toBe(0);
  });
});
