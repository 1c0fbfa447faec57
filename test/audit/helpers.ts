// Shared by the audit tests: temporary directories and realistic events (what the gateway writes).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent, StatementDecision } from '../../src/audit/events.js';

export function tempDir(prefix = 'phigate-audit-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];
const CONNECTIONS = ['ehr', 'billing', 'research'];
const TABLES = ['patients', 'visits', 'prescriptions', 'claims', 'providers', 'labs'];
const DECISIONS: StatementDecision[] = ['allow', 'allow', 'allow', 'allow', 'block', 'approved', 'denied'];
const SQL = [
  'SELECT id, full_name, ssn FROM patients WHERE id = $1',
  'SELECT count(*) FROM visits WHERE visit_date > $1',
  'UPDATE prescriptions SET dose = $1 WHERE id = $2',
  'DELETE FROM claims WHERE status = $1',
  'SELECT p.id, v.note FROM patients p JOIN visits v ON v.patient_id = p.id WHERE p.mrn = $1',
  'INSERT INTO labs (patient_id, code, value) VALUES ($1, $2, $3)',
];

/** Deterministic pseudo-random statement event number `i` (a small LCG: reproducible runs). */
export function statementEvent(i: number, over: Partial<Extract<AuditEvent, { type: 'statement' }>> = {}): AuditEvent {
  const r = (k: number): number => ((i * 2654435761 + k * 40503) >>> 0) % 1000003;
  const t1 = TABLES[r(1) % TABLES.length]!;
  const t2 = TABLES[r(2) % TABLES.length]!;
  return {
    type: 'statement',
    session: `00000000-0000-4000-8000-${String(Math.floor(i / 50)).padStart(12, '0')}`,
    user: USERS[r(3) % USERS.length]!,
    connection: CONNECTIONS[r(4) % CONNECTIONS.length]!,
    sql: SQL[r(5) % SQL.length]!,
    kinds: ['select'],
    tables: t1 === t2 ? [t1] : [t1, t2],
    decision: DECISIONS[r(6) % DECISIONS.length]!,
    rule: 'phi-reads',
    policy: 'sha256:4f1c2e0c6d9a8b7f4f1c2e0c6d9a8b7f4f1c2e0c6d9a8b7f4f1c2e0c6d9a8b7f',
    duration_ms: r(7) % 50,
    rows: r(8) % 100,
    masked: ['patients.ssn'],
    ...over,
  };
}
