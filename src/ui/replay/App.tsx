// The `phigate replay` player: the session's psql output scrolls by as it happened (original pacing,
// scaled by the speed), with a progress line below; keys pause, step, change speed and quit.
import { useEffect, useReducer, useRef } from 'react';
import { Box, Static, Text, useApp, useInput } from 'ink';
import type { Block } from '../../recording/psql.js';
import {
  formatClock, formatSpeed, initialPlayer, isDone, playerReducer, progressBar, statementProgress,
} from './state.js';

export interface ReplayAppProps {
  /** One line above the transcript: whose session, where, when, and whether it matches its seal. */
  title: string;
  /** ok | mismatch | unsealed: shown with the title. */
  seal: { status: 'ok' | 'mismatch' | 'unsealed'; text: string };
  blocks: readonly Block[];
  speed: number;
  step: boolean;
  noColor?: boolean;
  /** How often the clock advances (ms). */
  tickMs?: number;
}

interface Item {
  key: string;
  block?: Block;
  title?: boolean;
}

export function ReplayApp(props: ReplayAppProps): React.JSX.Element {
  const { exit } = useApp();
  const [state, dispatch] = useReducer(playerReducer, undefined, () => initialPlayer(props.blocks, { speed: props.speed, step: props.step }));
  const last = useRef(performance.now());
  const c = (color: string): string | undefined => (props.noColor ? undefined : color);
  const done = isDone(state);

  useEffect(() => {
    const t = setInterval(() => {
      const now = performance.now();
      dispatch({ type: 'tick', realMs: now - last.current });
      last.current = now;
    }, props.tickMs ?? 50);
    return () => clearInterval(t);
  }, []);

  useEffect(() => {
    // Leave once the last block is on screen; the final progress line stays as the summary.
    if (done) {
      const t = setTimeout(() => exit(), 100);
      return () => clearTimeout(t);
    }
    return undefined;
  }, [done]);

  useInput((input, key) => {
    if (input === 'q' || key.escape || (key.ctrl && input === 'c')) return exit();
    if (input === ' ') return dispatch({ type: 'toggle' });
    if (key.return || input === 'n' || key.rightArrow) return dispatch({ type: 'advance' });
    if (input === '+' || input === '=' || key.upArrow) return dispatch({ type: 'speed', factor: 2 });
    if (input === '-' || input === '_' || key.downArrow) return dispatch({ type: 'speed', factor: 0.5 });
  });

  const items: Item[] = [{ key: 'title', title: true }, ...state.blocks.slice(0, state.shown).map((b, i) => ({ key: String(i), block: b }))];
  const { current, total } = statementProgress(state);
  const fraction = state.step ? (state.blocks.length ? state.shown / state.blocks.length : 1) : (state.total ? state.clock / state.total : 1);
  const mode = done ? '■ end' : state.step ? '⏭ step' : state.paused ? '⏸ paused' : '▶ playing';
  const keys = done ? '' : state.step ? 'space/enter next · q quit' : `space ${state.paused ? 'play' : 'pause'} · enter/n next statement · +/- speed · q quit`;

  return (
    <>
      <Static items={items}>
        {(item) => item.title
          ? (
            <Box key={item.key} flexDirection="column">
              <Text bold>{props.title}</Text>
              <Text color={c(props.seal.status === 'ok' ? 'green' : props.seal.status === 'mismatch' ? 'red' : 'yellow')}>{props.seal.text}</Text>
              <Text> </Text>
            </Box>
          )
          : <BlockView key={item.key} block={item.block!} color={c} />}
      </Static>
      <Box>
        <Text color={c('cyan')}>{mode}</Text>
        <Text> {formatClock(state.clock)} / {formatClock(state.total)} </Text>
        <Text color={c('cyan')}>{progressBar(fraction, 24)}</Text>
        <Text> statement {current}/{total}  {formatSpeed(state.speed)}  </Text>
        <Text dimColor={!props.noColor}>{keys}</Text>
      </Box>
    </>
  );
}

function BlockView({ block, color }: { block: Block; color: (c: string) => string | undefined }): React.JSX.Element {
  const tone = block.kind === 'statement' ? color('white')
    : block.tone === 'error' ? color('red')
      : block.tone === 'notice' ? color('yellow')
        : block.kind === 'phigate' || block.kind === 'end' ? color('cyan') : undefined;
  return (
    <Box flexDirection="column">
      {block.lines.map((l, i) => (
        <Text key={i} color={tone} bold={block.kind === 'statement'}>{l === '' ? ' ' : l}</Text>
      ))}
    </Box>
  );
}
