// `phigate audit search|verify|export`: find who did what, prove the log is intact, hand an auditor a
// bundle that verifies offline. With --data-dir they read the server's files directly (offline, for
// auditors holding a copy); otherwise they ask the gateway, which records every search and export.
import { errnoOf } from '../../common/errors.js';
import { Command, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { withGatewayOptions } from '../options.js';
import { resolveContext, type GlobalOptions } from '../context.js';
import { ExitCode, PhigateError } from '../errors.js';
import { EvidenceClient } from '../../audit/client.js';
import { AUDIT_EXPORT_PATH, AUDIT_SEARCH_PATH, AUDIT_VERIFY_PATH, type SearchResponse } from '../../audit/api.js';
import { DEFAULT_LIMIT, MAX_LIMIT, searchAudit, type SearchFilters } from '../../audit/search.js';
import { formatVerifyReport, verifyLog, type VerifyReport } from '../../audit/verify.js';
import { exportBundleToFile, exportBundle, verifyBundle, type BundleReport } from '../../audit/export.js';
import { renderRecords } from '../../audit/format.js';
import { TimeArgumentError, parseTimeArg } from '../../audit/time.js';
import { AuditKeyError } from '../../audit/errors.js';
import { parsePublicKey } from '../../audit/keys.js';
import { LOG_FILE } from '../../audit/search-index.js';
import { plural } from '../../ui/plural.js';

/** Where the evidence of a data directory is: `<dir>/audit`, or `<dir>` itself when it is an audit directory. */
export function evidenceDirs(dataDir: string): { auditDir: string; recordingsDir: string; policiesDir: string } {
  const dir = resolve(dataDir);
  const root = existsSync(join(dir, LOG_FILE)) ? dirname(dir) : dir;
  const auditDir = existsSync(join(dir, LOG_FILE)) ? dir : join(dir, 'audit');
  if (!existsSync(join(auditDir, LOG_FILE))) {
    throw new PhigateError(`no audit log under ${dir} (expected ${join(dir, 'audit', LOG_FILE)})`, ExitCode.Error,
      'give the server\'s --data-dir, or the audit directory inside it');
  }
  return { auditDir, recordingsDir: join(root, 'recordings'), policiesDir: join(root, 'policies') };
}

export function timeOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseTimeArg(`--${name}`, value);
  } catch (err) {
    if (err instanceof TimeArgumentError) throw new PhigateError(err.message, ExitCode.Usage);
    throw err;
  }
}

export function limitOption(value: string | undefined, fallback = DEFAULT_LIMIT): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw new PhigateError(`--limit must be an integer from 1 to ${MAX_LIMIT}`, ExitCode.Usage);
  return n;
}

function loadPinnedKey(file: string | undefined): KeyObject | undefined {
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PhigateError(`cannot read ${file}: ${errnoOf(err) ?? err}`, ExitCode.Usage);
  }
  try {
    return parsePublicKey(text, file);
  } catch (err) {
    if (err instanceof AuditKeyError) throw new PhigateError(err.message, ExitCode.Usage, err.hint);
    throw err;
  }
}

interface SearchOptions extends GlobalOptions {
  user?: string;
  connection?: string;
  table?: string;
  decision?: string;
  sql?: string;
  since?: string;
  until?: string;
  type?: string;
  session?: string;
  limit?: string;
  json?: boolean;
  dataDir?: string;
}

const offlineOption = (): Option => new Option('--data-dir <dir>', 'read the evidence files of this server data directory instead of asking the gateway (offline)');

