// What `phigate demo` tells a newcomer to paste: exact lines, run the way the CLI was started.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliCommand, devLoginLine, shellWord, tryItLines } from '../../src/demo/try-it.js';
import { DEV_IDENTITIES } from '../../src/auth/dev-issuer.js';

describe('demo try-it lines', () => {
  it('one client-credentials login per dev identity, --server only off the default address', () => {
    const bob = DEV_IDENTITIES.find((i) => i.name === 'bob')!;
    expect(devLoginLine('npx phigate', bob, 'http://127.0.0.1:7432'))
      .toBe('PHIGATE_CLIENT_ID=dev-bob PHIGATE_CLIENT_SECRET=dev-bob-secret npx phigate login --client-credentials --profile bob');
    expect(devLoginLine('npx phigate', bob, 'http://127.0.0.1:7433'))
      .toBe('PHIGATE_CLIENT_ID=dev-bob PHIGATE_CLIENT_SECRET=dev-bob-secret npx phigate login --client-credentials --server http://127.0.0.1:7433 --profile bob');
    const lines = tryItLines({ url: 'http://127.0.0.1:7432', cli: 'npx phigate', dataDir: '/home/x/my demo' });
    for (const i of DEV_IDENTITIES) expect(lines).toContain(`    ${devLoginLine('npx phigate', i, 'http://127.0.0.1:7432')}`);
    // Commands stand alone on their lines: no trailing comments (zsh would pass them as arguments).
    for (const l of lines.filter((x) => x.startsWith('    '))) expect(l).not.toMatch(/#/);
    expect(lines).toContain("    npx phigate audit verify --data-dir '/home/x/my demo'");
  });

  it('names the CLI as the user runs it: npx under npm, phigate when PATH has this one, else node and the script', () => {
    const dir = mkdtempSync(join(tmpdir(), 'phigate-cli-'));
    try {
      const script = join(dir, 'phigate.js');
      writeFileSync(script, '');
      expect(cliCommand({ npm_execpath: '/usr/lib/npm-cli.js', PATH: '' }, script)).toBe('npx phigate');
      expect(cliCommand({ PATH: '/nonexistent' }, script)).toBe(`node ${script}`);
      const bin = join(dir, 'bin');
      symlinkSync(dir, bin);
      symlinkSync(script, join(dir, 'phigate'));
      expect(cliCommand({ PATH: `/nonexistent:${bin}` }, script)).toBe('phigate');
      expect(shellWord("it's here")).toBe(`'it'\\''s here'`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
