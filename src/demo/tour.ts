// The guided tour of `phigate demo`: an agent reads through the gateway, hits a blocked DROP, waits
// on a held DELETE that bob approves, and an auditor looks at the evidence. Every step runs the real
// CLI as a child process with a dev identity's token, so what is shown is what a user would see.
// Every wait is bounded and every failure says which step failed and where the gateway log is.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { AUDIT_SEARCH_PATH, type SearchResponse } from '../audit/api.js';
import { PhigateError } from '../cli/errors.js';
import { outPaint } from '../ui/style.js';
import { DEMO_RULES } from './policy.js';

export interface TourOptions {
  url: string;
  /** The phigate entry script the children run (this process's own). */
  bin: string;
  /** Gateway log file, named in failure messages. */
  logFile: string;
  out: (s?: string) => void;
  /** Ctrl-C: stops the step under way and its children. */
  signal: AbortSignal;
  /** Whether the demo policy masks PHI (the explanations say so). */
  masking: boolean;
  /** Bound for each child process and each wait. */
  stepTimeoutMs?: number;
}

export const AGENT_NAME = 'demo-agent';
/** The identity name of the dev issuer's `dev-agent` client, as the gateway records it. */
export const AGENT_USER = 'dev-agent';
/** The visit the agent wants to delete in step 3. */
export const DELETE_VISIT_ID = 42;

const READ_SQL = "SELECT id, mrn, full_name, ssn, date_of_birth, email, city FROM patients WHERE state = 'IL' ORDER BY id LIMIT 5";
const DROP_SQL = 'DROP TABLE visits';
const DELETE_SQL = `DELETE FROM visits WHERE id = ${DELETE_VISIT_ID}`;

class TourAborted extends Error {}

/** A dev identity's access token from the dev issuer's client-credentials grant (`dev-<name>`). */
export async function devToken(url: string, name: string, signal?: AbortSignal): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${url}/oidc/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`dev-${name}:dev-${name}-secret`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
      signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(15_000)]) : AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new PhigateError(`the dev issuer at ${url}/oidc did not answer for dev-${name}: ${(err as Error).message}`);
  }
  const token = res.ok ? ((await res.json()) as { access_token?: string }).access_token : undefined;
  if (!token) throw new PhigateError(`the dev issuer did not issue a token for dev-${name} (HTTP ${res.status})`);
  return token;
}

interface ChildRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once the process has exited and its output has been read to the end. */
  exited: Promise<number>;
  /** Holds further output back (shown by release) so the screen tells the steps in order. */
  pause(): void;
  release(): void;
}

