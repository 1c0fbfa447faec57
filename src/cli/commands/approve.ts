// `phigate approve [ID]`: approve or deny one held statement, or (no ID, on a terminal) a live view
// of every request waiting for you. Exit 4 when you may not decide it, 1 when it is gone.
import { Command, Option } from 'commander';
import { withGatewayOptions } from '../options.js';
import { resolveContext, type GlobalOptions } from '../context.js';
import { ExitCode, PhigateError } from '../errors.js';
import { ApprovalsClient } from '../../approvals/client.js';
import type { ApprovalView } from '../../approvals/api.js';
import { oneLine, requesterLabel, scopeNotice } from '../../approvals/format.js';
import { APPROVAL_SCOPES, type ApprovalScope } from '../../approvals/types.js';

interface ApproveOptions extends GlobalOptions {
  deny?: boolean;
  reason?: string;
  session?: boolean;
  scope?: ApprovalScope;
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
      .addOption(new Option('--scope <scope>', 'what the approval releases: once (this execution), statement (this exact text for the rest of the session), ' +
        'shape (any literals, rest of the session), session (everything this rule holds, rest of the session)').choices([...APPROVAL_SCOPES]))
      .addOption(new Option('--session', 'deprecated: use --scope statement').hideHelp())
      .option('--json', 'print one JSON document'),
  ).action(async (id: string | undefined, opts: ApproveOptions) => runApprove(id, opts));
}

async function runApprove(id: string | undefined, opts: ApproveOptions): Promise<void> {
  if (opts.session) {
    // --session used to promise "this statement text for the rest of the session": that is --scope statement now.
    if (opts.scope !== undefined && opts.scope !== 'statement') throw new PhigateError('--session means --scope statement; give only one of them', ExitCode.Usage);
    process.stderr.write('phigate: --session is deprecated; it means --scope statement (this exact text for the rest of the session)\n');
    opts.scope = 'statement';
  }
  if (opts.deny && opts.scope !== undefined && opts.scope !== 'once') {
    throw new PhigateError(`--scope ${opts.scope} applies to approvals only; drop it or --deny`, ExitCode.Usage);
  }
  const ctx = resolveContext(opts);
  const client = new ApprovalsClient({ serverUrl: ctx.serverUrl, token: ctx.token, source: ctx.source });
  if (id === undefined) {
    if (opts.json || opts.deny || opts.scope || !process.stdin.isTTY || !process.stdout.isTTY) {
      throw new PhigateError(
        opts.json || opts.deny || opts.scope
          ? 'an approval ID is needed with --json, --deny or --scope'
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
    ...(approve ? { scope: opts.scope ?? 'once' } : {}),
  });
  const report: ApproveReport = { server: ctx.serverUrl, approval };
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderDecision(approval));
}

export function renderDecision(a: ApprovalView): string {
  const what = `${requesterLabel(a)} on ${a.connection}: ${oneLine(a.statement, 80)} (rule ${a.rule})`;
  const reason = a.decision?.reason ? `\n  reason: ${oneLine(a.decision.reason, 200)}` : '';
  if (a.status === 'approved') {
    return `Approved ${a.id}${scopeNotice(a.decision?.scope)}: ${what}${reason}\n`;
  }
  return `Denied ${a.id}: ${what}${reason}\n`;
}
