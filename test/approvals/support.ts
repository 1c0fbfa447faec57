// Shared pieces for the approvals tests: a fake clock, identities and a typical held statement.
import type { Identity } from '../../src/auth/index.js';
import type { Clock } from '../../src/approvals/service.js';
import type { ApprovalRequestInput } from '../../src/approvals/types.js';
import type { LogFields, Logger, LogLevel } from '../../src/common/log.js';

export const ISSUER = 'https://idp.test';

export function who(name: string, groups: string[], extra: Partial<Identity> = {}): Identity {
  return { subject: name, issuer: ISSUER, name, groups, kind: 'human', expiresAt: new Date(Date.now() + 3_600_000), ...extra };
}

export function heldDelete(over: Partial<ApprovalRequestInput> = {}): ApprovalRequestInput {
  return {
    kind: 'statement',
    requester: { subject: 'alice', issuer: ISSUER, name: 'alice', groups: ['engineering'], kind: 'agent', label: 'claude' },
    sessionId: 'sess-1',
    connection: 'ehr',
    statement: 'DELETE FROM patients WHERE id = $1',
    fingerprint: 'fp-1',
    rule: 'phi-writes',
    reason: 'writes to PHI tables need a privacy officer',
    tables: ['patients'],
    approvers: ['privacy-officers'],
    timeoutMs: 15 * 60_000,
    ...over,
  };
}

/** Timers that fire only when the test moves time forward. */
export class FakeClock implements Clock {
  t = Date.parse('2026-03-01T12:00:00Z');
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const h = ++this.seq;
    this.timers.set(h, { at: this.t + ms, fn });
    return h;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  async advance(ms: number): Promise<void> {
    const until = this.t + ms;
    for (;;) {
      const due = [...this.timers].filter(([, x]) => x.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await settle();
    }
    this.t = until;
    await settle();
  }
}

/** Lets pending promise chains (store calls, listeners) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** A logger that remembers what it was told. */
export function memoryLogger(): Logger & { lines: { level: LogLevel; msg: string; fields: LogFields }[]; text(): string } {
  const lines: { level: LogLevel; msg: string; fields: LogFields }[] = [];
  const log = (level: LogLevel, msg: string, fields: LogFields = {}): void => void lines.push({ level, msg, fields });
  return {
    lines,
    text: () => lines.map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields)}`).join('\n'),
    log,
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
  };
}
