// Smoke test of the test harness itself: the embedded PostgreSQL answers over TLS and plain TCP.
import { describe, expect, it, inject } from 'vitest';
import { readFileSync } from 'node:fs';
import pg from 'pg';

describe('test harness', () => {
  it('reaches the embedded PostgreSQL with each auth method', async () => {
    const info = inject('pg');
    for (const role of [info.roles.scram, info.roles.md5, info.roles.trust]) {
      const c = new pg.Client({ host: info.host, port: info.port, database: info.database, user: role.user,
        password: 'password' in role ? (role as { password: string }).password : undefined });
      await c.connect();
      const r = await c.query('select current_user as u');
      expect(r.rows[0].u).toBe(role.user);
      await c.end();
    }
    const tls = new pg.Client({ host: 'localhost', port: info.port, database: info.database, user: info.roles.scram.user,
      password: info.roles.scram.password, ssl: { ca: readFileSync(info.caCert, 'utf8') } });
    await tls.connect();
    const r = await tls.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    expect(r.rows[0].ssl).toBe(true);
    await tls.end();
  });
});
