// CancelRequest across replicas: psql's Ctrl-C opens a new tunnel stream, which a load balancer may
// send to another replica than the one holding the session. A replica that does not know the key
// passes it on through the shared store (NOTIFY, no table: nothing is kept), and the replica that
// issued the key cancels, after the same identity check as a local cancel. The payload carries only
// what the client already holds (its phigate-issued key) and who asked.
import type { SharedDatabase } from '../store/shared-db.js';

export const CANCEL_CHANNEL = 'phigate_cancel';

export interface RemoteCancel {
  processId: number;
  secretKey: Buffer;
  subject: string;
  issuer: string;
}

export class CancelRelay {
  private constructor(private readonly db: SharedDatabase) {}

  /** Listens for cancels other replicas pass on; `onCancel` gets each one (the caller checks the key). */
  static async open(db: SharedDatabase, onCancel: (c: RemoteCancel) => void): Promise<CancelRelay> {
    const relay = new CancelRelay(db);
    await db.listen(CANCEL_CHANNEL, {
      notify: (payload) => {
        const c = parse(payload);
        if (c) onCancel(c);
      },
      // A cancel missed while reconnecting is lost, as a CancelRequest PostgreSQL cannot match is.
      resync: () => {},
    });
    return relay;
  }

  async forward(c: RemoteCancel): Promise<void> {
    const payload = this.db.payload({ pid: c.processId, key: c.secretKey.toString('hex'), subject: c.subject, issuer: c.issuer });
    await this.db.query(`SELECT pg_notify('${CANCEL_CHANNEL}', $1)`, [payload]);
  }
}

function parse(p: Record<string, unknown>): RemoteCancel | undefined {
  if (!Number.isSafeInteger(p['pid']) || typeof p['key'] !== 'string' || !/^[0-9a-f]{8}$/.test(p['key'])
    || typeof p['subject'] !== 'string' || typeof p['issuer'] !== 'string') return undefined;
  return { processId: p['pid'] as number, secretKey: Buffer.from(p['key'], 'hex'), subject: p['subject'], issuer: p['issuer'] };
}
