// `phigate audit search|verify|export`, `phigate sessions` and `phigate replay` as real processes,
// against an in-process gateway with a data directory and offline over the files; exit codes per
// docs/auditor.md, auditor-only access, and every search, export and replay recorded in the log itself.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gateway } from '../../src/server/gateway.js';
import { parsePolicyFile } from '../../src/policy/file.js';
import { silentLogger } from '../../src/common/log.js';
import { RecordingWriter } from '../../src/recording/writer.js';
import { searchAudit } from '../../src/audit/search.js';
import { policyYaml } from '../support/harness.js';
import { startTestIdp, type TestIdp } from '../support/oidc.js';
import { run } from '../support/proc.js';
import { statementEvent, tempDir } from './helpers.js';

const t = tempDir('phigate-audit-cli-');
const dataDir = join(t.dir, 'data');
let idp: TestIdp;
let gateway: Gateway;
let url: string;
const SESSION = '5e55a1a0-0000-4000-8000-000000000001';

async function cli(as: string | undefined, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = run(args, { PHIGATE_TOKEN: as ? await idp.mint(as) : '', ...env });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
const remote = (args: string[]): string[] => [...args, '--server', url];
const auditDir = join(dataDir, 'audit');

beforeAll(async () => {
  idp = await startTestIdp({ identities: { carol: ['auditors'], root: ['admins'], alice: ['engineering'], bob: ['engineering'] } });
  gateway = new Gateway({ policy: parsePolicyFile(policyYaml(inject('pg'), idp, 1)), host: '127.0.0.1', port: 0, log: silentLogger, dataDir });
  ({ url } = await gateway.start());
  const log = gateway.audit!;
  // A recorded session of alice's, and a statement of bob's.
  const w = RecordingWriter.open(join(dataDir, 'recordings'), SESSION, { user: 'alice', connection: 'ehr', client_database: 'ehr', application_name: 'psql' });
  log.append({ type: 'session.start', session: SESSION, user: 'alice', subject: 'alice', issuer: idp.issuer, kind: 'human', connection: 'ehr', client_addr: '127.0.0.1', application_name: 'psql' });
  w.statement({ sql: 'SELECT id, ssn FROM patients WHERE id = $1', decision: 'allow' });
  log.append(statementEvent(1, { session: SESSION, user: 'alice', connection: 'ehr', sql: 'SELECT id, ssn FROM patients WHERE id = $1', tables: ['patients'], decision: 'allow' }));
  w.rowDescription([{ name: 'id', type: 23 }, { name: 'ssn', type: 25 }]);
  w.row(['1', '***-**-6789']);
  w.complete({ tag: 'SELECT 1' });
  w.statement({ sql: 'DROP TABLE patients', decision: 'block', rule: 'no-ddl' });
  log.append(statementEvent(2, { session: SESSION, user: 'alice', connection: 'ehr', sql: 'DROP TABLE patients', tables: ['patients'], decision: 'block', rule: 'no-ddl' }));
  w.error({ severity: 'ERROR', code: '42501', message: 'phigate: blocked by rule "no-ddl"' });
  const seal = w.close({ reason: 'client closed' });
  log.append({ type: 'session.end', session: SESSION, user: 'alice', connection: 'ehr', duration_ms: 1500, statements: 2, bytes_in: 100, bytes_out: 200, recording: { sha256: seal.sha256, file: seal.file } });
  log.append(statementEvent(3, { session: 'other', user: 'bob', connection: 'ehr-md5', sql: 'SELECT 1', tables: [], decision: 'allow' }));
  await log.synced();
});
afterAll(async () => {
  await gateway?.stop();
  await idp?.close();
  t.cleanup();
});

describe('phigate audit search', () => {
  it('an auditor searches through the gateway; the search is itself recorded', async () => {
    const r = await cli('carol', remote(['audit', 'search', '--user', 'alice', '--table', 'patients', '--json']));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { records: { seq: number; sql: string; decision: string }[]; more: boolean };
    expect(doc.records.map((x) => x.decision)).toEqual(['block', 'allow']);
    expect(doc.more).toBe(false);
    gateway.audit!.flushIndex();
    const recorded = searchAudit(auditDir, { types: ['audit.search'] }).records[0]!;
    expect(recorded).toMatchObject({ user: 'carol', filters: { user: 'alice', table: 'patients' }, results: 2 });
    const table = await cli('root', remote(['audit', 'search', '--decision', 'block']));
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^TIME \(UTC\) +SEQ +USER +CONNECTION +TYPE +DECISION +TABLES +DETAIL/);
    expect(table.stdout).toMatch(/alice +ehr +statement +block +patients +DROP TABLE patients +\[rule no-ddl\]/);
  });

  it('exit codes: 4 for a non-auditor, 3 without a token, 2 for a bad argument, 5 when the gateway is unreachable', async () => {
    const denied = await cli('alice', remote(['audit', 'search', '--user', 'bob']));
    expect(denied.code).toBe(4);
    expect(denied.stderr).toMatch(/alice: only auditors and admins .* may search the audit log/);
    expect(denied.stderr).toMatch(/hint: ask an administrator to add you to one of the policy's identity.auditor_groups/);
    const none = await cli(undefined, remote(['audit', 'search']));
    expect(none.code).toBe(3);
    const bad = await cli('carol', remote(['audit', 'search', '--since', 'yesterday-ish']));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--since: cannot read "yesterday-ish" as a time/);
    const badChoice = await cli('carol', remote(['audit', 'search', '--decision', 'maybe']));
    expect(badChoice.code).toBe(2);
    const gone = await cli('carol', ['audit', 'search', '--server', 'http://127.0.0.1:1']);
    expect(gone.code).toBe(5);
  });
});

