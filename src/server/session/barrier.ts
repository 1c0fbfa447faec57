// The settings barrier: after a statement that may change how later statements are read (SET of
// standard_conforming_strings or client_encoding, COPY FROM STDIN), nothing more goes upstream until
// the server has answered it and its ParameterStatus messages were checked. Also counts what the
// server will answer with a ReadyForQuery, and whether an extended-protocol batch is unsynced.
import type { FrontendMessage } from '../../pg/index.js';

type Sent = Exclude<FrontendMessage, { type: 'ProtocolError' }>['type'];

export class SettingsBarrier {
  /** Messages forwarded that will each be answered by a ReadyForQuery. */
  readySent = 0;
  /** While non-zero: the ReadyForQuery count that ends the barrier. */
  at = 0;
  private afterSync = false;
  /** An extended-protocol message went upstream after the last Sync: the client awaits answers, not idle. */
  unsynced = false;

  get up(): boolean {
    return this.at > 0;
  }

  /**
   * A statement that may change how statements are read ran by Execute, and its Sync has not been
   * sent: PostgreSQL has applied the change but reports it only with that Sync's ReadyForQuery, so
   * any statement text sent meanwhile would be read under a setting the gateway cannot see yet.
   */
  get awaitingSync(): boolean {
    return this.afterSync;
  }

  /**
   * A message went upstream; `barrier`/`copyIn` are the gate's verdict for it, `idle` whether the
   * result tracker has nothing pending. Returns true when the barrier is now up and later messages must wait.
   */
  afterForward(type: Sent, barrier: boolean, copyIn: boolean, idle: () => boolean): boolean {
    // COPY FROM STDIN by Execute: the server ignores the Sync behind it while the copy runs, so that
    // Sync would wait forever for its ReadyForQuery and every later answer would be paired with the
    // message before its own. The barrier goes up at once: copy data passes (passCopyIn, which drops
    // Sync and Flush as the server would), the rest waits until the COPY is answered. An Execute the
    // server discards (after an extended-protocol error) leaves the tracker idle: no barrier then.
    if (copyIn && type === 'Execute') {
      this.unsynced = true;
      if (idle()) return false;
      this.at = this.readySent || 1;
      return true;
    }
    if (copyIn && type === 'Query') barrier = true;
    if (barrier && type === 'Execute') this.afterSync = true;
    if (type !== 'Query' && type !== 'Sync' && type !== 'FunctionCall') {
      if (!type.startsWith('Copy')) this.unsynced = true;
      return false;
    }
    this.unsynced = false;
    this.readySent++;
    if ((barrier && type === 'Query') || (type === 'Sync' && this.afterSync)) {
      this.afterSync = false;
      // A Query after an extended-protocol error, before its Sync, is discarded by the server: it
      // changes nothing and gets no answer, so waiting for one would hold the client's Sync forever.
      if (idle()) return false;
      this.at = this.readySent;
      return true;
    }
    return false;
  }

  /**
   * The server answered the barrier statement: nothing was forwarded after it, so that is when the
   * tracker has nothing left pending (counting ReadyForQuery would wait forever for a Query the
   * server discarded after an extended-protocol error). True when it came down now.
   */
  release(trackerIdle: boolean): boolean {
    if (this.at === 0 || !trackerIdle) return false;
    this.at = 0;
    return true;
  }
}
