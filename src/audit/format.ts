// Human-readable tables for `phigate audit search` and `phigate sessions`. Pure: records in, text out.
import type { StoredRecord } from './events.js';
import type { SessionSummary } from './search.js';
import { pluralOf } from '../ui/plural.js';
import { displayWidth, padEndWidth } from '../ui/width.js';

/** `2025-03-01 12:00:05` (UTC, as in the log). */
export function shortTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, '').replace(/Z$/, '');
}

export function formatDurationMs(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function oneLine(s: string, max: number): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length <= max ? t : `${t.slice(0, Math.max(1, max - 1))}…`;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

/** What one record says, in a few words (the DETAIL column). */
export function recordDetail(r: StoredRecord): string {
  switch (r.type) {
    case 'statement':
      return `${str(r['sql'])}${r['rule'] ? `  [rule ${str(r['rule'])}]` : ''}`;
    case 'statement.result':
      return `statement ${str(r['statement'])}: ${str(r['tag']) || (r['error'] ? `error ${str(r['error'])}` : 'done')} in ${formatDurationMs(r['duration_ms'] as number | undefined)}`;
    case 'session.start':
      return `${r['agent'] ? `agent ${str(r['agent'])} ` : ''}${str(r['kind'])} from ${str(r['client_addr']) || '?'}${r['application_name'] ? ` (${str(r['application_name'])})` : ''} session ${str(r['session'])}`;
    case 'session.end':
      return `after ${formatDurationMs(r['duration_ms'] as number | undefined)}, ${pluralOf(r['statements'], 'statement')}${r['reason'] ? ` (${str(r['reason'])})` : ''} session ${str(r['session'])}`;
    case 'session.refused':
      return `refused ${str(r['code'])}${r['limit'] ? ` by ${str(r['limit'])}` : ''}: ${str(r['reason'])} session ${str(r['session'])}`;
    case 'approval.requested':
      return `${str(r['approval'])} needs ${(r['approvers'] as string[] | undefined)?.join(' or ') ?? '?'} (rule ${str(r['rule'])})${r['sql'] ? `: ${str(r['sql'])}` : ''}`;
    case 'approval.decided':
      return `${str(r['approval'])} ${str(r['outcome'])}${r['approver'] ? ` by ${str(r['approver'])}` : ''}${r['reason'] ? `: ${str(r['reason'])}` : ''}`;
    case 'access.granted':
      return `grant ${str(r['grant'])} until ${str(r['until'])}${r['by'] ? ` by ${str(r['by'])}` : ''}`;
    case 'access.expired':
      return `grant ${str(r['grant'])} expired`;
    case 'policy.activated':
      return `${str(r['policy']).slice(0, 19)}… (${str(r['source'])}${r['by'] ? ` by ${str(r['by'])}` : ''})`;
    case 'audit.search':
      return `searched ${Object.entries((r['filters'] as Record<string, string> | undefined) ?? {}).map(([k, v]) => `${k}=${v}`).join(' ')}: ${pluralOf(r['results'], 'result')}`;
    case 'audit.export':
      return `exported ${pluralOf(r['records'], 'record')}${r['since'] ? ` since ${str(r['since'])}` : ''}${r['until'] ? ` until ${str(r['until'])}` : ''}`;
    case 'replay':
      return `replayed session ${str(r['session'])}`;
    case 'privileged':
      return `${str(r['action'])} ${str(r['target'])}: ${str(r['outcome'])}${r['code'] ? ` (${str(r['code'])})` : ''}`;
    case 'server.start':
      return `phigate ${str(r['version'])} pid ${str(r['pid'])}${r['listen'] ? ` on ${str(r['listen'])}` : ''}`;
    case 'server.stop':
      return str(r['reason']);
    case 'log.repaired':
      return `cut ${str(r['bytes'])} bytes at offset ${str(r['offset'])} of ${str(r['file'])}: ${str(r['reason'])}`;
    default:
      return '';
  }
}

export function renderRecords(records: readonly StoredRecord[], opts: { more?: boolean; width?: number } = {}): string {
  if (records.length === 0) return 'No audit records match.\n';
  const header = ['TIME (UTC)', 'SEQ', 'USER', 'CONNECTION', 'TYPE', 'DECISION', 'TABLES', 'DETAIL'];
  const rows = records.map((r) => [
    shortTime(r.at), String(r.seq), str(r['user']), str(r['connection']), r.type,
    str(r['decision'] ?? (r.type === 'approval.decided' || r.type === 'privileged' ? r['outcome'] : '')),
    Array.isArray(r['tables']) ? (r['tables'] as string[]).join(',') : '',
    recordDetail(r),
  ]);
  const out = table(header, rows, opts.width ?? 140, 7);
  return `${out}${opts.more ? `(newest ${records.length} shown; more match: narrow the filters or raise --limit)\n` : ''}`;
}

export function renderSessions(sessions: readonly SessionSummary[], opts: { more?: boolean; width?: number } = {}): string {
  if (sessions.length === 0) return 'No sessions match.\n';
  const header = ['SESSION', 'STARTED (UTC)', 'USER', 'AGENT', 'CONNECTION', 'CLIENT', 'DURATION', 'STMTS', 'STATUS'];
  const rows = sessions.map((s) => [
    s.session, shortTime(s.started_at), s.user, s.agent !== undefined ? JSON.stringify(s.agent) : (s.kind === 'agent' ? 'agent' : '-'), s.connection,
    s.application_name ?? '', s.ended_at ? formatDurationMs(s.duration_ms) : '-', s.statements === undefined ? '-' : String(s.statements),
    `${s.ended_at ? (s.end_reason === 'interrupted' ? 'interrupted' : 'ended') : 'open'}${s.recording ? ', recorded' : ''}`,
  ]);
  return `${table(header, rows, opts.width ?? 140, 5)}${opts.more ? '(more sessions match: narrow the filters or raise --limit)\n' : ''}`;
}

/** Left-aligned columns; column `flex` takes what the others leave of `width` (at least 20). */
function table(header: string[], rows: string[][], width: number, flex: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (i === flex ? 0 : displayWidth(r[i]!)))));
  const others = widths.reduce((s, w, i) => (i === flex ? s : s + w + 2), 0);
  const flexWidth = Math.max(20, width - others - 1);
  widths[flex] = Math.min(flexWidth, Math.max(header[flex]!.length, ...rows.map((r) => displayWidth(oneLine(r[flex]!, flexWidth)))));
  const line = (cells: string[]): string => cells.map((c, i) => padEndWidth(i === flex ? oneLine(c, flexWidth) : c, widths[i]!)).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
