// `phigate approve [ID]`: approve or deny one held statement, or (no ID, on a terminal) a live view
// of every request waiting for you. Exit 4 when you may not decide it, 1 when it is gone.
import { Command } from 'commander';
import { withGatewayOptions } from '../options.js';
import { resolveContext, type GlobalOptions } from '../context.js';
import { ExitCode, PhigateError } from '../errors.js';
import { ApprovalsClient } from '../../approvals/client.js';
import type { ApprovalView } from '../../approvals/api.js';
import { oneLine, requesterLabel } from '../../approvals/format.js';

interface ApproveOptions extends GlobalOptions {
  deny?: boolean;
  reason?: string;
  session?: boolean;
  json?: boolean;
}

/** The document `phigate approve ID --json` prints. */
export interface ApproveReport {
  server: string;
  approval: ApprovalView;
}

export function approveCommand(): Command {
  return withGatewayOptions(
    new Command('approve')
      .description('approve (or --deny) a held statement; without ID, a live view of requests waiting for you')
      .argument('[id]', 'approval request id, e.g. apr-7k2m9q (see `phigate approvals`)')
      .option('--deny', 'deny instead of approving')
      .option('--reason <text>', 'why (shown to the requester and recorded)')
      .option('--session', 'approve this statement text for the rest of the requester\'s session')
      .option('--json', 'print one JSON document'),
  ).action(async (id: string | undefined, opts: ApproveOptions) => runApprove(id, opts));
}

async function runApprove(id: string | undefined, opts: ApproveOptions): Promise<void> {
  if (opts.deny && opts.session) {
    throw new PhigateError('--session applies to approvals only; drop it or --deny', ExitCode.Usage);
  }
  const ctx = resolveContext(opts);
  const client = new ApprovalsClient({ serverUrl: ctx.serverUrl, token: ctx.token, source: ctx.source });
  if (id === undefined) {
    if (opts.json || opts.deny || opts.session || !process.stdin.isTTY || !process.stdout.isTTY) {
      throw new PhigateError(
        opts.json || opts.deny || opts.session
          ? 'an approval ID is needed with --json, --deny or --session'
          : 'an approval ID is needed when not on a terminal',
        ExitCode.Usage,
        'run `phigate approvals` to list requests waiting for you, then `phigate approve ID`',
      );
    }
    // Loaded only here: ink and react are not needed by any other command.
    const { runApprovalsTui } = await import('../../ui/approvals/run.js');
    await runApprovalsTui({ client, server: ctx.serverUrl, initialReason: opts.reason });
    return;
  }
  const approve = !opts.deny;
  const approval = await client.decide(id, approve, {
    ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
    ...(approve ? { scope: opts.session ? 'session' : 'once' } : {}),
  });
  const report: ApproveReport = { server: ctx.serverUrl, approval };
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderDecision(approval));
}

export function renderDecision(a: ApprovalView): string {
  const what = `${requesterLabel(a)} on ${a.connection}: ${oneLine(a.statement, 80)} (rule ${a.rule})`;
  const reason = a.decision?.reason ? `\n  reason: ${oneLine(a.decision.reason, 200)}` : '';
  if (a.status === 'approved') {
    return `Approved ${a.id}${a.decision?.scope === 'session' ? ' for the rest of the session' : ''}: ${what}${reason}\n`;
  }
  return `Denied ${a.id}: ${what}${reason}\n`;
}
