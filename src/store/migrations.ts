// The layout of the shared store's `phigate` schema, as one ordered list of numbered steps. Every
// table any module keeps in the store is created here, never beside the module that uses it, so the
// schema a replica needs is applied once at open (`SharedDatabase.open`) in a known order, and a
// change to it is a new step appended to the list, never an edit of an applied one.
//
// Each applied step is recorded in `phigate.meta` (`migration.<n>` → its name) in the same
// transaction that runs it, and `schema_version` is raised to the highest step applied: replicas of
// an older phigate compare that number and refuse a store laid out by a newer one. Stores set up
// before steps were recorded (schema_version 1, no `migration.*` keys) hold some or all of step 1's
// tables: step 1 is written with IF NOT EXISTS throughout, so running it on such a store completes
// whatever is missing and changes nothing else. Later steps run exactly once and need not be
// idempotent.

export interface StoreMigration {
  /** 1, 2, 3, ... in order; never reused. `schema_version` is the last one applied. */
  version: number;
  /** Recorded in phigate.meta; says what the step is for. */
  name: string;
  /** DDL, run in one transaction with the step's record. */
  sql: string;
}

/** Where the applied steps are recorded; created before any step runs. */
export const META_SQL = `
CREATE SCHEMA IF NOT EXISTS phigate;
CREATE TABLE IF NOT EXISTS phigate.meta (key text PRIMARY KEY, value text NOT NULL);`;

/** Approval requests shared by the replicas (approvals/pg-store.ts). */
const APPROVALS_V1 = `
CREATE TABLE IF NOT EXISTS phigate.approvals (
  id text PRIMARY KEY,
  status text NOT NULL,
  record jsonb NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  settled_at timestamptz
);
CREATE INDEX IF NOT EXISTS approvals_pending ON phigate.approvals (created_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS approvals_settled ON phigate.approvals (settled_at DESC) WHERE status <> 'pending';
CREATE INDEX IF NOT EXISTS approvals_access ON phigate.approvals ((record #>> '{input,requester,subject}'), settled_at DESC)
  WHERE status = 'approved' AND record #>> '{input,kind}' = 'access';`;

/**
 * Every replica's shipped evidence (audit/shipper.ts; read by audit/shared-*.ts): chains, their
 * lines byte for byte, signed checkpoints, the policy texts records name, sealed recordings.
 */
const EVIDENCE_V1 = `
CREATE TABLE IF NOT EXISTS phigate.audit_chains (
  chain text PRIMARY KEY,
  public_key text NOT NULL,
  first_seen timestamptz NOT NULL DEFAULT now(),
  shipped_seq bigint NOT NULL DEFAULT -1,
  shipped_bytes bigint NOT NULL DEFAULT 0,
  checkpoint_bytes bigint NOT NULL DEFAULT 0,
  shipped_at timestamptz
);
CREATE TABLE IF NOT EXISTS phigate.audit_records (
  chain text NOT NULL,
  seq bigint NOT NULL,
  at timestamptz NOT NULL,
  type text NOT NULL,
  usr text,
  connection text,
  session text,
  decision text,
  tables jsonb,
  table_keys text[],
  sql_key text,
  line text NOT NULL,
  PRIMARY KEY (chain, seq)
);
CREATE INDEX IF NOT EXISTS audit_records_at ON phigate.audit_records (at DESC, chain DESC, seq DESC);
CREATE INDEX IF NOT EXISTS audit_records_session ON phigate.audit_records (session, type) WHERE session IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_records_user ON phigate.audit_records (usr, at DESC);
CREATE INDEX IF NOT EXISTS audit_records_tables ON phigate.audit_records USING gin (table_keys);
CREATE TABLE IF NOT EXISTS phigate.audit_checkpoints (
  chain text NOT NULL,
  seq bigint NOT NULL,
  line text NOT NULL,
  PRIMARY KEY (chain, seq)
);
CREATE TABLE IF NOT EXISTS phigate.policies (
  version text PRIMARY KEY,
  text text NOT NULL
);
CREATE TABLE IF NOT EXISTS phigate.recordings (
  session text PRIMARY KEY,
  chain text NOT NULL,
  sha256 text NOT NULL,
  content bytea NOT NULL
);`;

/** Policies an admin applied on one replica, for the others to activate (server/shared-policy.ts). */
const POLICY_ACTIVATIONS_V1 = `
CREATE TABLE IF NOT EXISTS phigate.policy_activations (
  id bigserial PRIMARY KEY,
  version text NOT NULL,
  text text NOT NULL,
  applied_by text,
  applied_at timestamptz NOT NULL DEFAULT now(),
  origin text NOT NULL
);`;

/** The steps, oldest first. Append; never edit or reorder an entry that has shipped. */
export const STORE_MIGRATIONS: readonly StoreMigration[] = [
  {
    version: 1,
    // Before steps were recorded, these tables were created by their modules at schema_version 1.
    name: 'approvals, shipped evidence, policy activations',
    sql: APPROVALS_V1 + EVIDENCE_V1 + POLICY_ACTIVATIONS_V1,
  },
];

/**
 * The layout of the `phigate` schema this version creates and reads: its last step. A store set up
 * by a newer phigate (a higher number) is refused rather than misread; a lower one is upgraded.
 */
export const STORE_SCHEMA_VERSION = STORE_MIGRATIONS.at(-1)!.version;

/** The meta key recording step `version`. */
export function migrationKey(version: number): string {
  return `migration.${version}`;
}

/**
 * The steps still to run on a store whose meta rows are `meta` (key → value), oldest first; throws
 * when the list itself is malformed (a bug: numbers must run 1, 2, 3, ...).
 */
export function pendingMigrations(meta: ReadonlyMap<string, string>, list: readonly StoreMigration[] = STORE_MIGRATIONS): StoreMigration[] {
  list.forEach((m, i) => {
    if (m.version !== i + 1) throw new TypeError(`store migration #${i + 1} is numbered ${m.version}: steps are numbered 1, 2, 3, ... in order`);
  });
  return list.filter((m) => !meta.has(migrationKey(m.version)));
}
