// Maps the BackendKeyData phigate hands each client to the upstream backend it stands for, so a
// CancelRequest arriving on a new tunnel stream reaches the right PostgreSQL backend. Clients never
// see upstream process ids or secrets.
import { randomBytes, randomInt } from 'node:crypto';

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