describe('phigate sessions and replay', () => {
  it('lists sessions: everyone\'s for an auditor, their own for others', async () => {
    const r = await cli('carol', remote(['sessions', '--json']));
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { sessions: { session: string; user: string; statements: number; recording?: unknown }[] };
    expect(doc.sessions).toEqual([expect.objectContaining({ session: SESSION, user: 'alice', statements: 2, recording: expect.any(Object) })]);
    expect((await cli('alice', remote(['sessions', '--json']))).stdout).toContain(SESSION);
    expect(JSON.parse((await cli('bob', remote(['sessions', '--json']))).stdout)).toEqual({ sessions: [], more: false });
    expect((await cli('bob', remote(['sessions', '--user', 'alice']))).code).toBe(4);
    const text = await cli('carol', remote(['sessions']));
    expect(text.stdout).toMatch(new RegExp(`${SESSION} +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +alice +- +ehr +psql +2s +2 +ended, recorded`));
  });

  it('replay --json prints the recording; without a terminal, the session as psql showed it; both recorded', async () => {
    const file = readFileSync(join(dataDir, 'recordings', `${SESSION}.ndjson`), 'utf8');
    const j = await cli('carol', remote(['replay', SESSION.slice(0, 8), '--json']));
    expect(j.code).toBe(0);
    expect(j.stdout).toBe(file);
    const text = await cli('root', remote(['replay', SESSION]));
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('recording matches its seal');
    expect(text.stdout).toContain([
      'ehr=> SELECT id, ssn FROM patients WHERE id = $1;', ' id |     ssn     ', '----+-------------', '  1 | ***-**-6789', '(1 row)', '',
      'ehr=> DROP TABLE patients;', 'ERROR:  phigate: blocked by rule "no-ddl"',
    ].join('\n'));
    gateway.audit!.flushIndex();
    expect(searchAudit(auditDir, { types: ['replay'] }).records.map((x) => x['user'])).toEqual(['root', 'carol']);
    expect((await cli('alice', remote(['replay', SESSION, '--json']))).code).toBe(4);
    const missing = await cli('carol', remote(['replay', 'ffffffff-nope', '--json']));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no recording of session "ffffffff-nope"/);
    expect((await cli('carol', remote(['replay', SESSION, '--speed', '0']))).code).toBe(2);
  });

  it('replay shows at most --rows rows of each result and counts the rest; --rows all shows every one', async () => {
    const capped = await cli('carol', remote(['replay', SESSION, '--rows', '0']));
    expect(capped.code).toBe(0);
    expect(capped.stdout).toContain([' id | ssn ', '----+-----', '... 1 more row (--rows all shows them)', '(1 row)'].join('\n'));
    expect(capped.stdout).not.toContain('***-**-6789');
    const all = await cli('carol', remote(['replay', SESSION, '--rows', 'all']));
    expect(all.stdout).toContain('  1 | ***-**-6789\n(1 row)');
    expect(all.stdout).not.toContain('more row');
    const bad = await cli('carol', remote(['replay', SESSION, '--rows', 'lots']));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--rows must be a whole number or "all", got "lots"/);
  });
});

