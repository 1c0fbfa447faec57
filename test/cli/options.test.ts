// CLI plumbing that needs no gateway: address parsing, server URL and token resolution, usage errors.
import { describe, expect, it } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHostPort } from '../../src/cli/options.js';
import { resolveContext, wsUrl } from '../../src/cli/context.js';
import { PhigateError } from '../../src/cli/errors.js';
import { run } from '../support/harness.js';

describe('parseHostPort', () => {
  it.each([
    ['127.0.0.1:7432', { host: '127.0.0.1', port: 7432 }],
    ['[::1]:80', { host: '::1', port: 80 }],
    ['0.0.0.0:0', { host: '0.0.0.0', port: 0 }],
    ['9000', { host: '127.0.0.1', port: 9000 }],
    [':9001', { host: '127.0.0.1', port: 9001 }],
  ])('%s', (input, expected) => expect(parseHostPort(input)).toEqual(expected));
  it.each(['host', 'h:99999', 'h:-1', 'a:b:c'])('rejects %s', (input) => expect(() => parseHostPort(input)).toThrow(/expected HOST:PORT/));
});

describe('resolveContext', () => {
  it('prefers --server over PHIGATE_SERVER and strips a trailing slash', () => {
    expect(resolveContext({ server: 'https://gw.example/' }, { PHIGATE_SERVER: 'http://other' }).serverUrl).toBe('https://gw.example');
    expect(resolveContext({}, { PHIGATE_SERVER: 'http://other:1' }).serverUrl).toBe('http://other:1');
    expect(wsUrl('https://gw.example', '/v1/tunnel/ehr')).toBe('wss://gw.example/v1/tunnel/ehr');
  });

  it('rejects a non-http server URL as a usage error', () => {
    expect(() => resolveContext({ server: 'ftp://x' }, {})).toThrow(PhigateError);
  });

  it('reads the token from the file on every use, else from PHIGATE_TOKEN, else exits 3', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phigate-ctx-'));
    const file = join(dir, 't');
    writeFileSync(file, 'one\n');
    const ctx = resolveContext({ tokenFile: file }, { PHIGATE_TOKEN: 'env' });
    expect(await ctx.token()).toBe('one');
    writeFileSync(file, 'two');
    expect(await ctx.token()).toBe('two');
    expect(await resolveContext({}, { PHIGATE_TOKEN: 'env' }).token()).toBe('env');
    await expect(resolveContext({}, { PHIGATE_HOME: dir }).token()).rejects.toMatchObject({ exitCode: 3 });
  });
});

describe('phigate binary', () => {
  it('exits 2 on an unknown command or option, 0 on --help', async () => {
    const a = run(['frobnicate']);
    expect((await a.exited).code).toBe(2);
    const b = run(['connect', 'ehr', '--bogus']);
    expect((await b.exited).code).toBe(2);
    const c = run(['--help']);
    expect((await c.exited).code).toBe(0);
    expect(c.stdout()).toMatch(/connect/);
  });

  it('`help --help`, `help -h` and `help help` print the help on stdout and exit 0; `help nope` stays a usage error', async () => {
    for (const args of [['help', '--help'], ['help', '-h'], ['help', 'help']]) {
      const p = run(args);
      expect((await p.exited).code, args.join(' ')).toBe(0);
      expect(p.stdout()).toMatch(/^Usage: phigate \[options\] \[command\]/);
      expect(p.stderr()).toBe('');
    }
    const sub = run(['help', 'demo']);
    expect((await sub.exited).code).toBe(0);
    expect(sub.stdout()).toMatch(/^Usage: phigate demo/);
    expect((await run(['help', 'nope']).exited).code).toBe(2);
  });

  it('server refuses a broken policy file with its line and key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phigate-srv-'));
    const file = join(dir, 'p.yaml');
    writeFileSync(file, 'version: 1\nconnections:\n  ehr:\n    upstream: postgres://u@h/d\n    tls: maybe\n');
    const p = run(['server', '--config', file, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'd')]);
    expect((await p.exited).code).toBe(1);
    expect(p.stderr()).toMatch(/p\.yaml:5:10: connections\.ehr\.tls: expected one of/);
  });
});

