// Tunnel liveness, used by both ends: each pings the other every interval, counts any byte heard
// (data, ping or pong frames) as a sign of life, and gives up on a peer silent for longer than the timeout.
// A peer that vanished without a FIN (power loss, a partition, a stopped process) otherwise holds its
// session, its upstream backend and its locks until TCP gives up, which can take many minutes.
import type WebSocket from 'ws';
import type { IncomingHttpHeaders } from 'node:http';
import { DEFAULT_LIMITS } from '../policy/limits.js';
import { formatDuration } from '../policy/duration.js';

export interface LivenessTiming {
  intervalMs: number;
  timeoutMs: number;
}

/** The server tells the CLI its timing in the upgrade response, so both ends ping alike. */
export const HEADER_LIVENESS = 'x-phigate-tunnel-liveness';

export function livenessHeader(t: LivenessTiming): string {
  return `${HEADER_LIVENESS}: interval=${t.intervalMs}; timeout=${t.timeoutMs}`;
}

/** The server's timing from its upgrade response; the defaults when absent or unreadable. */
export function parseLivenessHeader(headers: IncomingHttpHeaders): LivenessTiming {
  const v = headers[HEADER_LIVENESS];
  const s = Array.isArray(v) ? v[0] : v;
  const interval = /interval=(\d+)/.exec(s ?? '')?.[1];
  const timeout = /timeout=(\d+)/.exec(s ?? '')?.[1];
  const t = { intervalMs: Number(interval), timeoutMs: Number(timeout) };
  if (!(t.intervalMs > 0 && t.timeoutMs > t.intervalMs)) return { intervalMs: DEFAULT_LIMITS.tunnelPingIntervalMs, timeoutMs: DEFAULT_LIMITS.tunnelTimeoutMs };
  return t;
}

/**
 * The decision, without sockets or timers: `tick` runs every interval and says whether to ping or to
 * give up. Silence does not count while this end itself is not reading (it paused the stream for
 * backpressure: the peer's frames wait unread), nor across a tick that came far too late (this
 * process was stopped or its event loop blocked: the silence was ours, so the peer gets a fresh
 * timeout from now, as its answers may be waiting unread in the socket).
 */
export class Liveness {
  private heardAt: number;
  private lastTick: number;
  private heardSinceTick = false;

  constructor(
    private readonly t: LivenessTiming,
    now: number,
  ) {
    this.heardAt = now;
    this.lastTick = now;
  }

  /** Something arrived from the peer since the last tick. */
  heard(): void {
    this.heardSinceTick = true;
  }

  tick(now: number, paused: boolean): { dead: false } | { dead: true; silentMs: number } {
    const late = now - this.lastTick >= 2 * this.t.intervalMs;
    this.lastTick = now;
    if (this.heardSinceTick || paused || late) this.heardAt = now;
    this.heardSinceTick = false;
    const silentMs = now - this.heardAt;
    return silentMs >= this.t.timeoutMs ? { dead: true, silentMs } : { dead: false };
  }
}

/**
 * Pings `ws` every interval and calls `onDead` once when it stays silent past the timeout; stops by
 * itself when the stream closes. The caller decides how to end the stream (and what to tell whom).
 * `socket` is the stream's transport: what it has read tells whether the peer was heard, so no
 * listener runs per message (a second 'message' listener costs every frame an array copy).
 */
export function watchTunnel(ws: WebSocket, socket: { readonly bytesRead: number }, t: LivenessTiming, onDead: (silentMs: number) => void): void {
  const l = new Liveness(t, Date.now());
  let read = socket.bytesRead;
  const timer = setInterval(() => {
    if (ws.readyState !== ws.OPEN) return;
    if (socket.bytesRead !== read) {
      read = socket.bytesRead;
      l.heard();
    }
    const r = l.tick(Date.now(), ws.isPaused);
    if (r.dead) {
      clearInterval(timer);
      onDead(r.silentMs);
      return;
    }
    ws.ping();
  }, t.intervalMs);
  timer.unref();
  ws.once('close', () => clearInterval(timer));
}

/** A silence for messages: whole seconds from one second up (1203 ms → "1s"). */
export function roughly(ms: number): string {
  return ms < 1_000 ? `${ms}ms` : formatDuration(Math.round(ms / 1_000) * 1_000);
}
