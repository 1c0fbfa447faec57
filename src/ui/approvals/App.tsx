// The `phigate approve` live view: requests waiting for you (pushed by the gateway), the selected
// one's details, and keys to approve, approve for the session, or deny with a reason.
import { useEffect, useReducer, useRef, useState } from 'react';
import { Box, Text, useApp, useInput, useStdout } from 'ink';
import type { ApprovalView, DecisionBody } from '../../approvals/api.js';
import type { StreamHandlers, StreamState } from '../../approvals/client.js';
import { formatAge, formatTimeLeft, oneLine, printable, requesterLabel } from '../../approvals/format.js';
import { PhigateError } from '../../cli/errors.js';
import { initialListState, listReducer, ordered, type Flash } from './state.js';

export interface ApprovalsAppProps {
  server: string;
  /** Opens the live stream; the returned close() runs on unmount. */
  connect(handlers: StreamHandlers): { close(): void };
  decide(id: string, approve: boolean, body: DecisionBody): Promise<ApprovalView>;
  /** `phigate approve --reason TEXT`: what the reason prompt starts with. */
  initialReason?: string;
  /** NO_COLOR: no colours at all; selection is still shown by a marker and inverse video. */
  noColor?: boolean;
}

type Action = 'approve' | 'session' | 'deny';
interface Prompt {
  action: Action;
  id: string;
  text: string;
}

const VERB: Record<Action, string> = { approve: 'approving', session: 'approving for the session', deny: 'denying' };

