// Maps the BackendKeyData phigate hands each client to the upstream backend it stands for, so a
// CancelRequest arriving on a new tunnel stream reaches the right PostgreSQL backend. Clients never
// see upstream process ids or secrets.
import { randomBytes, randomInt } from 'node:crypto';
import type { LogFields, Logger } from '../common/log.js';

export interface CancelTarget {
  sessionId: string;
  subject: string;
  issuer: string;
  cancel: () => Promise<void>;
}

export class CancelRegistry {
  private readonly byKey = new Map<string, CancelTarget>();

  /** Issues a fresh client-visible key for a session. */
  register(target: CancelTarget): { processId: number; secretKey: Buffer } {
    for (;;) {
      const processId = randomInt(1, 0x7fffffff);
      const secretKey = randomBytes(4);
      const key = CancelRegistry.key(processId, secretKey);
      if (this.byKey.has(key)) continue;
      this.byKey.set(key, target);
      return { processId, secretKey };
    }
  }

  lookup(processId: number, secretKey: Buffer): CancelTarget | undefined {
    return this.byKey.get(CancelRegistry.key(processId, secretKey));
  }

  /**
   * A CancelRequest for a key from `who` (through this replica or passed on by another): cancels
   * the key's session's statement when `who` is that session's identity. 'unknown' when this
   * registry did not issue the key (nothing is logged then: the caller knows what that means).
   */
  cancel(processId: number, secretKey: Buffer, who: { subject: string; issuer: string }, log: Logger, fields: LogFields = {}): 'unknown' | 'refused' | 'sent' {
    const target = this.lookup(processId, secretKey);
    if (!target) return 'unknown';
    if (target.subject !== who.subject || target.issuer !== who.issuer) {
      log.warn('cancel request refused: key belongs to another identity', { subject: who.subject, target: target.sessionId, ...fields });
      return 'refused';
    }
    log.info('cancel request', { session: target.sessionId, subject: who.subject, ...fields });
    target.cancel().catch((err: Error) => log.warn('cancel request failed', { session: target.sessionId, error: err.message }));
    return 'sent';
  }

  unregister(processId: number, secretKey: Buffer): void {
    this.byKey.delete(CancelRegistry.key(processId, secretKey));
  }

  get size(): number {
    return this.byKey.size;
  }

  private static key(processId: number, secretKey: Buffer): string {
    return `${processId}:${secretKey.toString('hex')}`;
  }
}
