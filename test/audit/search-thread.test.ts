// SearchThread: audit searches and session lists answered from a worker thread (the compiled worker
// under dist/, which `npm test` builds first) exactly as inline, errors passed on, and a lost worker
// replaced; without a compiled worker the same answers come inline.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/log.js';
import { listSessions, searchAudit } from '../../src/audit/search.js';
import { SearchThread } from '../../src/audit/search-thread.js';
import { statementEvent, tempDir } from './helpers.js';

const COMPILED = new URL('../../dist/src/audit/search-worker.js', import.meta.url);

describe('SearchThread', () => {
  const t = tempDir();
  let log: AuditLog;
  beforeAll(() => {
    log = AuditLog.open(t.dir);
    log.append({ type: 'session.start', session: 's1', user: 'alice', subject: 'a', issuer: 'https://idp', kind: 'human', connection: 'ehr', client_addr: '127.0.0.1', application_name: 'psql' });
    for (let i = 0; i < 50; i++) log.append(statementEvent(i, { session: 's1', user: i % 2 ? 'alice' : 'bob', connection: 'ehr', sql: `SELECT ${i} FROM patients`, tables: ['patients'], decision: 'allow' }));
    log.append({ type: 'session.end', session: 's1', user: 'alice', connection: 'ehr', duration_ms: 5, statements: 50, bytes_in: 1, bytes_out: 2 });
    log.flushIndex();
  });
  afterAll(() => {
    log.close();
    t.cleanup();
  });

  it('answers from a worker thread exactly as the functions do inline', async () => {
    const th = new SearchThread(COMPILED);
    expect(th.threaded).toBe(true);
    try {
      const [a, b] = await Promise.all([th.search(t.dir, { user: 'alice', limit: 7 }), th.search(t.dir, { sql: 'select 4', table: 'patients' })]);
      const strip = <T extends { elapsedMs: number }>(r: T): Omit<T, 'elapsedMs'> => ({ ...r, elapsedMs: undefined });
      expect(strip(a)).toEqual(strip(searchAudit(t.dir, { user: 'alice', limit: 7 })));
      expect(b.records.map((r) => r['sql'])).toEqual(['SELECT 49 FROM patients', 'SELECT 48 FROM patients', 'SELECT 47 FROM patients', 'SELECT 46 FROM patients', 'SELECT 45 FROM patients', 'SELECT 44 FROM patients', 'SELECT 43 FROM patients', 'SELECT 42 FROM patients', 'SELECT 41 FROM patients', 'SELECT 40 FROM patients', 'SELECT 4 FROM patients']);
      const s = await th.sessions(t.dir, { user: 'alice' });
      expect(s.sessions).toEqual(listSessions(t.dir, { user: 'alice' }).sessions);
      expect(s.sessions[0]).toMatchObject({ session: 's1', statements: 50 });
    } finally {
      await th.close();
    }
  });

  it('passes errors on, replaces a worker that died, and fails what waits when closed', async () => {
    const th = new SearchThread(COMPILED);
    // A log that cannot be read (a directory where the file should be): its error comes back.
    const bad = join(t.dir, 'bad');
    mkdirSync(join(bad, 'audit.jsonl'), { recursive: true });
    await expect(th.search(bad, { user: 'alice' })).rejects.toThrow(/EISDIR|directory/);
    // Kill the worker behind its back: the next search gets a new one.
    await (th as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    expect((await th.search(t.dir, { user: 'bob' })).records).toHaveLength(25);
    const waiting = expect(th.search(t.dir, { user: 'bob' })).rejects.toThrow(/shutting down/);
    await th.close();
    await waiting;
    await expect(th.search(t.dir, {})).rejects.toThrow(/shutting down/);
  });

  it('runs inline where no compiled worker exists', async () => {
    const th = new SearchThread(new URL('./no-such-worker.js', import.meta.url));
    expect(th.threaded).toBe(false);
    expect((await th.search(t.dir, { user: 'bob', limit: 3 })).records.map((r) => r.seq)).toEqual(searchAudit(t.dir, { user: 'bob', limit: 3 }).records.map((r) => r.seq));
    await th.close();
  });
});
