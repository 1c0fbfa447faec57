// The benchmark's own tools: the bare Node relay carries a real PostgreSQL session and closes with it,
// and strace -c summaries (as strace 5/6 print them) are read into calls per syscall.
import { afterAll, describe, expect, it, inject } from 'vitest';
import pg from 'pg';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRelay, type Relay } from '../../scripts/relay.js';
import { parseStraceSummary } from '../../scripts/bench-strace.js';
import { table } from '../../scripts/bench-measure.js';

const info = inject('pg');
const relays: Relay[] = [];
afterAll(() => Promise.all(relays.map((r) => new Promise((res) => r.server.close(res)))));

describe('bare Node relay', () => {
  it('carries a PostgreSQL session to the target and ends it when the backend goes away', async () => {
    const relay = await startRelay('127.0.0.1:0', `${info.host}:${info.port}`);
    relays.push(relay);
    expect(relay.port).not.toBe(info.port);
    const login = { user: info.superuser.user, password: info.superuser.password, database: 'ehr', ssl: false };
    const via = new pg.Client({ ...login, host: '127.0.0.1', port: relay.port });
    await via.connect();
    const r = await via.query<{ port: number; pid: number; n: string }>('SELECT inet_server_port() AS port, pg_backend_pid() AS pid, count(*) AS n FROM generate_series(1, 50000)');
    expect(r.rows[0]!.port).toBe(info.port);
    expect(r.rows[0]!.n).toBe('50000');
    const ended = new Promise<void>((res) => via.on('error', () => res()).on('end', () => res()));
    const admin = new pg.Client({ ...login, host: info.host, port: info.port });
    await admin.connect();
    await admin.query('SELECT pg_terminate_backend($1)', [r.rows[0]!.pid]);
    await admin.end();
    await ended;
  });
});

describe('relay with an evidence file (the floor of the evidence guarantee)', () => {
  it('appends one hash-chained record per client chunk before the chunk reaches PostgreSQL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relay-evidence-'));
    try {
      const file = join(dir, 'evidence.jsonl');
      const relay = await startRelay('127.0.0.1:0', `${info.host}:${info.port}`, file);
      relays.push(relay);
      const via = new pg.Client({ user: info.superuser.user, password: info.superuser.password, database: 'ehr', ssl: false, host: '127.0.0.1', port: relay.port });
      await via.connect();
      await via.query('SELECT 41 + 1 AS answer');
      // The chunk is recorded before it is forwarded, so its record exists once the answer is back.
      const records = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      await via.end();
      expect(records.some((r) => typeof r['sql'] === 'string' && r['sql'].includes('SELECT 41 + 1'))).toBe(true);
      let prev = '0'.repeat(64);
      for (const r of records) {
        expect(r['prev']).toBe(prev);
        const { hash, ...rest } = r;
        prev = createHash('sha256').update(prev).update(JSON.stringify(rest)).digest('hex');
        expect(hash).toBe(prev);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('strace -c summary', () => {
  it('reads calls per syscall, errors column or not, and the total', () => {
    const text = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 41.20    0.004120           2      2003           writev
 30.00    0.003000           1      2070        12 read
  0.00    0.000000           0         7           epoll_pwait
------ ----------- ----------- --------- --------- ----------------
100.00    0.010000           2      4080        12 total
`;
    expect(parseStraceSummary(text)).toEqual({ writev: 2003, read: 2070, epoll_pwait: 7, total: 4080 });
  });
});

describe('bench table', () => {
  it('right-aligns columns of numbers and dashes, left-aligns text', () => {
    expect(table(['path', 'TPS'], [['direct', '79,000'], ['relay', '-']]).split('\n')).toEqual([
      'path       TPS',
      'direct  79,000',
      'relay        -',
    ]);
  });
});