export function auditCommand(): Command {
  const audit = new Command('audit').description('search, verify and export the audit log (auditors and admins)');

  withGatewayOptions(
    audit.command('search')
      .description('audit records matching every filter given, newest first')
      .option('--user <name>', 'identity name')
      .option('--connection <name>', 'connection')
      .option('--table <table>', 'a table the statement touches (patients matches public.patients)')
      .addOption(new Option('--decision <decision>', 'how the statement was decided (granted/refused: privileged attempts)')
        .choices(['allow', 'block', 'approve', 'approved', 'denied', 'timeout', 'withdrawn', 'cancelled', 'error', 'granted', 'refused']))
      .option('--sql <text>', 'substring of the (redacted) statement text, any case')
      .option('--since <dur|iso>', 'from this time (ISO 8601) or this long ago (24h, 7d)')
      .option('--until <iso>', 'up to this time')
      .option('--type <types>', 'record types, comma-separated (statement, session.start, approval.decided, ...)')
      .option('--session <id>', 'one session')
      .option('--limit <n>', `most records shown (default ${DEFAULT_LIMIT})`)
      .option('--json', 'print one JSON document')
      .addOption(offlineOption()),
  ).action(async (opts: SearchOptions) => {
    const filters: SearchFilters = {
      user: opts.user, connection: opts.connection, table: opts.table, decision: opts.decision, sql: opts.sql, session: opts.session,
      since: timeOption('since', opts.since), until: timeOption('until', opts.until), limit: limitOption(opts.limit),
      ...(opts.type ? { types: opts.type.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    };
    let r: SearchResponse;
    if (opts.dataDir) {
      const s = searchAudit(evidenceDirs(opts.dataDir).auditDir, filters);
      r = { records: s.records, more: s.more, total: s.total, elapsed_ms: Math.round(s.elapsedMs) };
    } else {
      const ctx = resolveContext(opts);
      const q = new URLSearchParams();
      for (const k of ['user', 'connection', 'table', 'decision', 'sql', 'since', 'until', 'type', 'session', 'limit'] as const) {
        const v = opts[k];
        if (v !== undefined) q.set(k, v);
      }
      r = await new EvidenceClient({ serverUrl: ctx.serverUrl, token: ctx.token, source: ctx.source }).json<SearchResponse>(`${AUDIT_SEARCH_PATH}?${q}`);
    }
    process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : renderRecords(r.records, { more: r.more, width: process.stdout.columns || 140 }));
  });

  withGatewayOptions(
    audit.command('verify')
      .description('check every link, checkpoint signature and recording seal of the audit log; exit 1 and say where it breaks')
      .option('--bundle <file>', 'verify an exported bundle instead (offline)')
      .option('--public-key <file>', 'the server\'s public key to check signatures with (from `phigate server --print-public-key`)')
      .option('--json', 'print one JSON document')
      .addOption(offlineOption()),
  ).action(async (opts: GlobalOptions & { bundle?: string; publicKey?: string; json?: boolean; dataDir?: string }) => {
    const publicKey = loadPinnedKey(opts.publicKey);
    if (opts.bundle) {
      if (!existsSync(opts.bundle)) throw new PhigateError(`no such file: ${opts.bundle}`, ExitCode.Usage);
      const r = await verifyBundle(opts.bundle, { publicKey });
      process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : formatBundleReport(r));
      if (!r.ok) throw new PhigateError(`bundle ${opts.bundle} does not verify: ${r.problems[0]?.message ?? 'unknown problem'}`, ExitCode.Error);
      return;
    }
    let r: VerifyReport;
    if (opts.dataDir) {
      const dirs = evidenceDirs(opts.dataDir);
      r = await verifyLog(dirs.auditDir, { publicKey, recordingsDir: existsSync(dirs.recordingsDir) ? dirs.recordingsDir : undefined });
    } else {
      if (publicKey) {
        throw new PhigateError('--public-key checks files you hold: use it with --data-dir or --bundle', ExitCode.Usage,
          'the gateway checks with its own key; to pin the key, export a bundle and verify that');
      }
      const ctx = resolveContext(opts);
      r = await new EvidenceClient({ serverUrl: ctx.serverUrl, token: ctx.token, source: ctx.source, timeoutMs: 600_000 }).json<VerifyReport>(AUDIT_VERIFY_PATH);
    }
    process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : formatVerifyReport(r));
    if (!r.ok) throw new PhigateError(`audit log verification failed: ${r.problems[0]?.message ?? 'unknown problem'}`, ExitCode.Error);
  });

  withGatewayOptions(
    audit.command('export')
      .description('write the records of a time range, the checkpoints that sign them, the policies in force and the public key to one NDJSON bundle')
      .option('--since <dur|iso>', 'from this time (ISO 8601) or this long ago (24h, 7d)')
      .option('--until <iso>', 'up to this time')
      .option('--out <file>', 'bundle file (default: standard output)')
      .option('--replica <chain>', 'export another replica\'s chain from the shared store (its key fingerprint, as `audit verify` lists them)')
      .addOption(offlineOption()),
  ).action(async (opts: GlobalOptions & { since?: string; until?: string; out?: string; dataDir?: string; replica?: string }) => {
    const since = timeOption('since', opts.since);
    const until = timeOption('until', opts.until);
    if (since !== undefined && until !== undefined && since > until) throw new PhigateError('--since is after --until', ExitCode.Usage);
    if (opts.dataDir && opts.replica) throw new PhigateError('--replica asks a gateway with a shared store; it does not go with --data-dir', ExitCode.Usage);
    if (opts.dataDir) {
      const dirs = evidenceDirs(opts.dataDir);
      const s = opts.out
        ? await exportBundleToFile(dirs.auditDir, opts.out, { since, until, policiesDir: dirs.policiesDir })
        : await exportBundle(dirs.auditDir, process.stdout, { since, until, policiesDir: dirs.policiesDir });
      const r = s.header.records;
      process.stderr.write(`exported ${r ? `${plural(r.count, 'record')} (${r.first_seq}..${r.last_seq})` : 'no records'}${opts.out ? ` to ${opts.out}` : ''}` +
        `${s.unanchored ? '; the newest are not signed yet (the server signs them at its next checkpoint)' : ''}\n`);
    } else {
      const ctx = resolveContext(opts);
      const q = new URLSearchParams();
      if (opts.since) q.set('since', new Date(since!).toISOString());
      if (opts.until) q.set('until', new Date(until!).toISOString());
      if (opts.replica) q.set('replica', opts.replica);
      await new EvidenceClient({ serverUrl: ctx.serverUrl, token: ctx.token, source: ctx.source, timeoutMs: 600_000 }).download(`${AUDIT_EXPORT_PATH}?${q}`, opts.out);
      if (opts.out) process.stderr.write(`exported to ${opts.out}\n`);
    }
    if (opts.out) process.stderr.write(`verify it with: phigate audit verify --bundle ${opts.out} --public-key SERVER_KEY.pem\n`);
  });
  return audit;
}

export function formatBundleReport(r: BundleReport): string {
  const lines: string[] = [];
  if (r.ok) {
    const range = r.range ? `records ${r.range.first_seq}..${r.range.last_seq}` : 'no records in range';
    lines.push(`bundle intact: ${range}${r.header?.since || r.header?.until ? ` (${r.header?.since ?? '…'} to ${r.header?.until ?? '…'})` : ''}, ` +
      `${plural(r.records, 'record line')}, ${plural(r.checkpoints, 'signed checkpoint')}${r.key ? ` (key ${r.key})` : ''}, ${plural(r.policies, 'policy text')}`);
  } else {
    lines.push(`bundle NOT intact: ${plural(r.problems.length, 'problem')}; first: ${r.problems[0]?.message ?? ''}`);
    for (const p of r.problems.slice(1, 10)) lines.push(`  also: ${p.message}`);
  }
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return `${lines.join('\n')}\n`;
}
