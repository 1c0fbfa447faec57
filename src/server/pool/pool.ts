// Authenticated upstream connections kept for reuse across client sessions, one pool per policy
// connection: a session leases a connection (taken idle, opened, or waited for up to the connect
// timeout), and gives it back when it ends; the pool resets it (DISCARD ALL) before anyone else may
// have it, or closes it. The decisions are in core.ts; this file owns the sockets and timers.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { BackendFramer, FrontendType, ProtocolError } from '../../pg/index.js';
import { cancelUpstream, connectUpstream, UpstreamError, type UpstreamSession, type UpstreamTarget } from '../upstream.js';
import { SQLSTATE_CONNECTION_FAILURE } from '../upstream/errors.js';
import type { Logger } from '../../common/log.js';
import type { PoolSettings } from '../../policy/pool.js';
import {
  STATEFUL_EXTENSION_REASON, STATEFUL_EXTENSIONS, ScriptReader, acquireStep, prepareQuery, releaseVerdict, resetMessages, resetOutcome,
  type ScriptResult, type SessionEnd,
} from './core.js';

/** The application_name of a pooled connection between sessions: pg_stat_activity tells them apart. */
export const POOL_APPLICATION_NAME = 'phigate-pool';

const TERMINATE = Buffer.from([FrontendType.Terminate, 0, 0, 0, 4]);
const EMPTY = Buffer.alloc(0);
/** A connection that breaks while being prepared is replaced this many times before the session fails. */
const PREPARE_RETRIES = 3;

/** No pooled connection came free within the wait: answered as 53300 naming the pool's size key. */
export class PoolWaitTimeout extends Error {
  override readonly name = 'PoolWaitTimeout';
  constructor(readonly connection: string, readonly size: number, readonly waitedMs: number) {
    super(`all ${size} pooled upstream connections of "${connection}" stayed in use for ${Math.round(waitedMs / 1000)} s (connections.${connection}.pool.size)`);
  }
}

/** A session's hold on a pooled connection. */
export interface UpstreamLease {
  /** The connection as the session uses it; `parameters` are the values this session starts with. */
  readonly upstream: UpstreamSession;
  /** The connection served an earlier session. */
  readonly reused: boolean;
  /** Cancels the statement running on this lease's backend; does nothing once the lease is given back. */
  cancel(): Promise<void>;
  /** Gives the connection back; the session must have removed its own listeners from the socket. */
  release(end: SessionEnd): void;
}

interface Conn {
  id: number;
  socket: Socket;
  backendKey: UpstreamSession['backendKey'];
  parameters: Map<string, string>;
  createdAt: number;
  generation: number;
  state: 'idle' | 'preparing' | 'leased' | 'resetting' | 'closing';
  cancelsInFlight: number;
  afterCancels?: () => void;
  idleTimer?: NodeJS.Timeout;
  /** Sessions served so far. */
  uses: number;
}

type Waiter = { give: (c: Conn | 'open') => void; fail: (e: Error) => void; timer: NodeJS.Timeout };

export interface PoolCounters {
  opened: number;
  reused: number;
  waits: number;
  waitTimeouts: number;
  resets: number;
  resetFailures: number;
  closed: number;
}

export interface PoolStats extends PoolCounters {
  connection: string;
  size: number;
  idle: number;
  leased: number;
  /** Being opened or prepared for a session. */
  opening: number;
  /** Being reset after a session. */
  resetting: number;
}

/** One connection's pool. */
class Pool {
  readonly conns = new Set<Conn>();
  readonly idle: Conn[] = [];
  readonly waiters: Waiter[] = [];
  opening = 0;
  generation = 0;
  key = '';
  settings: PoolSettings = { size: 1, idleTimeoutMs: 1, maxLifetimeMs: 1 };
  readonly counters: PoolCounters = { opened: 0, reused: 0, waits: 0, waitTimeouts: 0, resets: 0, resetFailures: 0, closed: 0 };
  /** A stateful extension was found: said once, since it holds for every later release too. */
  toldStateful = false;

  constructor(readonly name: string) {}

  get total(): number {
    return this.conns.size + this.opening;
  }

