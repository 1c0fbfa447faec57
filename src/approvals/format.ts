// How approval requests read in a terminal (the `phigate approvals` table and the TUI): ages, time
// left, who asked, a statement cut to fit, and how a request ended.
import type { ApprovalView } from './api.js';
import type { ApprovalScope } from './types.js';
import { showLabel } from '../tunnel/label.js';

/**
 * The statement as scope `shape` releases it: every literal (already redacted by the gateway) shown
 * as the "any" it stands for, so the approver sees what else would run without asking.
 */
export function shapeOf(redacted: string): string {
  return redacted.replaceAll("'<redacted>'", '<any text>').replace(/<n>/g, '<any number>');
}

/** What each scope releases, in the words the CLI, TUI and docs use. */
export function scopeDescription(scope: ApprovalScope, v?: Pick<ApprovalView, 'rule' | 'statement'>): string {
  switch (scope) {
    case 'once':
      return 'this execution only';
    case 'statement':
      return 'this exact statement text, again, for the rest of the session (not other literal values)';
    case 'shape':
      return `any statement of this shape for the rest of the session, whatever its literals${v ? `: ${shapeOf(v.statement)}` : ''}`;
    case 'session':
      return `every statement rule ${v ? `"${v.rule}"` : 'this rule'} holds, for the rest of the session`;
  }
}

/** Appended to "approval X granted by Y" and "Approved X": what more it released. */
export function scopeNotice(scope: ApprovalScope | undefined): string {
  switch (scope) {
    case 'statement':
      return ' for this statement text for the rest of the session';
    case 'shape':
      return ' for statements of this shape (any literals) for the rest of the session';
    case 'session':
      return ' for everything this rule holds for the rest of the session';
    default:
      return '';
  }
}

/** `45s`, `12m`, `3h`, `2d`: coarse on purpose, for a column. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** `14m 32s`, `1h 05m`, `expired`: precise enough to decide whether to hurry. */
export function formatTimeLeft(ms: number): string {
  if (ms <= 0) return 'expired';
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * `alice (agent "claude")`, `ci-bot (service)`, `alice`. The label is the requester's own words:
 * quoted after the kind, so it cannot pass for an identity.
 */
export function requesterLabel(v: Pick<ApprovalView, 'requester'>): string {
  const q = v.requester;
  if (q.label) return `${q.name} (${q.kind === 'human' ? '' : `${q.kind} `}${showLabel(q.label)})`;
  return q.kind === 'human' ? q.name : `${q.name} (${q.kind})`;
}

/** One line, at most `max` characters (control characters cannot reach the terminal). */
export function oneLine(s: string, max: number): string {
  const flat = s.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  return max <= 3 ? flat.slice(0, max) : `${flat.slice(0, max - 3)}...`;
}

/** Strips control characters but keeps line breaks, for the full statement in a details pane. */
export function printable(s: string): string {
  return s.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0009\u000b-\u001f\u007f]/g, ' ');
}

/** `pending`, `approved by bob`, `denied by bob`, `timed out`, `withdrawn`. */
export function statusText(v: ApprovalView): string {
  const d = v.decision;
  switch (v.status) {
    case 'pending':
      return v.can_decide ? 'pending' : v.own ? 'pending (yours)' : 'pending (view only)';
    case 'approved':
      return `approved by ${d?.approver ?? '?'}${d?.scope && d.scope !== 'once' ? ` (${d.scope})` : ''}`;
    case 'denied':
      return `denied by ${d?.approver ?? '?'}`;
    case 'expired':
      return 'timed out';
    case 'withdrawn':
      return 'withdrawn';
  }
}
