// Starts the `phigate replay` player on the terminal and returns when the session has played out or
// the user quits.
import { render } from 'ink';
import type { Block } from '../../recording/psql.js';
import { ReplayApp, type ReplayAppProps } from './App.js';

export async function runReplayTui(opts: { title: string; seal: ReplayAppProps['seal']; blocks: readonly Block[]; speed: number; step: boolean }): Promise<void> {
  const app = render(
    <ReplayApp
      title={opts.title}
      seal={opts.seal}
      blocks={opts.blocks}
      speed={opts.speed}
      step={opts.step}
      noColor={(process.env['NO_COLOR'] ?? '') !== ''}
    />,
    { exitOnCtrlC: false },
  );
  await app.waitUntilExit();
}
