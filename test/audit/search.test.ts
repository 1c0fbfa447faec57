// audit search: filter semantics on a small log, then a 1,000,000-record log (generated once, in a
// temp dir, deleted after) searched with timings printed and results checked against a full scan.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/log.js';
import { listSessions, recordMatches, searchAudit, type SearchFilters } from '../../src/audit/search.js';
import { generateSyntheticLog, plantRare, standardSearches, timeSearches } from '../../scripts/bench-audit.js';
import { readLinesSync } from '../../src/audit/lines.js';
import { openSync, closeSync, statSync } from 'node:fs';
import { statementEvent, tempDir } from './helpers.js';

describe('search semantics', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  let log: AuditLog;
  beforeAll(() => {
    log = AuditLog.open(t.dir);
    log.append({ type: 'session.start', session: 's1', user: 'alice', subject: 'alice-sub', issuer: 'https://idp', kind: 'agent', agent: 'claude', connection: 'ehr', client_addr: '127.0.0.1', application_name: 'psql' });
    log.append(statementEvent(1, { session: 's1', user: 'alice', connection: 'ehr', sql: 'SELECT * FROM Public.Patients WHERE ssn = $1', tables: ['public.patients'], decision: 'allow' }));
    log.append(statementEvent(2, { session: 's1', user: 'alice', connection: 'ehr', sql: 'DELETE FROM visits WHERE id = $1', tables: ['visits'], decision: 'block' }));
    log.append({ type: 'approval.decided', approval: 'apr-1', session: 's1', user: 'alice', connection: 'ehr', outcome: 'denied', approver: 'bob', reason: 'no' });
    log.append(statementEvent(3, { session: 's2', user: 'bob', connection: 'billing', sql: 'select 1', tables: [], decision: 'allow' }));
    log.append({ type: 'session.end', session: 's1', user: 'alice', connection: 'ehr', duration_ms: 1234, statements: 2, bytes_in: 10, bytes_out: 20, recording: { sha256: 'ab'.repeat(32), file: 's1.ndjson' } });
    log.flushIndex();
    // Appended after the last index flush: found through the log's unindexed tail.
    log.append(statementEvent(4, { session: 's3', user: 'carol', connection: 'ehr', sql: 'SELECT name FROM patients', tables: ['patients'], decision: 'allow' }));
  });
  afterAll(() => log.close());

  const seqs = (f: SearchFilters): number[] => searchAudit(t.dir, f).records.map((r) => r.seq);

  it('filters by user, connection, table (qualified or not), decision, SQL (any case), type; newest first', () => {
    expect(seqs({ user: 'alice' })).toEqual([5, 3, 2, 1, 0]);
    expect(seqs({ user: 'nobody' })).toEqual([]);
    expect(seqs({ connection: 'billing' })).toEqual([4]);
    expect(seqs({ table: 'patients' })).toEqual([6, 1]);
    expect(seqs({ table: 'PUBLIC.patients' })).toEqual([6, 1]);
    expect(seqs({ table: 'other.patients' })).toEqual([6]);
    expect(seqs({ decision: 'block' })).toEqual([2]);
    expect(seqs({ decision: 'denied' })).toEqual([3]);
    expect(seqs({ sql: 'from PUBLIC.patients' })).toEqual([1]);
    expect(seqs({ sql: 'select' })).toEqual([6, 4, 1]);
    expect(seqs({ sql: 'select', user: 'alice', table: 'patients' })).toEqual([1]);
    expect(seqs({ types: ['session.start', 'session.end'] })).toEqual([5, 0]);
    expect(seqs({ session: 's1', types: ['statement'] })).toEqual([2, 1]);
  });

  it('time range, limit and "more"', () => {
    const all = searchAudit(t.dir, {}).records;
    const at = Date.parse(all[3]!.at);
    expect(seqs({ until: at - 100_000 })).toEqual([]);
    expect(seqs({ since: at + 100_000 })).toEqual([]);
    expect(seqs({ since: at, until: at })).toEqual(all.filter((r) => Date.parse(r.at) === at).map((r) => r.seq));
    const r = searchAudit(t.dir, { limit: 2 });
    expect(r.records.map((x) => x.seq)).toEqual([6, 5]);
    expect(r.more).toBe(true);
    expect(searchAudit(t.dir, { limit: 7 }).more).toBe(false);
  });

  it('lists sessions with what their end says', () => {
    const { sessions } = listSessions(t.dir, {});
    expect(sessions).toEqual([{
      session: 's1', user: 'alice', subject: 'alice-sub', kind: 'agent', agent: 'claude', connection: 'ehr', client_addr: '127.0.0.1',
      application_name: 'psql', started_at: expect.any(String), ended_at: expect.any(String), duration_ms: 1234, statements: 2,
      recording: { sha256: 'ab'.repeat(32), file: 's1.ndjson' }, end_reason: undefined,
    }]);
    expect(listSessions(t.dir, { user: 'bob' }).sessions).toEqual([]);
  });

  it('an index that no longer matches the log is ignored, not trusted', async () => {
    const other = tempDir();
    try {
      const l2 = AuditLog.open(other.dir);
      for (let i = 0; i < 40; i++) l2.append(statementEvent(i, { user: i % 2 ? 'odd' : 'even' }));
      await l2.close();
      // Edit the log under its index: two records change length, everything between them moves.
      const lines = readFileSync(join(other.dir, 'audit.jsonl'), 'utf8').split('\n');
      lines[5] = lines[5]!.replace('"user":"odd"', '"user":"oddly"');
      lines[31] = lines[31]!.replace('"user":"odd"', '"user":"o"');
      writeFileSync(join(other.dir, 'audit.jsonl'), lines.join('\n'));
      expect(seqsIn(other.dir, { user: 'oddly' })).toEqual([5]);
      expect(seqsIn(other.dir, { user: 'odd' })).toHaveLength(18);
      expect(seqsIn(other.dir, { user: 'even' })).toHaveLength(20);
    } finally {
      other.cleanup();
    }
  });
});

