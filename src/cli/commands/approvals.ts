// `phigate approvals`: the approval requests waiting for you (held statements), as a table or JSON.
import { Command } from 'commander';
import { withGatewayOptions } from '../options.js';
import { resolveContext, type GlobalOptions } from '../context.js';
import { ApprovalsClient } from '../../approvals/client.js';
import type { ApprovalView } from '../../approvals/api.js';
import { formatAge, formatTimeLeft, oneLine, requesterLabel, statusText } from '../../approvals/format.js';
import { displayWidth, padEndWidth } from '../../ui/width.js';

interface ApprovalsOptions extends GlobalOptions {
  all?: boolean;
  json?: boolean;
}

/** The document `phigate approvals --json` prints. */
export interface ApprovalsReport {
  server: string;
  server_time: string;
  approvals: ApprovalView[];
  /** Who asked, as the gateway sees them (gateways before 0.2 do not say). */
  viewer?: { name: string; groups: string[] };
  /** The policy's approver groups (idem). */
  approver_groups?: string[];
}

export function approvalsCommand(): Command {
  return withGatewayOptions(
    new Command('approvals')
      .description('list approval requests you may decide (`phigate approve ID`, or `phigate approve` for a live view)')
      .option('--all', 'include recently decided, timed out and withdrawn requests')
      .option('--json', 'print one JSON document'),
  ).action(async (opts: ApprovalsOptions) => {
    const ctx = resolveContext(opts);
    const client = new ApprovalsClient({ serverUrl: ctx.serverUrl, token: ctx.token, source: ctx.source });
    const res = await client.list(opts.all === true);
    const report: ApprovalsReport = {
      server: ctx.serverUrl, server_time: res.server_time, approvals: res.approvals,
      ...(res.viewer ? { viewer: res.viewer } : {}), ...(res.approver_groups ? { approver_groups: res.approver_groups } : {}),
    };
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderApprovals(report, { all: opts.all === true }));
  });
}

/** An empty list for someone in no approver group: say that nothing will ever wait for them, and who approves. */
function notAnApprover(r: ApprovalsReport): string | undefined {
  const { viewer, approver_groups: approvers } = r;
  if (!viewer || !approvers || viewer.groups.some((g) => approvers.includes(g))) return undefined;
  const yours = viewer.groups.length ? `none of your groups (${viewer.groups.join(', ')}) approves anything` : 'you are in no group';
  const theirs = approvers.length ? `requests there are decided by members of ${approvers.join(', ')}` : 'its policy holds nothing for approval';
  return `You (${viewer.name}) are not an approver on ${r.server}: ${yours}; ${theirs}.\n`;
}

export function renderApprovals(r: ApprovalsReport, opts: { all?: boolean; width?: number } = {}): string {
  if (r.approvals.length === 0) {
    if (opts.all) return `No approval requests you may see on ${r.server}.\n`;
    return notAnApprover(r) ?? `No approval requests waiting for you on ${r.server}.\n`;
  }
  const now = Date.parse(r.server_time);
  const header = ['ID', 'AGE', 'REQUESTER', 'CONNECTION', 'RULE', 'STATEMENT', 'EXPIRES IN', 'STATUS'];
  const rows = r.approvals.map((a) => [
    a.id,
    formatAge(now - Date.parse(a.created_at)),
    requesterLabel(a),
    a.connection,
    a.rule,
    a.statement,
    a.status === 'pending' ? formatTimeLeft(Date.parse(a.expires_at) - now) : '-',
    statusText(a),
  ]);
  // The statement takes what the other columns leave of the terminal (at least 20 characters).
  const width = opts.width ?? (process.stdout.columns || 120);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (i === 5 ? 0 : displayWidth(row[i]!)))));
  const others = widths.reduce((s, w, i) => (i === 5 ? s : s + w + 2), 0);
  const stmtWidth = Math.max(20, Math.min(60, width - others - 2));
  widths[5] = Math.max(header[5]!.length, ...rows.map((row) => displayWidth(oneLine(row[5]!, stmtWidth))));
  const line = (cells: string[]): string =>
    cells.map((c, i) => padEndWidth(i === 5 ? oneLine(c, stmtWidth) : c, widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
