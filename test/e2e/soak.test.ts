// The short variant of `npm run soak` that CI runs: the built soak script for 40 s (mixed clients
// through a real gateway). It must finish with no unexpected client error, every kind of client
// having done its work, and the gateway alive and answering /healthz. No timing thresholds: the
// figures it prints are for people (docs/operator.md, "Soak test").
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { BIN } from '../support/proc.js';

const SOAK = join(dirname(dirname(BIN)), 'dist', 'scripts', 'soak.js');

interface SoakResult {
  pass: boolean;
  failures: string[];
  healthz: boolean;
  gatewayDied: string | null;
  unexpectedErrors: number;
  statements: number;
  counts: Record<string, number>;
}

describe('npm run soak, short', () => {
  it('40 s of mixed clients: no unexpected error, the gateway alive and healthy', async () => {
    const child = spawn(process.execPath, [SOAK, '--duration', '40s'], {
      env: { ...process.env, SOAK_PGBENCH_RATE: '50', SOAK_SAMPLE_MS: '4000' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const line = /^soak-result (.*)$/m.exec(out);
    expect(line, out).not.toBeNull();
    const r = JSON.parse(line![1]!) as SoakResult;
    expect({ code, failures: r.failures }, out).toEqual({ code: 0, failures: [] });
    expect(r.unexpectedErrors).toBe(0);
    expect(r.gatewayDied).toBeNull();
    expect(r.healthz).toBe(true);
    for (const [kind, n] of Object.entries(r.counts)) expect(n, kind).toBeGreaterThan(0);
    expect(r.statements).toBeGreaterThan(r.counts['pgbenchTx']!);
  }, 180_000);
});