export async function runTour(o: TourOptions): Promise<void> {
  const c = outPaint();
  const out = o.out;
  const limit = o.stepTimeoutMs ?? 60_000;
  const children = new Set<ChildProcess>();
  const onAbort = (): void => {
    for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGTERM');
  };
  o.signal.addEventListener('abort', onAbort, { once: true });
  const say = (indent: number, text: string): void => out(`${' '.repeat(indent)}${text}`);

  /** Runs `phigate ARGS` with a token; echoes its output, whole lines indented, as it arrives. */
  const phigate = (args: string[], token: string): ChildRun => {
    const child = spawn(process.execPath, [o.bin, ...args], {
      env: { ...process.env, PHIGATE_TOKEN: token, PHIGATE_SERVER: o.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    const text = { out: '', err: '' };
    const partial = { out: '', err: '' };
    let paused = false;
    const queued: string[] = [];
    const show = (line: string): void => {
      if (paused) queued.push(line);
      else out(line.trim() ? `      ${line.trimEnd()}` : '');
    };
    const relay = (d: Buffer, into: 'out' | 'err'): void => {
      const chunk = d.toString();
      text[into] += chunk;
      const lines = (partial[into] + chunk).split('\n');
      partial[into] = lines.pop() ?? '';
      lines.forEach(show);
    };
    child.stdout!.on('data', (d: Buffer) => relay(d, 'out'));
    child.stderr!.on('data', (d: Buffer) => relay(d, 'err'));
    const streamsEnded = Promise.all([child.stdout!, child.stderr!].map((st) => new Promise<void>((r) => st.once('close', () => r()))));
    const exited = new Promise<number>((resolve) => {
      child.once('error', () => resolve(127));
      child.once('exit', (code, sig) => {
        children.delete(child);
        void streamsEnded.then(() => {
          for (const k of ['out', 'err'] as const) if (partial[k]) show(partial[k]);
          resolve(code ?? (sig ? 128 : 1));
        });
      });
    });
    return {
      child, stdout: () => text.out, stderr: () => text.err, exited,
      pause: () => void (paused = true),
      release: () => {
        paused = false;
        queued.splice(0).forEach(show);
      },
    };
  };

  /** Waits for `p` at most `limit` ms; on timeout kills `run` (if any) and fails the step. */
  const bounded = async <T>(p: Promise<T>, what: string, run?: ChildRun): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        run?.child.kill('SIGTERM');
        reject(new PhigateError(`${what} did not happen within ${Math.round(limit / 1000)} s`, 1, `the gateway log is ${o.logFile}`));
      }, limit);
    });
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new TourAborted('stopped'));
      if (o.signal.aborted) onAbort();
      else o.signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => {});
    try {
      return await Promise.race([p, timeout, aborted]);
    } finally {
      clearTimeout(timer);
      if (onAbort) o.signal.removeEventListener('abort', onAbort);
    }
  };

  const agentExec = (sql: string, token: string, extra: string[] = []): ChildRun =>
    phigate(['exec', '--name', AGENT_NAME, ...extra, '--', 'psql', '-X', '-c', sql], token);
  const showCmd = (cmd: string, who?: string): void => say(6, `${c.bold(`$ ${cmd}`)}${who ? c.dim(`    # as ${who}`) : ''}`);
  const step = (n: number, title: string, ...explain: string[]): void => {
    out();
    out(`${c.cyan.bold(`[${n}/4]`)} ${c.bold(title)}`);
    for (const line of explain) say(6, c.dim(line));
  };

  try {
    out();
    out(c.bold('Tour: an AI agent works on the EHR through phigate'));
    say(2, 'Three dev service identities: dev-agent (group ai-agents) runs the agent, dev-bob (privacy-officers)');
    say(2, 'approves, dev-carol (auditors) audits. Each step runs the real CLI with that identity\'s token.');
    if (spawnSync('psql', ['--version'], { stdio: 'ignore' }).status !== 0) {
      say(2, c.yellow('psql is not installed here, so the agent steps are skipped: install the PostgreSQL client (Debian: postgresql-client) to see them.'));
      return;
    }
    const [agent, bob, carol] = await bounded(
      Promise.all([devToken(o.url, 'agent', o.signal), devToken(o.url, 'bob', o.signal), devToken(o.url, 'carol', o.signal)]),
      'getting dev tokens');

    // 1: a read with a WHERE clause passes; the agent never holds a database password.
    step(1, 'An agent reads patient rows',
      '`phigate exec` gives the command a private local port and PG* variables; it never sees a database password.',
      `The session is an agent session "${AGENT_NAME}" on behalf of dev-agent; --reason is recorded with it.`,
      ...(o.masking ? ['The policy masks PHI on the way out: SSN, MRN, names, emails and birth dates never reach the agent.'] : []));
    showCmd(`phigate exec --name ${AGENT_NAME} --reason "tour: find patients" -- psql -X -c "${READ_SQL}"`, 'agent');
    const read = agentExec(READ_SQL, agent, ['--reason', 'tour: find patients']);
    const readCode = await bounded(read.exited, 'step 1 (the read)', read);
    if (readCode !== 0) throw new PhigateError(`step 1: psql exited with ${readCode}`, 1, `the gateway log is ${o.logFile}`);

    // 2: DDL is refused before it reaches the database.
    step(2, 'DDL is blocked',
      `Rule ${DEMO_RULES.ddl} refuses DROP, ALTER, CREATE, TRUNCATE, GRANT and REVOKE: psql gets an error (SQLSTATE 42501)`,
      'and the statement never reaches the database.');
    showCmd(`phigate exec --name ${AGENT_NAME} -- psql -X -c "${DROP_SQL}"`, 'agent');
    const drop = agentExec(DROP_SQL, agent);
    const dropCode = await bounded(drop.exited, 'step 2 (the DROP)', drop);
    if (!/ERROR: .*no-ddl/.test(drop.stderr())) {
      throw new PhigateError(`step 2: the DROP was not blocked by rule ${DEMO_RULES.ddl} (psql exited with ${dropCode})`, 1, `the gateway log is ${o.logFile}`);
    }
    say(6, c.green(`psql exited with ${dropCode}; table visits is untouched.`));

    // 3: a PHI write waits for a privacy officer; bob approves it from "another terminal".
    step(3, 'A write to PHI waits for a privacy officer',
      `Rule ${DEMO_RULES.writes} holds INSERT, UPDATE and DELETE on patients and visits until a member of privacy-officers`,
      'approves (never the requester). The agent\'s psql simply waits.');
    showCmd(`phigate exec --name ${AGENT_NAME} -- psql -X -c "${DELETE_SQL}"`, 'agent');
    const del = agentExec(DELETE_SQL, agent);
    const held = await bounded(new Promise<string>((resolve, reject) => {
      const look = (): boolean => {
        const m = /waiting for approval (apr-[A-Za-z0-9_-]+)/.exec(del.stderr());
        if (m) resolve(m[1]!);
        return Boolean(m);
      };
      if (look()) return;
      del.child.stderr!.on('data', () => void look());
      void del.exited.then((code) => {
        if (!look()) reject(new PhigateError(`step 3: the DELETE was not held for approval (psql exited with ${code})`, 1, `the gateway log is ${o.logFile}`));
      });
    }), 'step 3 (the DELETE being held)', del);
    del.pause();
    out();
    say(6, `bob (privacy-officers) sees ${held} in \`phigate approvals\` and approves it from his own terminal:`);
    showCmd(`phigate approve ${held} --reason "duplicate visit, ticket EHR-1042"`, 'bob');
    const approve = phigate(['approve', held, '--reason', 'duplicate visit, ticket EHR-1042'], bob);
    const approveCode = await bounded(approve.exited, 'step 3 (bob\'s approval)', approve);
    if (approveCode !== 0) throw new PhigateError(`step 3: \`phigate approve ${held}\` exited with ${approveCode}`, 1, `the gateway log is ${o.logFile}`);
    out();
    say(6, 'The agent\'s DELETE runs:');
    del.release();
    const delCode = await bounded(del.exited, 'step 3 (the DELETE finishing)', del);
    if (!/DELETE 1/.test(del.stdout())) throw new PhigateError(`step 3: the approved DELETE did not complete (psql exited with ${delCode})`, 1, `the gateway log is ${o.logFile}`);

    // 4: the evidence, as an auditor sees it.
    step(4, 'The evidence',
      'Every session, statement, decision and approval is a record in a hash-chained, signed audit log.',
      'carol (auditors) searches it, replays the agent\'s session and verifies the chain.');
    showCmd(`phigate audit search --user ${AGENT_USER} --since 15m --limit 8`, 'carol');
    const search = phigate(['audit', 'search', '--user', AGENT_USER, '--since', '15m', '--limit', '8'], carol);
    await bounded(search.exited, 'step 4 (audit search)', search);
    const session = await bounded(agentSession(o.url, carol, o.signal), 'step 4 (finding the agent\'s session)');
    out();
    if (session) {
      showCmd(`phigate replay ${session}`, 'carol');
      const replay = phigate(['replay', session], carol);
      const replayCode = await bounded(replay.exited, 'step 4 (replay)', replay);
      if (replayCode !== 0) say(6, c.yellow('(the replay is not available for this session; the records above are the evidence)'));
    } else {
      say(6, c.yellow('(no statement of the agent found in the audit log to replay)'));
    }
    out();
    showCmd('phigate audit verify', 'carol');
    const verify = phigate(['audit', 'verify'], carol);
    const verifyCode = await bounded(verify.exited, 'step 4 (audit verify)', verify);
    if (verifyCode !== 0) throw new PhigateError(`step 4: \`phigate audit verify\` exited with ${verifyCode}`, 1, `the gateway log is ${o.logFile}`);
    out();
    out(c.green.bold('Tour complete.'));
  } catch (err) {
    if (err instanceof TourAborted || o.signal.aborted) return;
    throw err;
  } finally {
    o.signal.removeEventListener('abort', onAbort);
    onAbort();
  }
}

/** The session of the agent's held DELETE (the one worth replaying), from the audit log. */
async function agentSession(url: string, token: string, signal: AbortSignal): Promise<string | undefined> {
  const q = new URLSearchParams({ user: AGENT_USER, type: 'statement', sql: 'DELETE FROM visits', limit: '1' });
  const res = await fetch(`${url}${AUDIT_SEARCH_PATH}?${q}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.any([signal, AbortSignal.timeout(15_000)]),
  });
  if (!res.ok) return undefined;
  const body = (await res.json()) as SearchResponse;
  const s = body.records[0]?.['session'];
  return typeof s === 'string' ? s : undefined;
}
