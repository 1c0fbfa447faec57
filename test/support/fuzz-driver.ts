// The protocol fuzzer's driver: sends fast-check cases (pg-fuzz.ts) straight into a real gateway's
// tunnel WebSocket, several connections at a time, and checks the oracles as it goes: the gateway
// stays up, answers or closes every connection, /healthz answers, a well-behaved client still works,
// memory stays bounded, nothing crashes on stderr, and a masked reader never receives a raw value.
// Used by the CI-sized e2e test (test/e2e/fuzz.test.ts) and by `npm run fuzz` (scripts/fuzz.ts).
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import WebSocket from 'ws';
import { fuzzCase, describeCase, msg, cstr, i32, packet, messageCount, type FuzzCase } from './pg-fuzz.js';

export interface FuzzTarget {
  /** The gateway, http://host:port. */
  url: string;
  connection: string;
  /** A bearer token for a masked reader or an unmasked one (called again when tokens may expire). */
  token(reader: FuzzCase['reader']): Promise<string>;
  serverPid: number;
  serverAlive(): boolean;
  serverStderr(): string;
  /** Runs `select 1` as a well-behaved client (node-postgres); throws when it cannot. */
  wellBehaved(): Promise<void>;
  /** Client backends the gateway holds open on PostgreSQL for sessions (not its catalog readers). */
  upstreamBackends(): Promise<number>;
  /** Values of the masked test data that a masked reader must never receive. */
  rawValues: string[];
}

export interface FuzzOptions {
  seed: number;
  /** Stop after this many messages have been sent (cases are whole: it may go a little over). */
  messages: number;
  /** Connections in flight at once. */
  concurrency: number;
  /** Cases per batch; the between-batch oracles run after each. */
  batch: number;
  /** A framed case's probe must be answered (or the connection closed) within this; also bounds every close. */
  hangMs?: number;
  /** How long an unframed case (mutated bytes) is left before the fuzzer closes it. */
  graceMs?: number;
  /** Fail when the gateway's RSS goes above this. */
  maxRssMiB?: number;
  /** Shrink a failing case with fast-check (it re-runs the case against the live gateway). */
  shrink?: boolean;
  /** Progress lines (the long run prints them). */
  progress?: (line: string) => void;
}

export interface FuzzFailure {
  kind: 'hang' | 'leak' | 'crash' | 'health' | 'client' | 'stderr' | 'sessions' | 'backends' | 'memory' | 'internal';
  message: string;
  /** fast-check seed and path that regenerate the case (fuzzCase), when one case failed. */
  seed?: number;
  path?: string;
  /** The (shrunk, where possible) failing case, labelled, in hex. */
  case?: string;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  /** Frontend messages sent, counting the five-message probe after each case. */
  messages: number;
  bytes: number;
  connections: number;
  /** Connections that got as far as a session (BackendKeyData received). */
  sessions: number;
  elapsedMs: number;
  crashes: number;
  hangs: number;
  leaks: number;
  maxRssMiB: number;
  healthzMaxMs: number;
  healthzProbes: number;
  failures: FuzzFailure[];
}

export interface CaseResult {
  problem?: { kind: 'hang' | 'leak' | 'internal'; message: string };
  bytes: number;
  session: boolean;
  /** Everything the gateway sent on this connection. */
  received: Buffer;
}

/** Live sessions' cancel keys, for CancelRequests that name a real session. */
export type LiveKeys = Map<number, Buffer>;

const PROBE_BASE = 900_000_000_000;
let probeCounter = 0;

/**
 * After each case: end any extended-protocol batch, end a COPY IN (a Query in COPY mode is an
 * error), end the error's skip-till-Sync, end a transaction (an aborted one refuses everything
 * else), then a query whose answer (a number the probe text does not contain) shows the session is
 * still served.
 */
