// `phigate policy apply` for a fleet: with a shared store (`--store`), a policy an admin applies on
// one replica is published there and every other replica activates it at once (LISTEN/NOTIFY),
// recording the activation in its own evidence with source "replica". What each replica loads at
// start is still its own policy file (a restart returns a replica to its file, as without a store);
// SIGHUP reloads stay local too. A published policy another replica cannot validate is refused
// there, logged, and the old one stays: fail closed, never a half-applied policy.
import type { SharedDatabase } from '../store/shared-db.js';

export const POLICY_CHANNEL = 'phigate_policy';

export interface PublishedPolicy {
  id: number;
  version: string;
  text: string;
  by?: string;
}

export class PolicyBroadcast {
  /** The newest publication this replica has applied or seen. */
  private seen = 0;
  /** Catch-ups run one after another, so an older policy is never applied after a newer one. */
  private queue: Promise<void> = Promise.resolve();

  private constructor(private readonly db: SharedDatabase) {}

  /** Listens (the table is the store's, store/migrations.ts); `apply` is called for every policy another replica publishes. */
  static async open(db: SharedDatabase, apply: (p: PublishedPolicy) => void): Promise<PolicyBroadcast> {
    const b = new PolicyBroadcast(db);
    const last = await db.query('SELECT coalesce(max(id), 0)::bigint AS id FROM phigate.policy_activations');
    b.seen = Number((last.rows[0] as { id: string }).id);
    const catchUp = (): void => {
      b.queue = b.queue.then(() => b.newer()).then(
        (ps) => {
          // Only the newest matters: intermediate versions were superseded before we could apply them.
          const p = ps.at(-1);
          if (p) apply(p);
        },
        (err: Error) => db.log.warn('published policies could not be read', { error: err.message }),
      );
    };
    await db.listen(POLICY_CHANNEL, {
      notify: catchUp,
      resync: catchUp,
    });
    return b;
  }

  /** Publishes a policy this replica just validated; the others activate it. */
  async publish(version: string, text: string, by: string | undefined): Promise<void> {
    const r = await this.db.query(
      `WITH i AS (INSERT INTO phigate.policy_activations (version, text, applied_by, origin) VALUES ($1, $2, $3, $4) RETURNING id)
       SELECT id, pg_notify('${POLICY_CHANNEL}', json_build_object('origin', $4::text, 'id', id)::text) FROM i`,
      [version, text, by ?? null, this.db.origin]);
    this.seen = Math.max(this.seen, Number((r.rows[0] as { id: string }).id));
  }

  /** Publications by other replicas since the last one seen, oldest first. */
  private async newer(): Promise<PublishedPolicy[]> {
    const r = await this.db.query(
      'SELECT id, version, text, applied_by FROM phigate.policy_activations WHERE id > $1 AND origin <> $2 ORDER BY id', [this.seen, this.db.origin]);
    const rows = r.rows as { id: string; version: string; text: string; applied_by: string | null }[];
    if (rows.length > 0) this.seen = Number(rows[rows.length - 1]!.id);
    return rows.map((x) => ({ id: Number(x.id), version: x.version, text: x.text, ...(x.applied_by ? { by: x.applied_by } : {}) }));
  }
}
