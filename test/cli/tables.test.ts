// The CLI's column tables line up by terminal columns (ui/width.ts), not by UTF-16 code units: names
// in CJK, with combining marks or emoji keep every later column where the header puts it.
import { describe, expect, it } from 'vitest';
import { renderConnections } from '../../src/cli/commands/connections.js';
import { renderSessions } from '../../src/audit/format.js';
import { displayWidth, padEndWidth } from '../../src/ui/width.js';

/** The terminal column where `needle` starts on `line`. */
const columnOf = (line: string, needle: string): number => displayWidth(line.slice(0, line.indexOf(needle)));

describe('CLI tables', () => {
  it('padEndWidth pads to columns', () => {
    expect(padEndWidth('病院', 6)).toBe('病院  ');
    expect(padEndWidth('e\u0301', 3)).toBe('e\u0301  ');
    expect(padEndWidth('abcdef', 3)).toBe('abcdef');
  });

  it('phigate connections: TYPE and DATABASE line up under wide and combining names', () => {
    const out = renderConnections({
      server: 'https://gw', connections: [
        { name: '病院', type: 'postgres', database: 'ehr' },
        { name: 'cafe\u0301', type: 'postgres', database: 'ops' },
        { name: 'plain-ascii', type: 'postgres', database: 'x' },
      ],
    }).trimEnd().split('\n');
    const at = columnOf(out[0]!, 'TYPE');
    for (const line of out.slice(1)) expect(columnOf(line, 'postgres'), line).toBe(at);
  });

  it('phigate audit sessions: the columns after a wide user name stay under their headers', () => {
    const row = (session: string, user: string) => ({
      session, user, connection: 'ehr', started_at: '2026-01-02T03:04:05.000Z', ended_at: '2026-01-02T03:05:05.000Z', duration_ms: 60_000, statements: 3,
    });
    const out = renderSessions([row('s-1', '山田太郎'), row('s-2', 'bob'), row('s-3', '👩‍⚕️nurse')], { width: 200 }).trimEnd().split('\n');
    const at = columnOf(out[0]!, 'CONNECTION');
    for (const line of out.slice(1)) expect(columnOf(line, 'ehr'), line).toBe(at);
  });
});
