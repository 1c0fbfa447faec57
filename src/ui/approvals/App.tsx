// The `phigate approve` live view: requests waiting for you (pushed by the gateway), the selected
// one's details, and keys to approve (once, this text, this shape, or the whole rule for the
// session: each says what it releases before the reason is asked), or deny with a reason.
import { useEffect, useReducer, useRef, useState } from 'react';
import { Box, Text, useApp, useInput, useStdout } from 'ink';
import type { ApprovalView, DecisionBody } from '../../approvals/api.js';
import type { StreamHandlers, StreamState } from '../../approvals/client.js';
import { formatAge, formatTimeLeft, oneLine, printable, requesterLabel, scopeDescription, scopeNotice } from '../../approvals/format.js';
import type { ApprovalScope } from '../../approvals/types.js';
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

type Action = ApprovalScope | 'deny';
interface Prompt {
  action: Action;
  id: string;
  text: string;
  /** What the approval would release, spelled out (scopeDescription). */
  releases?: string;
}

const KEYS: Record<string, Action> = { a: 'once', t: 'statement', p: 'shape', s: 'session', d: 'deny' };
const VERB: Record<Action, string> = {
  once: 'approving once', statement: 'approving this text', shape: 'approving this shape', session: 'approving the rule for the session', deny: 'denying',
};

export function ApprovalsApp(props: ApprovalsAppProps): React.JSX.Element {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [list, dispatch] = useReducer(listReducer, initialListState);
  const [selectedId, setSelectedId] = useState<string>();
  const lastIndex = useRef(0);
  const [prompt, setPromptState] = useState<Prompt>();
  const [busy, setBusyState] = useState(false);
  // Keys can arrive faster than React re-renders: the input handler reads the mode from refs, so a
  // quick `d` followed by the reason is not taken as more commands.
  const promptRef = useRef<Prompt | undefined>(undefined);
  const busyRef = useRef(false);
  const setPrompt = (p: Prompt | undefined): void => {
    promptRef.current = p;
    setPromptState(p);
  };
  const setBusy = (b: boolean): void => {
    busyRef.current = b;
    setBusyState(b);
  };
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
      ...(p.action === 'deny' ? {} : { scope: p.action }),
    };
    props.decide(p.id, p.action !== 'deny', body).then(
      (a) => {
        dispatch({ type: 'decided', approval: a });
        flash({ text: `${a.status === 'approved' ? 'Approved' : 'Denied'} ${a.id}${scopeNotice(a.decision?.scope)}`, tone: 'ok' });
      },
      (err: unknown) => flash({ text: err instanceof PhigateError ? err.message : String(err), tone: 'error' }),
    ).finally(() => setBusy(false));
  };

  const typeInto = (p: Prompt, input: string): void => {
    const text = (p.text + input.replace(/[\u0000-\u001f\u007f]/g, '')).slice(0, 1000);
    setPrompt({ ...p, text });
  };

  /** One command key in the list; true when it opened the reason prompt. */
  const command = (ch: string): boolean | 'quit' => {
    if (ch === 'q') return 'quit';
    if (ch === 'k' || ch === 'j') {
      const next = items[ch === 'k' ? Math.max(0, index - 1) : Math.min(items.length - 1, index + 1)];
      if (next) setSelectedId(next.id);
      return false;
    }
    const action: Action | undefined = Object.hasOwn(KEYS, ch) ? KEYS[ch] : undefined;
    if (!action) return false;
    if (!selected) {
      flash({ text: 'nothing to decide', tone: 'info' });
      return false;
    }
    if (!selected.can_decide) {
      flash({ text: `you cannot decide ${selected.id}: ${selected.own ? 'it is your own request' : `it needs an approver from ${selected.approvers.join(', ')}`}`, tone: 'error' });
      return false;
    }
    setSelectedId(selected.id);
    setPrompt({
      action, id: selected.id, text: props.initialReason ?? '',
      ...(action === 'deny' ? {} : { releases: scopeDescription(action, selected) }),
    });
    return true;
  };

  useInput((input, key) => {
    if (busyRef.current) return;
    const p = promptRef.current;
    if (p) {
      if (key.escape) {
        setPrompt(undefined);
        flash({ text: 'cancelled', tone: 'info' });
      } else if (key.return) {
        setPrompt(undefined);
        submit(p);
      } else if (key.backspace || key.delete) {
        setPrompt({ ...p, text: p.text.slice(0, -1) });
      } else if (input && !key.ctrl && !key.meta) {
        typeInto(p, input);
      }
      return;
    }
    if (key.escape) return exit();
    if (key.upArrow) return void command('k');
    if (key.downArrow) return void command('j');
    if (key.ctrl || key.meta) return;
    // Several characters in one read (fast typing, paste): a command, then maybe its reason.
    const chars = [...input];
    for (let i = 0; i < chars.length; i++) {
      const r = command(chars[i]!);
      if (r === 'quit') return exit();
      if (r === true) {
        const rest = chars.slice(i + 1).join('');
        if (rest && promptRef.current) typeInto(promptRef.current, rest);
        return;
      }
    }
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
      {prompt?.releases ? <Text>Releases: {oneLine(prompt.releases, width - 12)}</Text> : null}
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
      <Text>↑/↓ select · approve: a once · t this text · p this shape · s whole rule for session · d deny · q quit</Text>
    </Box>
  );
}

function Row(p: { a: ApprovalView; selected: boolean; serverNow: number; width: number; color: (c: string) => string | undefined }): React.JSX.Element {
  const { a } = p;
  const left = Date.parse(a.expires_at) - p.serverNow;
  const time = formatTimeLeft(left).padStart(8);
  const note = a.can_decide ? '' : a.own ? '  yours' : '  view only';
  // Narrow terminals squeeze the descriptive columns before the statement loses its last words.
  let [wReq, wConn, wRule] = [24, 12, 16];
  const fixed = (): number => 2 + a.id.length + 2 + wReq + 2 + wConn + 2 + wRule + 2 + 2 + time.length + note.length;
  if (p.width - 1 - fixed() < 24) [wReq, wConn, wRule] = [16, 8, 10];
  const stmtWidth = Math.max(0, p.width - 1 - fixed());
  const cell = (s: string, w: number): string => oneLine(s, w).padEnd(w);
  const text = `${p.selected ? '>' : ' '} ${a.id}  ${cell(requesterLabel(a), wReq)}  ${cell(a.connection, wConn)}  ${cell(a.rule, wRule)}  ` +
    `${cell(a.statement, stmtWidth)}  ${time}${note}`;
  return (
    <Text inverse={p.selected} color={left < 60_000 ? p.color('red') : undefined} wrap="truncate-end">
      {text}
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
      <Text bold>shape (p releases any statement like this for the session)</Text>
      <Text>{printable(a.shape ?? a.statement)}</Text>
    </Box>
  );
}