function probe(): { bytes: Buffer; marker: Buffer } {
  const n = ++probeCounter;
  return {
    bytes: Buffer.concat([msg('S'), msg('Q', cstr('select 1')), msg('S'), msg('Q', cstr('rollback')), msg('Q', cstr(`select ${PROBE_BASE} + ${n}`))]),
    marker: Buffer.from(String(PROBE_BASE + n)),
  };
}

const PROBE_MESSAGES = 5;

function wsUrl(url: string, connection: string): string {
  return `${url.replace(/^http/, 'ws')}/v1/tunnel/${encodeURIComponent(connection)}`;
}

/** Sends one case through a new tunnel stream and checks the per-connection oracles. */
export async function runCase(
  target: FuzzTarget, c: FuzzCase, opts: { hangMs: number; graceMs: number; live: LiveKeys; probe?: boolean },
): Promise<CaseResult> {
  const token = await target.token(c.reader);
  const ws = new WebSocket(wsUrl(target.url, target.connection), { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false, maxPayload: 512 * 1024 * 1024 });
  ws.binaryType = 'nodebuffer';
  const received: Buffer[] = [];
  let receivedLen = 0;
  let closed = false;
  let key: number | undefined;
  const p = probe();
  let answered = false;
  let wake: (() => void) | undefined;
  // Only the tail can complete a marker that was not there before.
  let scanFrom = 0;
  ws.on('message', (data: Buffer) => {
    received.push(data);
    receivedLen += data.length;
    if (!answered) {
      const tail = Buffer.concat(received.slice(scanFrom));
      if (tail.includes(p.marker)) answered = true;
      else if (received.length - scanFrom > 64) scanFrom = received.length - 2;
    }
    if (key === undefined) {
      const all = Buffer.concat(received);
      const at = all.indexOf(Buffer.from([0x4b, 0, 0, 0, 12]));
      if (at >= 0 && all.length >= at + 13) {
        key = all.readInt32BE(at + 5);
        opts.live.set(key, all.subarray(at + 9, at + 13));
      }
    }
    wake?.();
  });
  const closedP = new Promise<void>((res) => ws.once('close', () => {
    closed = true;
    if (key !== undefined) opts.live.delete(key);
    wake?.();
    res();
  }));
  ws.on('error', () => {});
  const opened = await new Promise<boolean>((res) => {
    ws.once('open', () => res(true));
    ws.once('unexpected-response', () => res(false));
    ws.once('close', () => res(false));
  });
  if (!opened) {
    ws.terminate();
    return { problem: { kind: 'hang', message: 'the tunnel could not be opened (refused or unreachable)' }, bytes: 0, session: false, received: Buffer.alloc(0) };
  }
  // Resolve CancelRequests for live sessions now, against whoever is live.
  const units = c.units.map((x) => {
    if (x.liveCancel === undefined) return x.bytes;
    const keys = [...opts.live.entries()];
    const [pid, secret] = keys.length > 0 ? keys[x.liveCancel % keys.length]! : [x.liveCancel, Buffer.alloc(4)];
    return packet(i32(80877102), i32(pid), secret);
  });
  const all = Buffer.concat(units);
  let prev = 0;
  for (const at of [...c.splits, all.length]) {
    if (at > prev && ws.readyState === WebSocket.OPEN) ws.send(all.subarray(prev, at), { binary: true });
    prev = at;
  }
  const probed = opts.probe !== false;
  if (probed && ws.readyState === WebSocket.OPEN) ws.send(p.bytes, { binary: true });
  const waitFor = (cond: () => boolean, ms: number): Promise<boolean> => new Promise((res) => {
    if (cond()) return res(true);
    const timer = setTimeout(() => {
      wake = undefined;
      res(cond());
    }, ms);
    wake = () => {
      if (!cond()) return;
      clearTimeout(timer);
      wake = undefined;
      res(true);
    };
  });
  let problem: CaseResult['problem'];
  const done = await waitFor(() => closed || answered, c.framed ? opts.hangMs : opts.graceMs);
  if (!done && c.framed) {
    problem = { kind: 'hang', message: `no answer to the probe and no close within ${opts.hangMs} ms after the last byte (received ${receivedLen} bytes)` };
  }
  if (!closed) ws.close(1000);
  const closedInTime = await Promise.race([closedP.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), opts.hangMs))]);
  if (!closedInTime) {
    ws.terminate();
    problem ??= { kind: 'hang', message: `the tunnel stream did not close within ${opts.hangMs} ms of the fuzzer closing it` };
  }
  const bytes = Buffer.concat(received);
  if (bytes.includes('internal codec error')) problem ??= { kind: 'internal', message: 'the frontend parser reported an internal codec error' };
  if (c.reader === 'masked') {
    const leaked = target.rawValues.filter((v) => bytes.includes(v));
    if (leaked.length > 0) problem = { kind: 'leak', message: `a masked reader received ${leaked.length} raw value(s) of the masked test data` };
  }
  return { problem, bytes: all.length + (probed ? p.bytes.length : 0), session: key !== undefined, received: bytes };
}