export function ApprovalsApp(props: ApprovalsAppProps): React.JSX.Element {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [list, dispatch] = useReducer(listReducer, initialListState);
  const [selectedId, setSelectedId] = useState<string>();
  const lastIndex = useRef(0);
  const [prompt, setPrompt] = useState<Prompt>();
  const [busy, setBusy] = useState(false);
  const [conn, setConn] = useState<StreamState>({ state: 'connecting' });
  const [now, setNow] = useState(() => Date.now());
  const c = (color: string): string | undefined => (props.noColor ? undefined : color);

  useEffect(() => {
    const stream = props.connect({
      onMessage: (msg) => dispatch({ type: 'stream', msg, localNow: Date.now() }),
      onState: (s) => {
        setConn(s);
        if (s.state === 'failed') exit(s.error);
      },
    });
    return () => stream.close();
    // The stream is opened once for the life of the view.
  }, []);

  useEffect(() => {
    // Only the countdown is redrawn on a timer; the list itself changes when the gateway pushes.
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);

  const items = ordered(list.items);
  let index = items.findIndex((a) => a.id === selectedId);
  if (index === -1) index = Math.min(lastIndex.current, items.length - 1);
  const selected = index >= 0 ? items[index] : undefined;
  lastIndex.current = Math.max(0, index);
  const serverNow = now + list.skewMs;
  const flash = (f: Flash | undefined): void => dispatch({ type: 'flash', flash: f });

  const submit = (p: Prompt): void => {
    setBusy(true);
    const reason = p.text.trim();
    const body: DecisionBody = {
      ...(reason ? { reason } : {}),
      ...(p.action === 'deny' ? {} : { scope: p.action === 'session' ? 'session' : 'once' }),
    };
    props.decide(p.id, p.action !== 'deny', body).then(
      (a) => {
        dispatch({ type: 'decided', approval: a });
        flash({ text: `${a.status === 'approved' ? 'Approved' : 'Denied'} ${a.id}${a.decision?.scope === 'session' ? ' for the rest of the session' : ''}`, tone: 'ok' });
      },
      (err: unknown) => flash({ text: err instanceof PhigateError ? err.message : String(err), tone: 'error' }),
    ).finally(() => setBusy(false));
  };

  useInput((input, key) => {
    if (busy) return;
    if (prompt) {
      if (key.escape) {
        setPrompt(undefined);
        flash({ text: 'cancelled', tone: 'info' });
      } else if (key.return) {
        setPrompt(undefined);
        submit(prompt);
      } else if (key.backspace || key.delete) {
        setPrompt({ ...prompt, text: prompt.text.slice(0, -1) });
      } else if (input && !key.ctrl && !key.meta) {
        const text = (prompt.text + input.replace(/[\u0000-\u001f\u007f]/g, '')).slice(0, 1000);
        setPrompt({ ...prompt, text });
      }
      return;
    }
    if (input === 'q' || key.escape) return exit();
    if (key.upArrow || input === 'k') {
      const next = items[Math.max(0, index - 1)];
      if (next) setSelectedId(next.id);
      return;
    }
    if (key.downArrow || input === 'j') {
      const next = items[Math.min(items.length - 1, index + 1)];
      if (next) setSelectedId(next.id);
      return;
    }
    const action: Action | undefined = input === 'a' ? 'approve' : input === 's' ? 'session' : input === 'd' ? 'deny' : undefined;
    if (!action) return;
    if (!selected) return flash({ text: 'nothing to decide', tone: 'info' });
    if (!selected.can_decide) {
      return flash({ text: `you cannot decide ${selected.id}: ${selected.own ? 'it is your own request' : `it needs an approver from ${selected.approvers.join(', ')}`}`, tone: 'error' });
    }
    setSelectedId(selected.id);
    setPrompt({ action, id: selected.id, text: props.initialReason ?? '' });
  });

  const width = Math.max(60, stdout.columns || 100);
  const connText = conn.state === 'live' ? 'live'
    : conn.state === 'connecting' ? 'connecting...'
      : conn.state === 'reconnecting' ? `reconnecting (${conn.reason})` : 'disconnected';

  return (
    <Box flexDirection="column" width={width}>
      <Text>
        <Text bold>phigate approve</Text>
        <Text> · {props.server} · </Text>
        <Text color={c(conn.state === 'live' ? 'green' : 'yellow')}>{connText}</Text>
        <Text> · {items.length} waiting</Text>
      </Text>
      <Box flexDirection="column" marginTop={1}>
        {items.length === 0 ? (
          <Text>No requests waiting for you. New ones appear here as they arrive.</Text>
        ) : (
          items.map((a, i) => <Row key={a.id} a={a} selected={i === index} serverNow={serverNow} width={width} color={c} />)
        )}
      </Box>
      {selected ? <Details a={selected} serverNow={serverNow} color={c} /> : null}
      {prompt ? (
        <Text>
          <Text bold>Reason for {VERB[prompt.action]} {prompt.id}</Text>
          <Text> (enter to confirm, esc to cancel): </Text>
          <Text>{prompt.text}</Text>
          <Text inverse> </Text>
        </Text>
      ) : busy ? (
        <Text>sending...</Text>
      ) : list.flash ? (
        <Text color={c(list.flash.tone === 'ok' ? 'green' : list.flash.tone === 'error' ? 'red' : 'cyan')}>{list.flash.text}</Text>
      ) : (
        <Text> </Text>
      )}
      <Text>↑/↓ select · a approve · s approve for session · d deny · q quit</Text>
    </Box>
  );
}

function Row(p: { a: ApprovalView; selected: boolean; serverNow: number; width: number; color: (c: string) => string | undefined }): React.JSX.Element {
  const { a } = p;
  const left = Date.parse(a.expires_at) - p.serverNow;
  const fixed = `${p.selected ? '>' : ' '} ${a.id}  ${oneLine(requesterLabel(a), 24).padEnd(24)}  ${oneLine(a.connection, 12).padEnd(12)}  ${oneLine(a.rule, 16).padEnd(16)}  `;
  const tail = `  ${formatTimeLeft(left).padStart(8)}${a.can_decide ? '' : a.own ? '  yours' : '  view only'}`;
  const stmt = oneLine(a.statement, Math.max(10, p.width - fixed.length - tail.length - 1));
  return (
    <Text inverse={p.selected} color={left < 60_000 ? p.color('red') : undefined}>
      {fixed}{stmt.padEnd(Math.max(10, p.width - fixed.length - tail.length - 1))}{tail}
    </Text>
  );
}

function Details(p: { a: ApprovalView; serverNow: number; color: (c: string) => string | undefined }): React.JSX.Element {
  const { a } = p;
  const field = (name: string, value: string): React.JSX.Element => (
    <Text>
      <Text bold>{name.padEnd(12)}</Text>
      {value}
    </Text>
  );
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={p.color('cyan')} paddingX={1} marginTop={1}>
      {field('request', `${a.id}  (asked ${formatAge(p.serverNow - Date.parse(a.created_at))} ago)`)}
      {field('requester', `${requesterLabel(a)}  [${a.requester.kind}]`)}
      {field('connection', a.connection)}
      {field('rule', `${a.rule}${a.reason ? `: ${oneLine(a.reason, 100)}` : ''}`)}
      {field('approvers', a.approvers.join(', '))}
      {field('tables', a.tables.join(', ') || '-')}
      {field('time left', formatTimeLeft(Date.parse(a.expires_at) - p.serverNow))}
      <Text bold>statement</Text>
      <Text color={p.color('yellow')}>{printable(a.statement)}</Text>
    </Box>
  );
}
