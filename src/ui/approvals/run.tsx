// Starts the `phigate approve` live view on the terminal and returns when the user quits; a stream
// that cannot be (re)opened ends it with the error the CLI maps to an exit code.
import { render } from 'ink';
import type { ApprovalsClient } from '../../approvals/client.js';
import { ApprovalsApp } from './App.js';

export async function runApprovalsTui(opts: { client: ApprovalsClient; server: string; initialReason?: string }): Promise<void> {
  const { client } = opts;
  const app = render(
    <ApprovalsApp
      server={opts.server}
      connect={(handlers) => client.stream(handlers)}
      decide={(id, approve, body) => client.decide(id, approve, body)}
      initialReason={opts.initialReason}
      noColor={(process.env['NO_COLOR'] ?? '') !== ''}
    />,
    { exitOnCtrlC: true },
  );
  await app.waitUntilExit();
}
