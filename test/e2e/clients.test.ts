// Unmodified clients (psql, node-postgres) through `phigate connect` → tunnel → server → PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { startGateway, type Gw } from '../support/harness.js';
import { pgClient, psql } from '../support/clients.js';

let gw: Gw;
let port: number;

beforeAll(async () => {
  gw = await startGateway();
  const c = await gw.connect('ehr', await gw.token('alice'));
  port = c.port;
});
afterAll(async () => gw?.close());

function direct(): pg.Client {
  const { pg: db } = gw;
  return new pg.Client({ host: db.host, port: db.port, user: db.roles.scram.user, password: db.roles.scram.password, database: db.database });
}

describe('psql through the gateway', () => {
  it('runs a query as the connection\'s upstream role, over TLS upstream, whatever user the client claims', async () => {
    const r = await psql(port, ['-tA', '-c', "select current_user, (select ssl from pg_stat_ssl where pid = pg_backend_pid()), current_setting('application_name')"]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`${gw.pg.roles.scram.user}|t|psql`);
  });

  it('keeps transaction state and recovers from errors inside transactions', async () => {
    const script = [
      'CREATE TABLE IF NOT EXISTS tx_t (id int primary key);',
      'TRUNCATE tx_t;',
      'BEGIN;',
      'INSERT INTO tx_t VALUES (1);',
      'SELECT 1/0;',
      'INSERT INTO tx_t VALUES (2);',
      'ROLLBACK;',
      'BEGIN;',
      'INSERT INTO tx_t VALUES (3);',
      'COMMIT;',
      "SELECT 'rows=' || string_agg(id::text, ',') FROM tx_t;",
    ].join('\n');
    const r = await psql(port, ['-tA', '-v', 'ON_ERROR_STOP=0', '-f', '-'], { input: script });
    expect(r.stderr).toContain('division by zero');
    expect(r.stderr).toContain('current transaction is aborted');
    expect(r.stdout).toContain('rows=3');
  });

  it('COPY FROM STDIN and COPY TO STDOUT of 100k rows arrive intact', async () => {
    const rows: string[] = [];
    for (let i = 0; i < 100_000; i++) rows.push(`${i}\tname-${i}\t${(i * 7919) % 100_003}`);
    const input = `${rows.join('\n')}\n`;
    const setup = await psql(port, ['-c', 'DROP TABLE IF EXISTS copy_t; CREATE TABLE copy_t (id int, name text, n int)']);
    expect(setup.code).toBe(0);
    const load = await psql(port, ['-c', 'COPY copy_t FROM STDIN'], { input });
    expect(load.stderr).toBe('');
    expect(load.stdout.trim()).toBe('COPY 100000');
    const out = await psql(port, ['-c', 'COPY (SELECT * FROM copy_t ORDER BY id) TO STDOUT']);
    expect(out.code).toBe(0);
    expect(out.stdout.length).toBe(input.length);
    expect(createHash('sha256').update(out.stdout).digest('hex')).toBe(createHash('sha256').update(input).digest('hex'));
  });

  it('reports the server\'s own errors with SQLSTATE and position', async () => {
    const r = await psql(port, ['-v', 'VERBOSITY=verbose', '-c', 'SELECT * FROM no_such_table']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/42P01: relation "no_such_table" does not exist/);
  });
});

describe('node-postgres through the gateway', () => {
  it('reuses one prepared statement 1,000 times', async () => {
    const c = pgClient(port);
    await c.connect();
    try {
      let sum = 0;
      for (let i = 0; i < 1000; i++) {
        const r = await c.query({ name: 'square', text: 'SELECT $1::int * $1::int AS sq', values: [i] });
        sum += r.rows[0].sq as number;
      }
      expect(sum).toBe(Array.from({ length: 1000 }, (_, i) => i * i).reduce((a, b) => a + b, 0));
      const prepared = await c.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'square'");
      expect(prepared.rows[0].n).toBe(1);
    } finally {
      await c.end();
    }
  });

  it('round-trips a 10 MB bytea value, parameter in and row out', async () => {
    const c = pgClient(port);
    await c.connect();
    try {
      const blob = randomBytes(10 * 1024 * 1024);
      await c.query('CREATE TEMP TABLE big (b bytea)');
      await c.query('INSERT INTO big VALUES ($1)', [blob]);
      const r = await c.query('SELECT b, length(b) AS n, md5(b) AS h FROM big');
      expect(r.rows[0].n).toBe(blob.length);
      expect(r.rows[0].h).toBe(createHash('md5').update(blob).digest('hex'));
      expect(Buffer.compare(r.rows[0].b as Buffer, blob)).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('recovers from an error inside a transaction and from an extended-protocol error', async () => {
    const c = pgClient(port);
    await c.connect();
    try {
      await c.query('BEGIN');
      await expect(c.query('SELECT $1::int', ['not a number'])).rejects.toMatchObject({ code: '22P02' });
      await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      await c.query('ROLLBACK');
      const r = await c.query('SELECT $1::text AS v', ['after']);
      expect(r.rows[0].v).toBe('after');
    } finally {
      await c.end();
    }
  });

  it('returns the same rows as a direct connection, byte for byte', async () => {
    const sql = "SELECT g, md5(g::text), now()::date - g AS d, g * 1.5 AS f FROM generate_series(1, 5000) g";
    const via = pgClient(port);
    const dir = direct();
    await Promise.all([via.connect(), dir.connect()]);
    try {
      const [a, b] = await Promise.all([via.query({ text: sql, rowMode: 'array' }), dir.query({ text: sql, rowMode: 'array' })]);
      expect(a.rows).toEqual(b.rows);
      expect(a.fields.map((f) => f.dataTypeID)).toEqual(b.fields.map((f) => f.dataTypeID));
    } finally {
      await Promise.all([via.end(), dir.end()]);
    }
  });

  it('hands the client its own backend key, not the upstream\'s', async () => {
    const c = pgClient(port);
    await c.connect();
    try {
      const r = await c.query('SELECT pg_backend_pid() AS pid');
      const key = (c as unknown as { processID: number }).processID;
      expect(typeof key).toBe('number');
      expect(key).not.toBe(r.rows[0].pid);
    } finally {
      await c.end();
    }
  });
});
