// Tests of the upstream connector against the real embedded PostgreSQL and small misbehaving servers.
import { afterEach, describe, expect, it, inject } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage, DataRowMessage, DatabaseError } from 'pg-protocol/dist/messages.js';
import {
  UpstreamError, cancelUpstream, connectUpstream, parseUpstreamUrl, type UpstreamSession, type UpstreamTarget,
} from '../../src/server/upstream.js';
import { ScramClient, saslprep } from '../../src/server/upstream/scram.js';
import { freePort } from '../support/postgres.js';
import { makeTestCerts } from '../support/certs.js';

const pg = inject('pg');
const caPem = readFileSync(pg.caCert, 'utf8');

function target(role: 'scram' | 'md5' | 'trust', extra: Partial<UpstreamTarget> = {}): UpstreamTarget {
  const r = pg.roles[role];
  return {
    host: pg.host, port: pg.port, database: pg.database, user: r.user,
    password: 'password' in r ? r.password : undefined, tls: 'disable', connectTimeoutMs: 5_000, ...extra,
  };
}

const open: UpstreamSession[] = [];
const servers: net.Server[] = [];
const serverSides: net.Socket[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) {
    s.socket.end(serialize.end());
    s.socket.destroy();
  }
  for (const s of serverSides.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
}, 5_000);

async function connect(t: UpstreamTarget, params?: Record<string, string>): Promise<UpstreamSession> {
  const s = await connectUpstream(t, params);
  open.push(s);
  return s;
}

async function failure(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(UpstreamError);
    return err as UpstreamError;
  }
  throw new Error('expected an UpstreamError');
}

interface Result {
  rows: Array<Array<string | null>>;
  error?: DatabaseError;
}

/** Runs one simple Query on a returned session the way a relay would: resume, read to ReadyForQuery, pause. */
function query(session: UpstreamSession, sql: string): Promise<Result> {
  const { socket } = session;
  const parser = new Parser();
  const result: Result = { rows: [] };
  return new Promise((resolve, reject) => {
    const onMessage = (m: BackendMessage) => {
      if (m.name === 'dataRow') result.rows.push((m as DataRowMessage).fields as Array<string | null>);
      else if (m.name === 'error') result.error = m as DatabaseError;
      else if (m.name === 'readyForQuery') {
        socket.removeListener('data', onData);
        socket.removeListener('error', reject);
        socket.pause();
        resolve(result);
      }
    };
    const onData = (chunk: Buffer) => parser.parse(chunk, onMessage);
    socket.on('data', onData);
    socket.on('error', reject);
    if (session.leftover.length > 0) parser.parse(session.leftover, onMessage);
    socket.write(serialize.query(sql));
    socket.resume();
  });
}

async function scalar(session: UpstreamSession, sql: string): Promise<string | null | undefined> {
  const r = await query(session, sql);
  if (r.error) throw r.error;
  return r.rows[0]?.[0];
}

