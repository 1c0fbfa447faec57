// The session core driven without PostgreSQL, sockets or timers (issue 15): startup, the order of
// evidence and forwarding, refusals in place, holds, audit failures, the settings barrier, a
// pooled client's Terminate and the idle-in-transaction timer on an injected clock.
import { beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { SessionCore, type CoreOptions } from '../../src/server/session/core.js';
import type { Action } from '../../src/server/session/actions.js';
import { ShapeClassifierCache } from '../../src/policy/shape-cache.js';
import { initClassifier } from '../../src/policy/classify/index.js';
import { parsePolicyFile } from '../../src/policy/file.js';
import { FrontendType, commandComplete, errorResponse, parameterStatus, readyForQuery } from '../../src/pg/index.js';
import type { AuditEvent } from '../../src/audit/events.js';
import type { Logger } from '../../src/common/log.js';

const POLICY = parsePolicyFile(`version: 1
connections: { ehr: { upstream: "postgres://u@h/d", allow_groups: [engineering] } }
limits: { idle_in_transaction_timeout: 1s }
rules:
  - { name: no-drop, when: { statement: [drop] }, action: block, message: "dropping tables is not allowed" }
  - { name: phi-writes, when: { statement: [delete], tables: [visits] }, action: approve, approvers: [privacy-officers] }
default: allow
`);

const QUIET: Logger = { log() {}, debug() {}, info() {}, warn() {}, error() {} };

beforeAll(async () => initClassifier());

type Of<K extends Action['kind']> = Extract<Action, { kind: K }>;

/** A core with a clock the test moves, and the actions it asked for since the last look. */
function harness(extra: Partial<CoreOptions> = {}) {
  let now = 1_700_000_000_000;
  const core = new SessionCore({
    id: 'sess-1', identity: { subject: 'alice', issuer: 'https://idp', name: 'alice', groups: ['engineering'], kind: 'human', expiresAt: new Date(0) },
    connection: POLICY.connections.get('ehr')!, log: QUIET, clock: { now: () => now },
    policy: () => POLICY, policyVersion: () => 'v1', classifier: new ShapeClassifierCache(), approvals: true, analyzes: false,
    ...extra,
  });
  const take = (): Action[] => core.actions.splice(0);
  return {
    core,
    take,
    advance: (ms: number) => (now += ms),
    /** Startup and an upstream that is ready; the startup's actions are consumed. */
    start(pooled = false): void {
      core.clientData(serialize.startup({ user: 'alice', database: 'ehr' }));
      core.upstreamReady({
        parameters: new Map([['client_encoding', 'UTF8'], ['standard_conforming_strings', 'on']]), transactionStatus: 'I',
        notices: [], leftover: Buffer.alloc(0), pooled, clientKey: { processId: 7, secretKey: Buffer.alloc(4, 1) },
      });
      take();
    },
  };
}

const kinds = (actions: Action[]): string[] => actions.map((a) => a.kind);
const only = <K extends Action['kind']>(actions: Action[], kind: K): Of<K>[] => actions.filter((a): a is Of<K> => a.kind === kind);
const upstreamBytes = (actions: Action[]): Buffer => Buffer.concat(only(actions, 'upstream').flatMap((a) => a.out));
const clientBytes = (actions: Action[]): Buffer => Buffer.concat(only(actions, 'client').map((a) => a.data));
const recorded = (actions: Action[]): AuditEvent[] => only(actions, 'record').flatMap((a) => a.events);

/** The shell's part for one record action: written, with sequence numbers from 1. */
function written(core: SessionCore, actions: Action[]): void {
  for (const r of only(actions, 'record')) core.recorded(r.events, r.events.map((_, i) => ({ seq: i + 1 })));
}

describe('session core: startup', () => {
  it('forwards only the startup parameters that cannot change who the session is, and says which it ignored', () => {
    const { core, take } = harness();
    core.clientData(serialize.startup({ user: 'alice', database: 'ehr', application_name: 'psql', search_path: 'public', options: '-c role=admin', role: 'admin' }));
    const connect = only(take(), 'connect');
    expect(connect).toHaveLength(1);
    expect(connect[0]!.forwarded).toEqual({ application_name: 'psql', search_path: 'public', client_encoding: 'UTF8' });
    expect(core.state).toBe('connecting');
    core.upstreamReady({
      parameters: new Map([['client_encoding', 'UTF8']]), transactionStatus: 'I', notices: [], leftover: Buffer.alloc(0),
      pooled: false, clientKey: { processId: 7, secretKey: Buffer.alloc(4, 1) },
    });
    const actions = take();
    // The session.start record comes before the client hears that its session started.
    expect(kinds(actions).slice(0, 3)).toEqual(['record', 'client', 'attachUpstream']);
    expect(recorded(actions)[0]).toMatchObject({ type: 'session.start', user: 'alice', application_name: 'psql' });
    expect(clientBytes(actions).toString()).toContain('phigate ignored startup parameter(s): options, role');
  });

  it('refuses a replication connection before connecting', () => {
    const { core, take } = harness();
    core.clientData(serialize.startup({ user: 'alice', database: 'ehr', replication: 'database' }));
    const actions = take();
    expect(kinds(actions)).not.toContain('connect');
    expect(clientBytes(actions).toString()).toContain('replication connections are not supported');
    expect(core.state).toBe('closed');
  });

  it('ends a session whose upstream reads strings with backslash escapes', () => {
    const { core, take } = harness();
    core.clientData(serialize.startup({ user: 'alice', database: 'ehr' }));
    take();
    core.upstreamReady({
      parameters: new Map([['standard_conforming_strings', 'off']]), transactionStatus: 'I', notices: [], leftover: Buffer.alloc(0),
      pooled: false, clientKey: { processId: 7, secretKey: Buffer.alloc(4, 1) },
    });
    const actions = take();
    expect(kinds(actions)[0]).toBe('destroyUpstream');
    expect(kinds(actions)).not.toContain('record');
    expect(clientBytes(actions).toString()).toContain('standard_conforming_strings was set to off');
  });
});

describe('session core: statements', () => {
  it('records an allowed query before it goes upstream, as the client sent it', () => {
    const { core, take, start } = harness();
    start();
    const q = serialize.query('SELECT 1');
    core.clientData(q);
    const actions = take();
    expect(kinds(actions)).toEqual(['record', 'upstream']);
    expect(recorded(actions)).toMatchObject([{ type: 'statement', decision: 'allow', sql: 'SELECT <n>' }]);
    expect(only(actions, 'upstream')[0]!.whole).toBe(q);
  });

  it('refuses a blocked statement in place: its text never goes upstream, the client gets our error and ReadyForQuery', () => {
    const { core, take, start } = harness();
    start();
    core.clientData(serialize.query('DROP TABLE visits'));
    const actions = take();
    expect(recorded(actions)).toMatchObject([{ type: 'statement', decision: 'block', rule: 'no-drop' }]);
    const up = upstreamBytes(actions).toString();
    expect(up).not.toContain('DROP');
    const token = /PHIGATE_REFUSED_[0-9a-f]{24}/.exec(up)?.[0];
    expect(token).toBeDefined();
    // The database fails the stand-in; the client gets the policy's error in its place.
    core.upstreamData(Buffer.concat([
      errorResponse({ severity: 'ERROR', code: '42601', message: `syntax error at or near "${token}"` }), readyForQuery('I'),
    ]));
    const back = take();
    const text = clientBytes(back).toString();
    expect(text).toContain('42501');
    expect(text).toContain('no-drop');
    expect(text).not.toContain('PHIGATE_REFUSED');
    expect(clientBytes(back).subarray(-6)).toEqual(readyForQuery('I'));
  });

  it('holds a statement for approval; approved, it is recorded and only then forwarded', () => {
    const { core, take, start } = harness();
    start();
    core.clientData(serialize.query('DELETE FROM visits WHERE id = 1'));
    const held = take();
    expect(kinds(held)).toEqual(['record', 'requestApproval']);
    expect(only(held, 'requestApproval')[0]!.input).toMatchObject({ rule: 'phi-writes', approvers: ['privacy-officers'] });
    expect(core.holding).toBe(true);
    // Later messages wait behind the held statement.
    core.clientData(serialize.query('SELECT 2'));
    expect(kinds(take())).toEqual([]);
    core.holdRequested('apr-1');
    const requested = take();
    expect(recorded(requested)).toMatchObject([{ type: 'approval.requested', approval: 'apr-1' }]);
    expect(only(requested, 'control')[0]!.msg).toMatchObject({ type: 'notice' });
    core.holdDecided({ approved: true, approver: 'bob', scope: 'once' });
    const decided = take();
    expect(kinds(decided).slice(0, 2)).toEqual(['record', 'control']);
    expect(only(decided, 'record')[0]!.events).toMatchObject([{ type: 'approval.decided', outcome: 'approved', approver: 'bob' }, { type: 'statement', decision: 'approved' }]);
    // What queued behind the hold is decided (and recorded) after it.
    expect(only(decided, 'record')[1]!.events).toMatchObject([{ type: 'statement', decision: 'allow', sql: 'SELECT <n>' }]);
    const up = upstreamBytes(decided).toString();
    expect(up).toContain('DELETE FROM visits WHERE id = 1');
    expect(up).toContain('SELECT 2');
    expect(up.indexOf('DELETE')).toBeLessThan(up.indexOf('SELECT 2'));
    expect(core.holding).toBe(false);
  });

  it('a denied hold never reaches the database: the client gets 42501 naming the approver', () => {
    const { core, take, start } = harness();
    start();
    core.clientData(serialize.query('DELETE FROM visits WHERE id = 1'));
    take();
    core.holdRequested('apr-2');
    take();
    core.holdDecided({ approved: false, cause: 'denied', approver: 'bob', reason: 'not today' });
    const decided = take();
    expect(recorded(decided)).toMatchObject([{ type: 'approval.decided', outcome: 'denied' }, { type: 'statement', decision: 'denied' }]);
    const up = upstreamBytes(decided).toString();
    expect(up).not.toContain('DELETE');
    const token = /PHIGATE_REFUSED_[0-9a-f]{24}/.exec(up)![0];
    core.upstreamData(Buffer.concat([errorResponse({ severity: 'ERROR', code: '42601', message: `syntax error at or near "${token}"` }), readyForQuery('I')]));
    expect(clientBytes(take()).toString()).toContain('denied by bob: not today');
  });

  it('fails closed when a statement record cannot be written: nothing after it, and the session ends with 58030', () => {
    const { core, take, start } = harness();
    start();
    core.clientData(serialize.query('SELECT 1'));
    const actions = take();
    const record = only(actions, 'record')[0]!;
    expect(record.failClosed).toBe(true);
    // The shell drops what followed the record and reports the failure.
    core.recordFailed(record.events, true, new Error('disk full'));
    const after = take();
    expect(kinds(after)).not.toContain('upstream');
    expect(clientBytes(after).toString()).toContain('58030');
    expect(kinds(after)).toEqual(['client', 'closeClient', 'end', 'record', 'ended']);
    expect(recorded(after)).toMatchObject([{ type: 'session.end', reason: 'fatal' }]);
    expect(only(after, 'record')[0]!.failClosed).toBe(false);
    expect(core.state).toBe('closed');
  });

  it('a failed record before an end in the same turn: the end the shell dropped is pushed again, with 58030', () => {
    const { core, take, start } = harness();
    start();
    // A query, then bytes that are no frontend message: the record, the query, then the session ends (08P01).
    core.clientData(Buffer.concat([serialize.query('SELECT 1'), Buffer.from([0x01, 0, 0, 0, 4])]));
    const actions = take();
    expect(kinds(actions)).toEqual(['record', 'upstream', 'client', 'closeClient', 'end', 'record', 'ended']);
    expect(clientBytes(actions).toString()).toContain('08P01');
    // The shell writes nothing after the failed first record: the session ends for that instead.
    core.recordFailed(only(actions, 'record')[0]!.events, true, new Error('disk full'));
    const after = take();
    expect(kinds(after)).toEqual(['client', 'closeClient', 'end', 'record', 'ended']);
    expect(clientBytes(after).toString()).toContain('58030');
    expect(recorded(after)).toMatchObject([{ type: 'session.end' }]);
  });

  it('a statement whose result comes back completes its record with statement.result, written with the next record', () => {
    const { core, take, start } = harness();
    start();
    core.clientData(serialize.query('SELECT 1'));
    written(core, take());
    core.upstreamData(Buffer.concat([commandComplete('SELECT 1'), readyForQuery('I')]));
    take();
    core.clientData(serialize.query('SELECT 2'));
    expect(recorded(take())).toMatchObject([{ type: 'statement.result', statement: 1, rows: 1, tag: 'SELECT 1' }, { type: 'statement', decision: 'allow' }]);
  });
});

describe('session core: the settings barrier', () => {
  it('holds later statements until a SET of client_encoding is answered and its ParameterStatus checked', () => {
    const { core, take, start } = harness();
    start();
    core.clientData(Buffer.concat([serialize.query("SET client_encoding TO 'UTF8'"), serialize.query('SELECT 2')]));
    const first = take();
    expect(upstreamBytes(first).toString()).toContain('SET client_encoding');
    expect(upstreamBytes(first).toString()).not.toContain('SELECT 2');
    core.upstreamData(Buffer.concat([commandComplete('SET'), parameterStatus('client_encoding', 'UTF8'), readyForQuery('I')]));
    const released = take();
    expect(upstreamBytes(released).toString()).toContain('SELECT 2');
    expect(kinds(released).indexOf('client')).toBeLessThan(kinds(released).indexOf('upstream'));
  });

  it('ends the session when the server switches to an encoding whose bytes could hide a backslash', () => {
    const { core, take, start } = harness();
    start();
    core.clientData(serialize.query("SET client_encoding TO 'SJIS'"));
    take();
    core.upstreamData(Buffer.concat([commandComplete('SET'), parameterStatus('client_encoding', 'SJIS'), readyForQuery('I')]));
    const actions = take();
    expect(clientBytes(actions).toString()).toContain('client_encoding was set to SJIS');
    expect(clientBytes(actions).toString()).not.toContain('SET');
    expect(core.state).toBe('closed');
  });
});

describe('session core: Terminate', () => {
  it('on a pooled connection it is not forwarded, and the session closes once every answer is back', () => {
    const { core, take, start } = harness();
    start(true);
    core.clientData(Buffer.concat([serialize.query('SELECT 1'), serialize.end()]));
    const actions = take();
    const up = upstreamBytes(actions);
    expect(up.toString()).toContain('SELECT 1');
    expect(up[up.length - 5]).not.toBe(FrontendType.Terminate);
    expect(kinds(actions)).not.toContain('closeClient');
    core.upstreamData(Buffer.concat([commandComplete('SELECT 1'), readyForQuery('I')]));
    const after = take();
    expect(kinds(after)).toEqual(['client', 'closeClient', 'resumeClient']);
    expect(core.state).toBe('closing');
    expect(core.upstreamQuiet).toBe(true);
  });

  it('a server stop while the pooled session waits for the client\'s close frame writes its session.end at once', () => {
    const { core, take, start } = harness();
    start(true);
    core.clientData(Buffer.concat([serialize.query('SELECT 1'), serialize.end()]));
    take();
    core.upstreamData(Buffer.concat([commandComplete('SELECT 1'), readyForQuery('I')]));
    take();
    expect(core.state).toBe('closing');
    core.endNow('57P01', 'terminating connection because phigate server is shutting down');
    const ended = take();
    const records = only(ended, 'record').flatMap((r) => r.events);
    expect(records.map((e) => e.type)).toContain('session.end');
    expect(records.find((e) => e.type === 'session.end')).toMatchObject({ reason: 'client closed' });
    expect(core.state).toBe('closed');
  });

  it('on an own connection it goes upstream, and the backend closing ends the session normally', () => {
    const { core, take, start } = harness();
    start(false);
    core.clientData(serialize.end());
    expect(upstreamBytes(take())).toEqual(serialize.end());
    core.upstreamClosed();
    expect(kinds(take())).toEqual(['closeClient', 'resumeClient']);
  });
});

describe('session core: backpressure', () => {
  it('pauses the client while the database is full, but never a session already ending (its close frame must be read)', () => {
    const { core, take, start } = harness();
    start();
    core.clientData(serialize.query('SELECT 1'));
    take();
    core.upstreamFull();
    expect(kinds(take())).toEqual(['pauseClient']);
    core.upstreamDrained();
    expect(kinds(take())).toEqual(['resumeClient']);
    // A big message the database socket cannot take at once, then a protocol error in the same chunk:
    // the shell reports the full socket only after the core has already ended the session.
    core.clientData(Buffer.concat([serialize.query('SELECT 2'), Buffer.from([0x07, 0, 0, 0, 4])]));
    expect(kinds(take())).toContain('closeClient');
    core.upstreamFull();
    expect(kinds(take())).not.toContain('pauseClient');
  });
});

describe('session core: pipeline depth', () => {
  const DEEP = parsePolicyFile(`version: 1
connections: { ehr: { upstream: "postgres://u@h/d", allow_groups: [engineering] } }
limits: { pipeline_depth: 4 }
default: allow
`);

  it('asks the database to flush after every run it forwards past the depth, also runs cut across turns (a loaded host)', () => {
    // A clock that moves 11 ms each time it is read: every run of messages is cut after one message,
    // as on a host too busy to finish SLICE_MS of work in one turn.
    let t = 0;
    const { core, take, start } = harness({ policy: () => DEEP, clock: { now: () => (t += 11) } });
    start();
    const parts: Buffer[] = [serialize.parse({ name: 'q', text: 'select $1::int AS n', types: [] })];
    for (let i = 0; i < 12; i++) parts.push(serialize.bind({ statement: 'q', values: [String(i)] }), serialize.execute({}));
    core.clientData(Buffer.concat(parts));
    const sent: Buffer[] = [];
    let paused = false;
    for (let turn = 0; turn < 100; turn++) {
      const actions = take();
      written(core, actions);
      sent.push(upstreamBytes(actions));
      paused ||= kinds(actions).includes('pauseClient');
      if (!kinds(actions).includes('nextTurn')) break;
      core.nextTurn();
    }
    expect(paused).toBe(true);
    const wire = Buffer.concat(sent);
    const types: string[] = [];
    for (let off = 0; off + 5 <= wire.length; off += 1 + wire.readInt32BE(off + 1)) types.push(String.fromCharCode(wire[off]!));
    expect(types.filter((x) => x === 'E')).toHaveLength(12);
    // Without a Flush behind the last Executes, PostgreSQL keeps their answers, the depth never
    // falls and the paused client (waiting to send its Sync) waits forever.
    expect(types.at(-1)).toBe('H');
  });
});

describe('session core: idle in transaction', () => {
  it('arms a timer when idle inside a transaction and ends the session once the injected clock passes the limit', () => {
    const { core, take, advance, start } = harness();
    start();
    core.clientData(serialize.query('BEGIN'));
    take();
    core.upstreamData(Buffer.concat([commandComplete('BEGIN'), readyForQuery('T')]));
    expect(only(take(), 'idleTimer')).toMatchObject([{ ms: 1000 }]);
    // Early (a timer is never exact): it is armed again for what is left.
    advance(400);
    core.idleTimerFired(0);
    expect(only(take(), 'idleTimer')).toMatchObject([{ ms: 600 }]);
    // A client still reading its last answer is slow, not idle: the whole limit again.
    advance(600);
    core.idleTimerFired(100);
    expect(only(take(), 'idleTimer')).toMatchObject([{ ms: 1000 }]);
    advance(1000);
    core.idleTimerFired(0);
    const actions = take();
    expect(clientBytes(actions).toString()).toContain('25P03');
    expect(recorded(actions)).toMatchObject([{ type: 'session.end', reason: 'idle in transaction timeout' }]);
    expect(core.state).toBe('closed');
  });

  it('arms no timer outside a transaction, and a client message ends the idle period', () => {
    const { core, take, advance, start } = harness();
    start();
    core.clientData(serialize.query('SELECT 1'));
    take();
    core.upstreamData(Buffer.concat([commandComplete('SELECT 1'), readyForQuery('I')]));
    expect(kinds(take())).not.toContain('idleTimer');
    core.clientData(serialize.query('BEGIN'));
    take();
    core.upstreamData(Buffer.concat([commandComplete('BEGIN'), readyForQuery('T')]));
    take();
    core.clientData(serialize.query('SELECT 2'));
    take();
    advance(5000);
    core.idleTimerFired(0);
    expect(kinds(take())).toEqual([]);
    expect(core.state).toBe('relay');
  });
});

describe('attacks on the session core (issue 15 review)', () => {
  const parse = (text: string, name = ''): Buffer => serialize.parse({ name, text });
  const bind = (portal = '', statement = ''): Buffer => serialize.bind({ portal, statement });
  const execute = (portal = ''): Buffer => serialize.execute({ portal });

  it('a settings change run by Execute: a Query or Parse sent before its Sync is refused in place, never read under the new setting', () => {
    const { core, take, start } = harness();
    start();
    // PostgreSQL applies the SET at the Execute and reports it only at the Sync's ReadyForQuery: the
    // Query after the Execute would be lexed with standard_conforming_strings off, its DROP hidden in
    // what the gateway reads as one string.
    const smuggled = "SELECT 'x\\' , $$'; DROP TABLE visits; -- $$";
    core.clientData(Buffer.concat([
      parse('SET standard_conforming_strings = off'), bind(), execute(),
      serialize.query(smuggled), parse('SELECT 3', 's3'), serialize.sync(),
    ]));
    const actions = take();
    const up = upstreamBytes(actions).toString('latin1');
    expect(up).toContain('SET standard_conforming_strings');
    expect(up).not.toContain('DROP');
    expect(up).not.toContain('SELECT 3');
    expect(recorded(actions).filter((e) => e.type === 'statement').map((e) => (e as { decision: string }).decision)).toEqual(['allow', 'error', 'error']);
    // The Sync goes on: its ReadyForQuery carries the setting, which ends the session.
    expect(up.endsWith(serialize.sync().toString('latin1'))).toBe(true);
  });

  it('a cancel while a statement is held: it never reaches the database, the client gets 57014, the evidence says cancelled', () => {
    const { core, take, start } = harness();
    start();
    core.clientData(Buffer.concat([serialize.query('DELETE FROM visits WHERE id = 1'), serialize.query('SELECT 2')]));
    take();
    core.holdRequested('apr-3');
    take();
    expect(core.cancelHeld()).toBe(true);
    expect(kinds(take())).toEqual(['withdrawApproval']);
    core.holdDecided({ approved: false, cause: 'withdrawn', reason: 'the client cancelled the statement' });
    const decided = take();
    expect(recorded(decided)).toMatchObject([
      { type: 'approval.decided', outcome: 'cancelled' }, { type: 'statement', decision: 'cancelled' }, { type: 'statement', decision: 'allow' },
    ]);
    const up = upstreamBytes(decided).toString();
    expect(up).not.toContain('DELETE');
    expect(up).toContain('SELECT 2');
    const token = /PHIGATE_REFUSED_[0-9a-f]{24}/.exec(up)![0];
    core.upstreamData(Buffer.concat([errorResponse({ severity: 'ERROR', code: '42601', message: `syntax error at or near "${token}"` }), readyForQuery('I')]));
    expect(clientBytes(take()).toString()).toContain('57014');
  });

  it('a client that leaves while its statement is held: the request is withdrawn, session.end written, and a late approval runs nothing', () => {
    const { core, take, start } = harness();
    start();
    core.clientData(serialize.query('DELETE FROM visits WHERE id = 1'));
    take();
    core.holdRequested('apr-4');
    take();
    core.clientClosed('client closed');
    const ended = take();
    expect(kinds(ended)).toEqual(['withdrawApproval', 'end', 'record', 'ended']);
    expect(recorded(ended)).toMatchObject([{ type: 'session.end', reason: 'client closed' }]);
    core.holdDecided({ approved: true, approver: 'bob', scope: 'once' });
    core.clientData(serialize.query('SELECT 1'));
    expect(take()).toEqual([]);
  });

  it('COPY FROM STDIN: copy data waits for the server to ask for it; a statement sent mid-copy ends the session and never goes upstream', () => {
    const { core, take, start } = harness();
    start();
    core.clientData(Buffer.concat([
      serialize.query('COPY visits FROM STDIN'), serialize.copyData(Buffer.from('1\tx\n')), serialize.query('DROP TABLE visits'),
    ]));
    const first = take();
    expect(upstreamBytes(first).toString()).toContain('COPY visits');
    expect(upstreamBytes(first).toString()).not.toContain('1\tx');
    // The server asks for the data; a statement among it ends the session before any of it goes on
    // (the connection closes, so the COPY is rolled back).
    core.upstreamData(Buffer.from([0x47, 0, 0, 0, 7, 0, 0, 0]));
    const during = take();
    expect(kinds(during)).not.toContain('upstream');
    expect(clientBytes(during).toString()).toContain('unexpected Query message during COPY FROM STDIN');
    expect(recorded(during)).toMatchObject([{ type: 'session.end' }]);
    expect(core.state).toBe('closed');
  });

  it('portal names that are not UTF-8 (a LATIN1 session): two names PostgreSQL tells apart are never one to the gate', () => {
    const { core, take, start } = harness();
    start();
    core.clientData(serialize.query("SET client_encoding TO 'LATIN1'"));
    take();
    core.upstreamData(Buffer.concat([commandComplete('SET'), parameterStatus('client_encoding', 'LATIN1'), readyForQuery('I')]));
    take();
    // Bind portal 0xE8 to the DELETE and portal 0xE9 to SELECT 1 (both decode to U+FFFD as UTF-8), then Execute 0xE8.
    const named = (msg: Buffer, byte: number): Buffer => Buffer.from(msg.toString('latin1').replace('\u0001', String.fromCharCode(byte)), 'latin1');
    core.clientData(Buffer.concat([
      parse('DELETE FROM visits WHERE id = 1'), named(bind('\u0001'), 0xe8), parse('SELECT 1'), named(bind('\u0001'), 0xe9),
      named(execute('\u0001'), 0xe8), serialize.sync(),
    ]));
    const actions = take();
    // PostgreSQL would run the DELETE unasked: such a name is a protocol violation, and nothing of it goes upstream.
    const up = upstreamBytes(actions);
    expect(up.includes(named(execute('\u0001'), 0xe8))).toBe(false);
    expect(up.includes(named(bind('\u0001'), 0xe8))).toBe(false);
    expect(clientBytes(actions).toString()).toContain('statement or portal name is not valid UTF-8');
    expect(core.state).toBe('closed');
  });
});