export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Lines of the gateway's stderr that show a crash: uncaught exceptions, stack frames, V8 aborts. */
export function crashLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /uncaught|unhandled|^\s+at .+[:(]\d+:\d+\)?$|^(Type|Range|Reference|Syntax)Error\b|FATAL ERROR|heap out of memory|Aborted|core dumped/i.test(l));
}

async function healthz(url: string, hangMs: number): Promise<{ ok: boolean; ms: number; sessions: number; error?: string }> {
  const t = performance.now();
  try {
    const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(hangMs) });
    const body = (await r.json()) as { sessions?: number };
    return { ok: r.status === 200, ms: performance.now() - t, sessions: body.sessions ?? -1, error: r.status === 200 ? undefined : `status ${r.status}` };
  } catch (err) {
    return { ok: false, ms: performance.now() - t, sessions: -1, error: (err as Error).message };
  }
}

async function until(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function newLiveKeys(): LiveKeys {
  return new Map();
}

/** Runs the fuzzer until `messages` are sent or an oracle fails; every failure carries what reproduces it. */
export async function runFuzz(target: FuzzTarget, o: FuzzOptions): Promise<FuzzReport> {
  const hangMs = o.hangMs ?? 20_000;
  const graceMs = o.graceMs ?? 150;
  const maxRss = o.maxRssMiB ?? 1024;
  const live: LiveKeys = new Map();
  const report: FuzzReport = {
    seed: o.seed, cases: 0, messages: 0, bytes: 0, connections: 0, sessions: 0, elapsedMs: 0, crashes: 0, hangs: 0, leaks: 0,
    maxRssMiB: 0, healthzMaxMs: 0, healthzProbes: 0, failures: [],
  };
  const fail = (f: FuzzFailure): void => {
    report.failures.push(f);
    if (f.kind === 'crash') report.crashes++;
    if (f.kind === 'hang') report.hangs++;
    if (f.kind === 'leak') report.leaks++;
  };
  const started = performance.now();
  // /healthz and memory, sampled throughout (not only between batches).
  let sampling = true;
  let healthFailed: string | undefined;
  const sampler = (async () => {
    while (sampling) {
      const h = await healthz(target.url, hangMs);
      report.healthzProbes++;
      report.healthzMaxMs = Math.max(report.healthzMaxMs, h.ms);
      if (!h.ok && target.serverAlive()) healthFailed ??= `/healthz did not answer: ${h.error}`;
      const rss = rssMiB(target.serverPid);
      if (!Number.isNaN(rss)) report.maxRssMiB = Math.max(report.maxRssMiB, rss);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const stderrSeen = crashLines(target.serverStderr()).length;
  try {
    // Per-case failures are recorded and the run goes on (the first few shrunk); a crash or a failed
    // gateway-wide oracle ends it.
    const fatal = (): boolean => report.failures.some((f) => f.kind !== 'hang' && f.kind !== 'leak' && f.kind !== 'internal');
    for (let b = 0; report.messages < o.messages && !fatal(); b++) {
      const seed = (o.seed + b) | 0;
      const cases = fc.sample(fuzzCase, { seed, numRuns: o.batch });
      const failed: { index: number; problem: NonNullable<CaseResult['problem']> }[] = [];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < cases.length && report.messages < o.messages) {
          const index = next++;
          const c = cases[index]!;
          const r = await runCase(target, c, { hangMs, graceMs, live });
          report.cases++;
          report.connections++;
          report.messages += messageCount(c) + PROBE_MESSAGES;
          report.bytes += r.bytes;
          if (r.session) report.sessions++;
          if (r.problem) failed.push({ index, problem: r.problem });
          if (!target.serverAlive()) return;
        }
      };
      await Promise.all(Array.from({ length: o.concurrency }, worker));
      if (!target.serverAlive()) {
        fail({ kind: 'crash', message: `the gateway exited during batch seed ${seed}; its stderr:\n${target.serverStderr().slice(-4000)}`, seed,
          case: cases.slice(0, next).map((c, i) => `#${i}\n${describeCase(c)}`).join('\n') });
        break;
      }
      for (const f of failed) {
        let shown = cases[f.index]!;
        if (o.shrink !== false && report.failures.length < 3) shown = await shrinkCase(target, seed, f.index, { hangMs, graceMs, live }) ?? shown;
        fail({ kind: f.problem.kind, message: f.problem.message, seed, path: String(f.index), case: describeCase(shown) });
      }
      // Between batches: nothing left open, the database's backends released, the gateway healthy.
      const h = await healthz(target.url, hangMs);
      if (!h.ok) fail({ kind: 'health', message: `/healthz did not answer after batch seed ${seed}: ${h.error}`, seed });
      if (healthFailed) fail({ kind: 'health', message: `${healthFailed} (during batch seed ${seed})`, seed });
      if (!await until(async () => (await healthz(target.url, hangMs)).sessions === 0, hangMs)) {
        fail({ kind: 'sessions', message: `sessions still open on the gateway ${hangMs} ms after batch seed ${seed} closed all its connections`, seed });
      }
      if (!await until(async () => (await target.upstreamBackends()) === 0, hangMs)) {
        fail({ kind: 'backends', message: `database backends of closed sessions still open ${hangMs} ms after batch seed ${seed}`, seed });
      }
      try {
        await target.wellBehaved();
      } catch (err) {
        fail({ kind: 'client', message: `a well-behaved client could not run select 1 after batch seed ${seed}: ${(err as Error).message}`, seed });
      }
      const rss = rssMiB(target.serverPid);
      if (!Number.isNaN(rss)) report.maxRssMiB = Math.max(report.maxRssMiB, rss);
      if (report.maxRssMiB > maxRss) fail({ kind: 'memory', message: `gateway RSS reached ${report.maxRssMiB.toFixed(0)} MiB (limit ${maxRss})`, seed });
      const crashes = crashLines(target.serverStderr());
      if (crashes.length > stderrSeen) fail({ kind: 'stderr', message: `the gateway's stderr shows a crash after batch seed ${seed}:\n${crashes.slice(stderrSeen, stderrSeen + 20).join('\n')}`, seed });
      o.progress?.(`batch ${b} (seed ${seed}) at ${((performance.now() - started) / 1000).toFixed(0)} s: ${report.cases} cases, ${report.messages} messages, ${report.sessions} sessions, RSS ${rss.toFixed(0)} MiB, healthz max ${report.healthzMaxMs.toFixed(0)} ms`);
    }
  } finally {
    sampling = false;
    await sampler;
    report.elapsedMs = performance.now() - started;
  }
  return report;
}

/** fast-check's shrinking of a failing case, re-run against the live gateway; undefined when it no longer fails. */
async function shrinkCase(target: FuzzTarget, seed: number, index: number, opts: { hangMs: number; graceMs: number; live: LiveKeys }): Promise<FuzzCase | undefined> {
  const details = await fc.check(
    fc.asyncProperty(fuzzCase, async (c) => (await runCase(target, c, opts)).problem === undefined),
    { seed, path: String(index), interruptAfterTimeLimit: 120_000, markInterruptAsFailure: false },
  );
  return details.failed && details.counterexample ? details.counterexample[0] : undefined;
}

/** The figures of a run, one per line, for the long run's output and a failing test's message. */
export function formatReport(r: FuzzReport): string {
  const s = r.elapsedMs / 1000;
  return [
    `seed                 ${r.seed}`,
    `messages sent        ${r.messages.toLocaleString('en-US')} (${(r.bytes / 1048576).toFixed(1)} MiB; 5 probe messages per connection included)`,
    `connections          ${r.connections.toLocaleString('en-US')} (${r.sessions.toLocaleString('en-US')} reached a session)`,
    `elapsed              ${s.toFixed(1)} s (${(r.messages / s).toFixed(0)} messages/s, ${(r.sessions / s).toFixed(1)} sessions/s)`,
    `crashes              ${r.crashes}`,
    `hangs                ${r.hangs}`,
    `raw values leaked    ${r.leaks}`,
    `max gateway RSS      ${r.maxRssMiB.toFixed(0)} MiB`,
    `healthz max latency  ${r.healthzMaxMs.toFixed(0)} ms over ${r.healthzProbes} probes`,
    ...r.failures.map((f) => `FAILED ${f.kind}: ${f.message}${f.seed !== undefined ? `\n  reproduce: seed ${f.seed}${f.path !== undefined ? ` path ${f.path}` : ''}` : ''}${f.case ? `\n${f.case}` : ''}`),
  ].join('\n');
}

/** The case a failure names by its seed and path, regenerated. */
export function caseAt(seed: number, path: number): FuzzCase {
  return fc.sample(fuzzCase, { seed, numRuns: path + 1 })[path]!;
}

/** The backend messages of a received stream, as type letters with lengths (for looking at a replayed case). */
export function backendSummary(b: Buffer): string {
  const out: string[] = [];
  let off = 0;
  while (off < b.length) {
    if (b[off] === 0x4e && (off + 5 > b.length || b.readInt32BE(off + 1) > 0xffff)) {
      out.push('N(ssl no)');
      off++;
      continue;
    }
    if (off + 5 > b.length) break;
    const len = b.readInt32BE(off + 1);
    const t = String.fromCharCode(b[off]!);
    const body = b.subarray(off + 5, off + 1 + len);
    out.push(t === 'E' || t === 'N' ? `${t}(${body.toString('latin1').replace(/\0/g, '|').slice(0, 400)})` : `${t}${len > 4 ? `[${len - 4}]` : ''}`);
    off += 1 + len;
  }
  return out.join(' ');
}

/** The well-behaved client's check after a batch: a fresh client's `select 1` answers 1 through the gateway. */
export async function selectOne(c: pg.Client): Promise<void> {
  try {
    await c.connect();
    const r = await c.query('select 1 as one');
    if (r.rows[0]?.one !== 1) throw new Error(`select 1 returned ${JSON.stringify(r.rows)}`);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Client backends of the gateway's upstream role, the gateway's own (catalog watch etc., `phigate-*`) excepted. */
export async function upstreamBackends(admin: pg.Client, role: string): Promise<number> {
  const r = await admin.query(
    `select count(*)::int as n from pg_stat_activity where usename = $1 and backend_type = 'client backend' and coalesce(application_name, '') not like 'phigate-%'`,
    [role],
  );
  return r.rows[0].n as number;
}