  count(state: Conn['state']): number {
    let n = 0;
    for (const c of this.conns) if (c.state === state) n++;
    return n;
  }
}

/** Where a pool's connection is and who may use it: a change means a new generation (old connections drain). */
function targetKey(t: UpstreamTarget): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([t.host, t.port, t.user, t.database, t.tls, t.password ?? null]));
  if (t.ca !== undefined) h.update(t.ca);
  return h.digest('hex');
}

export interface AcquireOptions {
  /** Parameters the client's StartupMessage asked for (application_name, DateStyle, ...). */
  params: Record<string, string>;
  /** How long to wait for a connection when the pool is full. */
  waitMs: number;
  /** Times the opening of a new connection (metrics). */
  timeOpen?: <T>(p: Promise<T>) => Promise<T>;
}

export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly log: Logger) {}

  /**
   * A connection of `connection`'s pool, prepared with the session's parameters. Rejects with an
   * UpstreamError when a connection cannot be opened or prepared, PoolWaitTimeout when none came free.
   */
  async acquire(connection: string, target: UpstreamTarget, settings: PoolSettings, o: AcquireOptions): Promise<UpstreamLease> {
    if (this.closed) throw new UpstreamError('unreachable', '57P01', 'phigate is shutting down', undefined, { reason: 'phigate is shutting down' });
    const pool = this.configure(connection, target, settings);
    const deadline = Date.now() + o.waitMs;
    for (let attempt = 0; ; attempt++) {
      const { conn, reused } = await this.obtain(pool, target, deadline, o);
      conn.state = 'preparing';
      const result = await this.run(conn, prepareQuery(o.params), 1, target);
      if (!result.broken && !result.error) return this.lease(pool, conn, reused, target, result);
      this.retire(pool, conn, result.broken ?? 'could not apply the session parameters');
      if (result.error) {
        // The client's parameters were refused (an invalid DateStyle): as PostgreSQL refuses them at startup.
        const f = result.error;
        throw new UpstreamError('server', f['C'] ?? 'XX000', `${f['M'] ?? 'server refused a startup parameter'} (${f['C'] ?? 'XX000'})`, f, { reason: f['M'] ?? 'startup parameter refused' });
      }
      // A connection that died while idle (server restart, admin termination): try another.
      if (!reused || attempt >= PREPARE_RETRIES) {
        throw new UpstreamError('unreachable', SQLSTATE_CONNECTION_FAILURE, `the pooled connection failed: ${result.broken}`, undefined, { reason: `the pooled connection failed: ${result.broken}` });
      }
    }
  }

  /** What each pool holds now (metrics, tests). */
  stats(): PoolStats[] {
    return [...this.pools.values()].map((p) => ({
      connection: p.name, size: p.settings.size, idle: p.idle.length, leased: p.count('leased'),
      opening: p.count('preparing') + p.opening, resetting: p.count('resetting'), ...p.counters,
    }));
  }

  /**
   * Starts `connection`'s pool over (policy reload): idle connections close now, leased ones when
   * their session gives them back; the next session opens a new one.
   */
  drain(connection: string): void {
    const pool = this.pools.get(connection);
    if (!pool) return;
    pool.generation++;
    pool.key = '';
    for (const c of [...pool.idle]) this.retire(pool, c, 'policy changed');
  }

  /** Closes every idle connection now and each leased one when its session gives it back. */
  async close(): Promise<void> {
    this.closed = true;
    const gone: Array<Promise<void>> = [];
    for (const pool of this.pools.values()) {
      for (const w of pool.waiters.splice(0)) {
        clearTimeout(w.timer);
        w.fail(new UpstreamError('unreachable', '57P01', 'phigate is shutting down', undefined, { reason: 'phigate is shutting down' }));
      }
      for (const c of [...pool.conns]) {
        if (c.state === 'leased') continue;
        gone.push(new Promise((resolve) => c.socket.once('close', () => resolve())));
        this.retire(pool, c, 'shutdown');
      }
    }
    await Promise.race([Promise.all(gone), new Promise((r) => setTimeout(r, 2_000).unref())]);
  }

  /** The pool of `connection` under these settings; new credentials or target start a new generation. */
  private configure(connection: string, target: UpstreamTarget, settings: PoolSettings): Pool {
    let pool = this.pools.get(connection);
    if (!pool) {
      pool = new Pool(connection);
      this.pools.set(connection, pool);
    }
    pool.settings = settings;
    const key = targetKey(target);
    if (pool.key !== key) {
      if (pool.key !== '') {
        this.log.info('upstream pool: target or credentials changed; old connections drain', { connection });
        pool.generation++;
      }
      pool.key = key;
      for (const c of [...pool.idle]) this.retire(pool, c, 'pool settings or credentials changed');
    }
    // A smaller size (policy reload) takes effect by closing idle connections beyond it.
    while (pool.idle.length > 0 && pool.total > settings.size) this.retire(pool, pool.idle[0]!, 'pool size reduced');
    return pool;
  }

  private async obtain(pool: Pool, target: UpstreamTarget, deadline: number, o: AcquireOptions): Promise<{ conn: Conn; reused: boolean }> {
    for (;;) {
      const step = acquireStep({ idle: pool.idle.length, total: pool.total, resetting: pool.count('resetting'), waiting: pool.waiters.length, size: pool.settings.size });
      if (step === 'take') {
        const conn = this.takeIdle(pool);
        if (Date.now() - conn.createdAt >= pool.settings.maxLifetimeMs) {
          this.retire(pool, conn, 'max_lifetime reached');
          continue;
        }
        pool.counters.reused++;
        return { conn, reused: true };
      }
      if (step === 'open') return { conn: await this.open(pool, target, o), reused: false };
      const got = await this.wait(pool, deadline);
      if (got === 'open') return { conn: await this.open(pool, target, o), reused: false };
      pool.counters.reused++;
      return { conn: got, reused: true };
    }
  }

  private wait(pool: Pool, deadline: number): Promise<Conn | 'open'> {
    pool.counters.waits++;
    return new Promise((resolve, reject) => {
      const waitedFrom = Date.now();
      const w: Waiter = {
        give: resolve,
        fail: reject,
        timer: setTimeout(() => {
          const i = pool.waiters.indexOf(w);
          if (i >= 0) pool.waiters.splice(i, 1);
          pool.counters.waitTimeouts++;
          reject(new PoolWaitTimeout(pool.name, pool.settings.size, Date.now() - waitedFrom));
        }, Math.max(0, deadline - Date.now())),
      };
      w.timer.unref();
      pool.waiters.push(w);
    });
  }

  /** Serves the first waiter: with an idle connection, else with room to open one. */
  private wake(pool: Pool): void {
    while (pool.waiters.length > 0) {
      if (pool.idle.length > 0) {
        const conn = this.takeIdle(pool);
        const w = pool.waiters.shift()!;
        clearTimeout(w.timer);
        conn.state = 'preparing';
        w.give(conn);
        continue;
      }
      // Waiters beyond the connections being reset may open one, room permitting.
      if (pool.total < pool.settings.size && pool.count('resetting') < pool.waiters.length) {
        const w = pool.waiters.shift()!;
        clearTimeout(w.timer);
        w.give('open');
        continue;
      }
      return;
    }
  }

  /** Most recently used first: the rest reach idle_timeout and close when load drops. */
  private takeIdle(pool: Pool): Conn {
    const conn = pool.idle.pop()!;
    clearTimeout(conn.idleTimer);
    conn.socket.removeAllListeners('data');
    // Paused until the next reader attaches, so that no byte is dropped meanwhile.
    conn.socket.pause();
    conn.state = 'preparing';
    return conn;
  }

  private async open(pool: Pool, target: UpstreamTarget, o: AcquireOptions): Promise<Conn> {
    pool.opening++;
    const generation = pool.generation;
    let up: UpstreamSession;
    try {
      const p = connectUpstream(target, { application_name: POOL_APPLICATION_NAME });
      up = await (o.timeOpen ? o.timeOpen(p) : p);
    } catch (err) {
      pool.opening--;
      this.wake(pool);
      throw err;
    }
    pool.opening--;
    pool.counters.opened++;
    const conn: Conn = {
      id: this.nextId++, socket: up.socket, backendKey: up.backendKey, parameters: new Map(up.parameters),
      createdAt: Date.now(), generation, state: 'preparing', cancelsInFlight: 0, uses: 0,
    };
    pool.conns.add(conn);
    // The pool's own listeners stay for the connection's life; sessions add and remove theirs.
    conn.socket.on('error', (err) => this.log.debug('pooled upstream connection error', { connection: pool.name, error: err.message }));
    conn.socket.once('close', () => this.gone(pool, conn));
    if (up.leftover.length > 0 || up.transactionStatus !== 'I') {
      // Nothing should follow the first ReadyForQuery; a connection that says more is not trusted.
      this.retire(pool, conn, 'unexpected bytes after startup');
      throw new UpstreamError('protocol', '08P01', 'the server sent unexpected data after startup', undefined, { reason: 'the server sent unexpected data after startup' });
    }
    return conn;
  }

  private lease(pool: Pool, conn: Conn, reused: boolean, target: UpstreamTarget, prepared: ScriptResult & { leftover?: Buffer }): UpstreamLease {
    for (const [k, v] of prepared.parameters) conn.parameters.set(k, v);
    conn.state = 'leased';
    conn.uses++;
    let released = false;
    const lease: UpstreamLease = {
      reused,
      upstream: {
        socket: conn.socket, parameters: new Map(conn.parameters), backendKey: conn.backendKey, transactionStatus: 'I',
        notices: [], leftover: prepared.leftover ?? EMPTY, tls: target.tls !== 'disable',
      },
      cancel: () => {
        // After release the backend may run another identity's statement: a late cancel goes nowhere.
        if (released || conn.state !== 'leased') return Promise.resolve();
        conn.cancelsInFlight++;
        return cancelUpstream(target, conn.backendKey).finally(() => {
          conn.cancelsInFlight--;
          if (conn.cancelsInFlight === 0) conn.afterCancels?.();
        });
      },
      release: (end) => {
        if (released) return;
        released = true;
        this.giveBack(pool, conn, end, target);
      },
    };
    return lease;
  }

  private giveBack(pool: Pool, conn: Conn, end: SessionEnd, target: UpstreamTarget): void {
    if (conn.state === 'closing' || conn.socket.destroyed) return;
    conn.state = 'resetting';
    // Bytes that arrive before the reset's reader attaches wait in the socket.
    conn.socket.pause();
    const verdict = releaseVerdict(end, conn, Date.now(), pool.settings.maxLifetimeMs, pool.generation, this.closed);
    if (verdict.action === 'close') {
      this.retire(pool, conn, verdict.reason);
      return;
    }
    const reset = (): void => {
      conn.afterCancels = undefined;
      const { bytes, readies } = resetMessages(verdict.rollback);
      void this.run(conn, bytes, readies, target).then((r) => {
        pool.counters.resets++;
        const outcome = resetOutcome(r);
        if (!outcome.ok) {
          pool.counters.resetFailures++;
          if (outcome.reason !== STATEFUL_EXTENSION_REASON) {
            this.log.warn('upstream pool: reset failed; connection closed', { connection: pool.name, reason: outcome.reason });
          } else if (!pool.toldStateful) {
            pool.toldStateful = true;
            this.log.warn(`upstream pool: connections of ${pool.name} are not reused while one of ${STATEFUL_EXTENSIONS.join(', ')} is installed ` +
              '(their session state survives DISCARD ALL); each session gets a new connection', { connection: pool.name });
          }
          this.retire(pool, conn, outcome.reason);
          return;
        }
        for (const [k, v] of r.parameters) conn.parameters.set(k, v);
        if (!safeParameters(conn.parameters)) {
          this.retire(pool, conn, 'unsafe settings after reset');
          return;
        }
        this.idle(pool, conn);
      });
    };
    // A cancel already sent for the old session must land before another session's statement can.
    if (conn.cancelsInFlight > 0) conn.afterCancels = reset;
    else reset();
  }

  private idle(pool: Pool, conn: Conn): void {
    if (this.closed || conn.generation !== pool.generation || pool.total > pool.settings.size) {
      this.retire(pool, conn, this.closed ? 'shutdown' : 'pool settings or credentials changed');
      return;
    }
    conn.state = 'idle';
    // Anything an idle connection says (a FATAL from pg_terminate_backend, say) means it is no longer fit.
    conn.socket.on('data', () => this.retire(pool, conn, 'the server spoke while the connection was idle'));
    conn.socket.resume();
    conn.idleTimer = setTimeout(() => this.retire(pool, conn, 'idle_timeout reached'), pool.settings.idleTimeoutMs);
    conn.idleTimer.unref();
    pool.idle.push(conn);
    this.wake(pool);
  }

  private retire(pool: Pool, conn: Conn, reason: string): void {
    if (conn.state === 'closing') return;
    const wasIdle = conn.state === 'idle';
    conn.state = 'closing';
    clearTimeout(conn.idleTimer);
    if (wasIdle) {
      const i = pool.idle.indexOf(conn);
      if (i >= 0) pool.idle.splice(i, 1);
    }
    this.log.debug('upstream pool: connection closed', { connection: pool.name, reason, uses: conn.uses });
    const s = conn.socket;
    s.removeAllListeners('data');
    if (s.destroyed) return;
    // A polite Terminate keeps "unexpected EOF" out of the database's log; the count holds until the backend is gone.
    s.end(TERMINATE);
    s.resume();
    s.setTimeout(5_000, () => s.destroy());
    this.wake(pool);
  }

  /** The socket closed: the connection no longer counts against the size. */
  private gone(pool: Pool, conn: Conn): void {
    if (!pool.conns.delete(conn)) return;
    pool.counters.closed++;
    if (conn.state === 'idle') {
      const i = pool.idle.indexOf(conn);
      if (i >= 0) pool.idle.splice(i, 1);
    }
    clearTimeout(conn.idleTimer);
    conn.state = 'closing';
    this.wake(pool);
  }

  /**
   * Sends `bytes` and reads the answers to `readies` Queries. Never rejects: a dead socket, a
   * protocol error or the deadline come back as `broken`.
   */
  private run(conn: Conn, bytes: Buffer, readies: number, target: UpstreamTarget): Promise<ScriptResult & { leftover?: Buffer }> {
    const s = conn.socket;
    const reader = new ScriptReader(readies);
    const framer = new BackendFramer();
    return new Promise((resolve) => {
      let done = false;
      const leftovers: Buffer[] = [];
      const finish = (broken?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        s.off('data', onData);
        s.off('close', onClose);
        s.pause();
        if (broken && !reader.result.broken) reader.result.broken = broken;
        resolve({ ...reader.result, ...(leftovers.length > 0 ? { leftover: Buffer.concat(leftovers) } : {}) });
      };
      const onData = (chunk: Buffer): void => {
        const frames = framer.push(chunk);
        if (frames instanceof ProtocolError) return finish(`protocol error: ${frames.message}`);
        let over = false;
        for (const f of frames) {
          if (over) leftovers.push(Buffer.from(f.raw));
          else over = reader.frame(f);
        }
        if (!over) return;
        // A message cut in two after the last answer cannot be handed on whole.
        if (framer.pendingBytes > 0) return finish('unexpected bytes after the last answer');
        finish();
      };
      const onClose = (): void => finish('the server closed the connection');
      const timer = setTimeout(() => finish('no answer in time'), target.connectTimeoutMs ?? 10_000);
      timer.unref();
      if (s.destroyed) return finish('the connection is closed');
      s.on('data', onData);
      s.once('close', onClose);
      s.write(bytes);
      s.resume();
    });
  }
}

/** The settings the gateway reads statements under (see session/settings.ts unsafeSetting) still hold. */
function safeParameters(p: Map<string, string>): boolean {
  const scs = p.get('standard_conforming_strings') ?? 'on';
  const enc = (p.get('client_encoding') ?? 'UTF8').replace(/[-\s]/g, '').toLowerCase();
  return scs.toLowerCase() === 'on' && (enc === 'utf8' || enc === 'unicode');
}
