// The lint rule that keeps protocol message types named outside the codec (eslint.config.js): a bare
// byte compared with a message's type fails in src/server, the named constant passes, and src/pg
// (where the bytes are spelled) is exempt.
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

const BARE = `declare const f: { type: number };
export const a = f.type === 0x44;
export function b(type: number): number {
  switch (type) { case 0x5a: return 1; default: return 0; }
}
`;
const NAMED = `import { BackendType } from '../pg/index.js';
declare const f: { type: number; kind: string };
export const a = f.type === BackendType.DataRow || f.kind === 'x';
export function b(type: number): number {
  switch (type) { case BackendType.ReadyForQuery: return 1; default: return 0; }
}
`;

async function restricted(code: string, path: string): Promise<number[]> {
  const [result] = await new ESLint({ cwd: ROOT }).lintText(code, { filePath: join(ROOT, path) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-syntax').map((m) => m.line);
}

describe('bare message type bytes (eslint no-restricted-syntax)', () => {
  it('fails on f.type === 0x44 and case 0x5a outside src/pg, passes named types and src/pg', async () => {
    expect(await restricted(BARE, 'src/server/fixture.ts')).toEqual([2, 4]);
    expect(await restricted(NAMED, 'src/server/fixture.ts')).toEqual([]);
    expect(await restricted(BARE, 'src/pg/fixture.ts')).toEqual([]);
    // The session (once exempt while it was one file) is covered like the rest of src/server.
    expect(await restricted(BARE, 'src/server/session/fixture.ts')).toEqual([2, 4]);
  });
});