describe('phigate audit verify and export', () => {
  it('verify through the gateway, export a bundle, verify the bundle offline with the pinned key', async () => {
    const v = await cli('carol', remote(['audit', 'verify']));
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^audit log intact: \d+ records, \d+ signed checkpoints \(key ed25519:[0-9a-f]{16}\)/);
    expect(v.stdout).toMatch(/recordings +1 sealed, all match/);
    const bundle = join(t.dir, 'bundle.ndjson');
    const e = await cli('root', remote(['audit', 'export', '--since', '1h', '--out', bundle]));
    expect(e.code).toBe(0);
    expect(e.stderr).toMatch(/verify it with: phigate audit verify --bundle/);
    gateway.audit!.flushIndex();
    expect(searchAudit(auditDir, { types: ['audit.export'] }).records[0]).toMatchObject({ user: 'root', records: expect.any(Number) });
    // The auditor pins the key the operator printed with `phigate server --print-public-key`.
    const keyFile = join(t.dir, 'server.pub');
    writeFileSync(keyFile, readFileSync(join(auditDir, 'public-key.pem')));
    const ok = await cli(undefined, ['audit', 'verify', '--bundle', bundle, '--public-key', keyFile]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^bundle intact: records \d+\.\.\d+/);
    // Alter the first record of the bundle (its own link: nothing before it is in the bundle).
    const lines = readFileSync(bundle, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.startsWith('{') && !l.includes('"bundle":'));
    lines[i] = lines[i]!.replace(/"prev":"(.)/, (_m, c: string) => `"prev":"${c === 'a' ? 'b' : 'a'}`);
    writeFileSync(bundle, lines.join('\n'));
    const bad = await cli(undefined, ['audit', 'verify', '--bundle', bundle, '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false });
    expect(bad.stderr).toMatch(/^phigate: bundle .* does not verify: record \d+ \(line \d+\): prev hash does not match record \d+/);
    expect((await cli('alice', remote(['audit', 'export']))).code).toBe(4);
  });

  it('offline over a copy of the data directory: verify passes, then fails with the position of a changed record', async () => {
    await gateway.audit!.synced();
    const copy = join(t.dir, 'copy');
    cpSync(dataDir, copy, { recursive: true });
    const ok = await cli(undefined, ['audit', 'verify', '--data-dir', copy, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, recordings: { checked: 1, failed: 0 } });
    const search = await cli(undefined, ['audit', 'search', '--data-dir', copy, '--sql', 'drop table', '--json']);
    expect(JSON.parse(search.stdout).records).toHaveLength(1);
    const log = join(copy, 'audit', 'audit.jsonl');
    const lines = readFileSync(log, 'utf8').split('\n');
    const k = lines.findIndex((l) => l.includes('"sql":"DROP TABLE'));
    lines[k] = lines[k]!.replace('DROP TABLE', 'DROP TABLX');
    writeFileSync(log, lines.join('\n'));
    const bad = await cli(undefined, ['audit', 'verify', '--data-dir', copy]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^audit log NOT intact/);
    expect(bad.stderr).toContain(`phigate: audit log verification failed: record ${k + 1} (line ${k + 2}): prev hash does not match record ${k} (record ${k} or this record was altered)`);
    const replay = await cli(undefined, ['replay', SESSION, '--data-dir', copy]);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('(1 row)');
    expect((await cli(undefined, ['audit', 'verify', '--data-dir', join(t.dir, 'nowhere')])).code).toBe(1);
  });
});
