// pgbench through the gateway in each query mode, and cancellation of a running query from psql.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gw } from '../support/harness.js';
import { psql, runCmd } from '../support/clients.js';

let gw: Gw;
let port: number;

beforeAll(async () => {
  gw = await startGateway();
  port = (await gw.connect('ehr', await gw.token('alice'))).port;
});
afterAll(async () => gw?.close());

const conn = (): string[] => ['-h', '127.0.0.1', '-p', String(port), '-U', 'alice'];

describe('pgbench through the gateway', () => {
  it('initialises its tables (COPY, DDL, VACUUM) through the gateway', async () => {
    const r = await runCmd('pgbench', ['-i', '-s', '1', '-q', ...conn(), 'ehr'], { timeoutMs: 120_000 });
    expect(r.stderr).toMatch(/done in/);
    expect(r.code).toBe(0);
  });

  for (const mode of ['simple', 'extended', 'prepared']) {
    it(`runs -M ${mode} with 4 clients and no failed transaction`, async () => {
      const r = await runCmd('pgbench', ['-n', '-M', mode, '-c', '4', '-t', '200', ...conn(), 'ehr'], { timeoutMs: 120_000 });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/number of transactions actually processed: 800\/800/);
      expect(r.stdout).toMatch(/number of failed transactions: 0 /);
    });
  }
});

describe('cancel', () => {
  it('psql\'s Ctrl-C (a CancelRequest on a new connection) ends pg_sleep(30) through the gateway', async () => {
    let pid = 0;
    const started = Date.now();
    const running = psql(port, ['-c', 'SELECT pg_sleep(30)'], { onSpawn: (p) => (pid = p) });
    // wait until the statement is really running upstream
    for (let i = 0; i < 100; i++) {
      const q = await psql(port, ['-tA', '-c', "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'"]);
      if (q.stdout.trim() === '1') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    process.kill(pid, 'SIGINT');
    const r = await running;
    expect(r.stderr).toContain('canceling statement due to user request');
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('a CancelRequest with a made-up key cancels nothing', async () => {
    const { connect } = await import('node:net');
    let pid = 0;
    const running = psql(port, ['-tA', '-c', 'SELECT pg_sleep(1.5), 7'], { onSpawn: (p) => (pid = p) });
    expect(pid).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 300));
    await new Promise<void>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => {
        const m = Buffer.alloc(16);
        m.writeInt32BE(16, 0);
        m.writeInt32BE(80877102, 4);
        m.writeInt32BE(12345, 8);
        m.writeInt32BE(67890, 12);
        s.end(m);
      });
      s.on('close', () => resolve());
      s.on('error', reject);
      s.resume();
    });
    const r = await running;
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('|7');
  });
});