describe('connectUpstream against PostgreSQL', () => {
  it.each(['scram', 'md5', 'trust'] as const)('authenticates with %s and hands back a socket ready for queries', async (role) => {
    const s = await connect(target(role));
    expect(s.socket.isPaused()).toBe(true);
    expect(s.socket.listenerCount('data')).toBe(0);
    expect(s.tls).toBe(false);
    expect(s.transactionStatus).toBe('I');
    expect(s.leftover.length).toBe(0);
    expect(s.parameters.get('server_version')).toMatch(/^\d+/);
    expect(s.parameters.get('client_encoding')).toBe('UTF8');
    expect(s.backendKey.secretKey.length).toBe(4);
    expect(await scalar(s, 'select current_user')).toBe(pg.roles[role].user);
    expect(await scalar(s, 'select pg_backend_pid()')).toBe(String(s.backendKey.processId));
  });

  it('rejects a wrong password with 28P01 and does not echo it', async () => {
    const password = 'wrong-Ω-secret-123';
    const err = await failure(connectUpstream(target('scram', { password })));
    expect(err.kind).toBe('auth');
    expect(err.sqlstate).toBe('28P01');
    expect(err.serverFields?.C).toBe('28P01');
    expect(err.message).toContain(`${pg.host}:${pg.port}`);
    expect(err.message).not.toContain(password);
    expect(err.message).not.toContain('\n');
    const md5 = await failure(connectUpstream(target('md5', { password })));
    expect([md5.kind, md5.sqlstate]).toEqual(['auth', '28P01']);
    expect(md5.message).not.toContain(password);
  });

  it('says the password is not configured when the server asks for one', async () => {
    const err = await failure(connectUpstream(target('scram', { password: undefined })));
    expect(err.kind).toBe('auth');
    expect(err.message).toMatch(/password is not configured/);
  });

  it('reports an unknown database as a server error 3D000', async () => {
    const err = await failure(connectUpstream(target('scram', { database: 'no_such_db' })));
    expect(err.kind).toBe('server');
    expect(err.sqlstate).toBe('3D000');
    expect(err.serverFields?.M).toMatch(/no_such_db/);
  });

  it('passes startup parameters through but never user or database', async () => {
    const s = await connect(target('scram'), {
      application_name: 'phigate-test', DateStyle: 'SQL, DMY', user: 'postgres', database: 'postgres',
    });
    expect(await scalar(s, `select current_setting('application_name')`)).toBe('phigate-test');
    expect(await scalar(s, `select current_setting('DateStyle')`)).toBe('SQL, DMY');
    expect(s.parameters.get('application_name')).toBe('phigate-test');
    expect(await scalar(s, 'select current_user || \'/\' || current_database()')).toBe(`${pg.roles.scram.user}/${pg.database}`);
  });

  it('honours a client_encoding passed by the client', async () => {
    const s = await connect(target('trust'), { client_encoding: 'LATIN1' });
    expect(s.parameters.get('client_encoding')).toBe('LATIN1');
  });

  it.each([
    ['require', pg.host, undefined],
    ['verify-full', 'localhost', caPem],
    ['verify-full', '127.0.0.1', caPem],
  ] as const)('connects with tls %s to %s', async (mode, host, ca) => {
    const s = await connect(target('scram', { tls: mode, host, ca }));
    expect(s.tls).toBe(true);
    expect(s.socket).toBeInstanceOf(tls.TLSSocket);
    expect(s.socket.isPaused()).toBe(true);
    expect(s.socket.listenerCount('data')).toBe(0);
    expect(await scalar(s, 'select ssl from pg_stat_ssl where pid = pg_backend_pid()')).toBe('t');
  });

  it('refuses verify-full against a certificate from another CA, or with only the system roots', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phigate-otherca-'));
    try {
      const other = makeTestCerts(dir);
      const err = await failure(connectUpstream(target('scram', { tls: 'verify-full', host: 'localhost', ca: readFileSync(other.caCert) })));
      expect(err.kind).toBe('tls');
      expect(err.sqlstate).toBe('08001');
      expect(err.message).toContain(`localhost:${pg.port}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const noCa = await failure(connectUpstream(target('scram', { tls: 'verify-full', host: 'localhost' })));
    expect(noCa.kind).toBe('tls');
  });

  it.each(['disable', 'require'] as const)('cancels a running query (tls %s)', async (mode) => {
    const t = target('scram', { tls: mode });
    const s = await connect(t);
    const started = Date.now();
    const running = query(s, 'select pg_sleep(30)');
    await new Promise((r) => setTimeout(r, 200));
    await cancelUpstream(t, s.backendKey);
    const result = await running;
    expect(result.error?.code).toBe('57014');
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(await scalar(s, 'select 1')).toBe('1');
  });
});

// --- misbehaving servers ---------------------------------------------------------------------------

/** A local TCP server running `onConnection` per client; its sockets always read, so they see the client close. */
async function fakeServer(onConnection: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => {
    serverSides.push(socket);
    socket.on('error', () => {});
    onConnection(socket);
    socket.resume();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as net.AddressInfo).port;
}

/** Calls `onMessage` with each frontend message: the untyped startup packet first (code ''), then typed ones. */
function frontendMessages(socket: net.Socket, onMessage: (code: string, body: Buffer) => void): void {
  let buf = Buffer.alloc(0);
  let started = false;
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const head = started ? 1 : 0;
      if (buf.length < head + 4) return;
      const len = buf.readInt32BE(head);
      if (buf.length < head + len) return;
      const code = started ? String.fromCharCode(buf[0] ?? 0) : '';
      const body = buf.subarray(head + 4, head + len);
      buf = buf.subarray(head + len);
      // An SSLRequest is answered before the real startup packet arrives.
      if (!started && body.readInt32BE(0) !== 80877103) started = true;
      onMessage(code, body);
    }
  });
}

function backend(code: string, ...parts: Array<Buffer | string | number>): Buffer {
  const body = Buffer.concat(parts.map((p) => {
    if (typeof p === 'number') {
      const b = Buffer.alloc(4);
      b.writeInt32BE(p);
      return b;
    }
    return typeof p === 'string' ? Buffer.from(`${p}\0`) : p;
  }));
  const head = Buffer.alloc(5);
  head.write(code, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const authOk = backend('R', 0);
const keyData = backend('K', 4242, 99);

function fake(extra: Partial<UpstreamTarget> = {}): (port: number) => UpstreamTarget {
  return (port) => ({ host: '127.0.0.1', port, user: 'u', database: 'd', password: 'pw', tls: 'disable', connectTimeoutMs: 2_000, ...extra });
}

describe('connectUpstream failures', () => {
  it('reports a closed port as unreachable, quickly', async () => {
    const port = await freePort();
    const started = Date.now();
    const err = await failure(connectUpstream(fake()(port)));
    expect(err.kind).toBe('unreachable');
    expect(err.sqlstate).toBe('08001');
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).toMatch(/refused/);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it.each(['disable', 'require'] as const)('times out on a server that never answers (tls %s)', async (mode) => {
    let clientGone: Promise<void> | undefined;
    const port = await fakeServer((socket) => {
      clientGone = new Promise((resolve) => socket.once('close', () => resolve()));
    });
    const started = Date.now();
    const err = await failure(connectUpstream(fake({ connectTimeoutMs: 300, tls: mode })(port)));
    expect(err.kind).toBe('timeout');
    expect(err.sqlstate).toBe('08001');
    expect(err.message).toMatch(/300 ms/);
    expect(Date.now() - started).toBeLessThan(1_500);
    // The connector closed its socket rather than leaving it to the server.
    await clientGone;
  });

  it.each(['disable', 'require'] as const)('rejects a server that sends garbage (tls %s)', async (mode) => {
    const port = await fakeServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const err = await failure(connectUpstream(fake({ tls: mode })(port)));
    expect(err.kind).toBe('protocol');
    expect(err.sqlstate).toBe('08P01');
  });

  it('rejects unencrypted bytes sent along with the SSLRequest answer', async () => {
    const port = await fakeServer((socket) => socket.write(Buffer.concat([Buffer.from('S'), authOk])));
    const err = await failure(connectUpstream(fake({ tls: 'require' })(port)));
    expect(err.kind).toBe('protocol');
  });

  it('fails with kind tls when the server refuses TLS', async () => {
    const port = await fakeServer((socket) => socket.write('N'));
    const err = await failure(connectUpstream(fake({ tls: 'verify-full' })(port)));
    expect(err.kind).toBe('tls');
    expect(err.message).toMatch(/does not accept TLS/);
  });

  it('reports an ErrorResponse sent in answer to SSLRequest as a server error', async () => {
    const port = await fakeServer((socket) => socket.end(backend('E', 'SFATAL', 'C53300', 'Msorry, too many clients already', '')));
    const err = await failure(connectUpstream(fake({ tls: 'require' })(port)));
    expect([err.kind, err.sqlstate]).toEqual(['server', '53300']);
    expect(err.message).toMatch(/too many clients/);
  });

  it('answers a cleartext password request', async () => {
    let received = '';
    const port = await fakeServer((socket) => frontendMessages(socket, (code, body) => {
      if (code === '') socket.write(backend('R', 3));
      else if (code === 'p') {
        received = body.subarray(0, body.length - 1).toString();
        socket.write(Buffer.concat([authOk, keyData, backend('Z', Buffer.from('I'))]));
      }
    }));
    await connect(fake({ password: 'clear-Ω' })(port));
    expect(received).toBe('clear-Ω');
  });

  it('refuses a startup parameter containing a NUL byte before connecting', async () => {
    const err = await failure(connectUpstream(target('trust'), { application_name: 'a\0b' }));
    expect(err.kind).toBe('protocol');
  });

  it('reports a server that closes the connection mid-startup', async () => {
    const port = await fakeServer((socket) => frontendMessages(socket, () => socket.destroy()));
    const err = await failure(connectUpstream(fake()(port)));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toMatch(/closed the connection during authentication/);
  });

  it('returns startup notices, parameters in order and bytes after ReadyForQuery', async () => {
    const notice = backend('N', 'SNOTICE', 'C00000', 'Mwelcome', '');
    const after = backend('N', 'SNOTICE', 'C00000', 'Mlater', '');
    const port = await fakeServer((socket) => frontendMessages(socket, () => {
      socket.write(Buffer.concat([authOk, backend('S', 'server_version', '17.0'), notice, backend('S', 'TimeZone', 'UTC'),
        keyData, backend('Z', Buffer.from('T')), after]));
    }));
    const s = await connect(fake({ password: undefined })(port));
    expect([...s.parameters]).toEqual([['server_version', '17.0'], ['TimeZone', 'UTC']]);
    expect(s.notices).toEqual([notice]);
    expect(s.leftover).toEqual(after);
    expect(s.transactionStatus).toBe('T');
    expect(s.backendKey.processId).toBe(4242);
    expect(s.backendKey.secretKey.readInt32BE(0)).toBe(99);
  });

  it.each([
    [backend('R', 7), /GSSAPI/],
    [backend('R', 9), /SSPI/],
    [backend('R', 2), /Kerberos/],
    [backend('R', 10, 'SCRAM-SHA-256-PLUS', ''), /SCRAM-SHA-256-PLUS/],
  ])('names an unsupported authentication method (%#)', async (request, pattern) => {
    const port = await fakeServer((socket) => frontendMessages(socket, () => socket.write(request)));
    const err = await failure(connectUpstream(fake()(port)));
    expect(err.kind).toBe('auth');
    expect(err.message).toMatch(pattern);
    expect(err.message).toMatch(/not support/);
  });

  it.each(['wrong signature', 'skipped final'] as const)('refuses a SCRAM server that does not prove itself (%s)', async (how) => {
    const port = await fakeServer((socket) => frontendMessages(socket, (code, body) => {
      if (code === '') socket.write(backend('R', 10, 'SCRAM-SHA-256', ''));
      else if (code === 'p' && body.toString('latin1').startsWith('SCRAM-SHA-256\0')) {
        const clientFirst = body.subarray('SCRAM-SHA-256\0'.length + 4).toString();
        const nonce = /r=([^,]+)/.exec(clientFirst)?.[1] ?? '';
        socket.write(backend('R', 11, Buffer.from(`r=${nonce}server,s=${randomBytes(16).toString('base64')},i=4096`)));
      } else if (code === 'p') {
        socket.write(how === 'wrong signature'
          ? Buffer.concat([backend('R', 12, Buffer.from(`v=${randomBytes(32).toString('base64')}`)), authOk])
          : authOk);
      }
    }));
    const err = await failure(connectUpstream(fake()(port)));
    expect(err.kind).toBe('auth');
    expect(err.message).toMatch(how === 'wrong signature' ? /signature does not match/ : /without completing SCRAM/);
  });

  it('reports cancelUpstream to a closed port as unreachable', async () => {
    const port = await freePort();
    const err = await failure(cancelUpstream(fake()(port), { processId: 1, secretKey: Buffer.alloc(4) }));
    expect(err.kind).toBe('unreachable');
  });
});

describe('SCRAM-SHA-256', () => {
  it('matches the RFC 7677 test vector', async () => {
    const client = new ScramClient('pencil', { user: 'user', nonce: 'rOprNGfwEbeRWgbNEkqO' });
    expect(client.clientFirst()).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const final = await client.clientFinal('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    expect(final).toBe('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    client.verifyServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    expect(client.serverVerified).toBe(true);
  });

  it('refuses a server nonce that does not extend the client nonce, and absurd iteration counts', async () => {
    const client = new ScramClient('pencil', { nonce: 'abc' });
    await expect(client.clientFinal('r=xyzdef,s=AAAA,i=4096')).rejects.toThrow(/nonce/);
    await expect(new ScramClient('p', { nonce: 'abc' }).clientFinal('r=abcdef,s=AAAA,i=999999999')).rejects.toThrow(/iteration/);
  });

  it('applies SASLprep as PostgreSQL does', () => {
    expect(saslprep('plain ascii\u0007')).toBe('plain ascii\u0007');
    expect(saslprep('a\u00A0b')).toBe('a b');
    expect(saslprep('so\u00ADft')).toBe('soft');
    expect(saslprep('\u2168')).toBe('IX');
    expect(saslprep('e\u0301')).toBe('\u00E9');
    // Prohibited characters make PostgreSQL use the password as given.
    expect(saslprep('\u00E9\u0085')).toBe('\u00E9\u0085');
  });
});

describe('parseUpstreamUrl', () => {
  it.each([
    ['postgres://phigate_svc@db.internal:5432/ehr', { host: 'db.internal', port: 5432, user: 'phigate_svc', database: 'ehr' }],
    ['postgresql://u@h/d', { host: 'h', port: 5432, user: 'u', database: 'd' }],
    ['postgres://u%40x:p%2Fw%3A@h:6543/my%20db', { host: 'h', port: 6543, user: 'u@x', password: 'p/w:', database: 'my db' }],
    ['postgres://u:pw@[::1]:5433/d', { host: '::1', port: 5433, user: 'u', password: 'pw', database: 'd' }],
    ['postgres://u@[::1]/d', { host: '::1', port: 5432, user: 'u', database: 'd' }],
    ['postgres://u@127.0.0.1', { host: '127.0.0.1', port: 5432, user: 'u', database: 'u' }],
    ['postgres://u@h/d?sslmode=require', { host: 'h', port: 5432, user: 'u', database: 'd' }],
  ])('parses %s', (url, expected) => {
    expect(parseUpstreamUrl(url)).toEqual(expected);
  });

  it.each([
    ['mysql://u@h/d', /postgres:\/\//],
    ['postgres://h/d', /no user/],
    ['postgres://u:secret@/d', /no host|not a valid/],
    ['postgres://u:secret@a,b/d', /several hosts/],
    ['postgres://u:secret@h:70000/d', /not a valid|invalid port/],
    ['postgres://u:secret@h/d/e', /database name/],
    ['postgres://u:sec%zzret@h/d', /percent-encoding in its password/],
  ])('rejects %s without quoting a password', (url, pattern) => {
    let message = '';
    try {
      parseUpstreamUrl(url);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(pattern);
    expect(message).not.toMatch(/secret|sec%zz/);
  });
});