const seqsIn = (dir: string, f: SearchFilters): number[] => searchAudit(dir, f).records.map((r) => r.seq);

describe('search over 1,000,000 records', () => {
  const N = 1_000_000;
  const t = tempDir('phigate-audit-1m-');
  let range: { first: number; last: number };
  afterAll(() => t.cleanup());
  beforeAll(async () => {
    let t0 = performance.now();
    range = generateSyntheticLog(t.dir, N, { extra: plantRare(N) });
    const gen = performance.now() - t0;
    t0 = performance.now();
    // Opening the log builds the index once (the gateway keeps it current afterwards).
    await AuditLog.open(t.dir).close();
    process.stdout.write(`1M records: generated in ${(gen / 1000).toFixed(1)} s (${(statSync(join(t.dir, 'audit.jsonl')).size / 1e6).toFixed(0)} MB), index built in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }, 120_000);

  it('answers each search the same cold and with the index loaded (timings: npm run bench)', () => {
    const searches = standardSearches(range);
    const [cold, warm] = [false, true].map((w) => timeSearches(t.dir, searches, { warm: w }));
    for (const [label, timings] of [['cold: index loaded per search', cold!], ['index loaded', warm!]] as const) {
      process.stdout.write(`search over 1M records (${label}):\n`);
      for (const x of timings) process.stdout.write(`  ${x.name.padEnd(34)} ${x.ms.toFixed(0).padStart(5)} ms  ${x.results} results\n`);
    }
    expect(warm!.map((x) => [x.name, x.results])).toEqual(cold!.map((x) => [x.name, x.results]));
  });

  it('finds exactly what a full scan of the log finds', () => {
    const searches = standardSearches(range);
    // One pass over every record, keeping each search's 101 newest matches.
    const expected = searches.map(() => [] as number[]);
    const fd = openSync(join(t.dir, 'audit.jsonl'), 'r');
    try {
      for (const line of readLinesSync(fd, 0, statSync(join(t.dir, 'audit.jsonl')).size, 8 << 20)) {
        const rec = JSON.parse(line.bytes.toString('utf8')) as Record<string, unknown>;
        searches.forEach((s, i) => {
          if (!recordMatches(rec, s.filters)) return;
          const e = expected[i]!;
          e.push(rec['seq'] as number);
          if (e.length > 101) e.shift();
        });
      }
    } finally {
      closeSync(fd);
    }
    searches.forEach((s, i) => {
      const r = searchAudit(t.dir, s.filters);
      const want = expected[i]!.reverse();
      expect(r.records.map((x) => x.seq), s.name).toEqual(want.slice(0, 100));
      expect(r.more, s.name).toBe(want.length > 100);
    });
    expect(expected[1]).toHaveLength(3);
    expect(expected[5]).toHaveLength(2);
  }, 120_000);
});
