// What `phigate doctor` found, as data, and how it is shown: one line per check (ok, warn or fail)
// with a fix under each line that is not ok, or one JSON document. Pure: no I/O here.
import type { ChalkInstance } from 'chalk';
import { displayWidth, padEndWidth } from '../../ui/width.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  /** What was checked: policy, listen, tls, data-dir, signing-key, masking-key, store, issuer, login, token, upstream, upstream-tls, upstream-role. */
  check: string;
  /** Which one, when there are several (an issuer URL, a connection name, an address). */
  subject?: string;
  status: CheckStatus;
  /** One line: what was found. Never a password or a token. */
  message: string;
  /** One line: what to do about it (for warn and fail). */
  fix?: string;
}

export interface DoctorSummary {
  ok: number;
  warn: number;
  fail: number;
}

export function summarize(results: readonly CheckResult[]): DoctorSummary {
  const s: DoctorSummary = { ok: 0, warn: 0, fail: 0 };
  for (const r of results) s[r.status]++;
  return s;
}

/** 0 when nothing failed (warnings included), 1 otherwise. */
export function doctorExitCode(results: readonly CheckResult[]): 0 | 1 {
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}

export function doctorJson(config: string, results: readonly CheckResult[]): string {
  return `${JSON.stringify({ config, ok: doctorExitCode(results) === 0, summary: summarize(results), checks: results })}\n`;
}

const LABEL: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'warn', fail: 'fail' };

/** The text report: a column of statuses, a column of checks, then `subject: finding`, with the fix indented below. */
export function doctorText(config: string, results: readonly CheckResult[], c: ChalkInstance): string {
  const width = Math.max(0, ...results.map((r) => displayWidth(r.check)));
  const colour = { ok: c.green, warn: c.yellow, fail: c.red };
  const lines = [`phigate doctor: ${config}`];
  for (const r of results) {
    lines.push(`${colour[r.status](LABEL[r.status])}  ${padEndWidth(r.check, width)}  ${r.subject ? `${r.subject}: ` : ''}${r.message}`);
    if (r.fix && r.status !== 'ok') lines.push(`${' '.repeat(8 + width)}${c.dim(`fix: ${r.fix}`)}`);
  }
  const s = summarize(results);
  const parts = [`${s.fail} failed`, `${s.warn} ${s.warn === 1 ? 'warning' : 'warnings'}`, `${s.ok} ok`];
  lines.push(s.fail > 0 ? c.red(parts.join(', ')) : s.warn > 0 ? c.yellow(parts.join(', ')) : c.green(parts.join(', ')));
  return `${lines.join('\n')}\n`;
}
