// Refused messages that still go upstream: each is replaced by one that fails at the same point (a
// syntax error carrying a secret token), so PostgreSQL itself aborts the transaction and skips to
// Sync exactly as for a real error; the upstream's error is then swapped for ours on the way back.
import { randomBytes } from 'node:crypto';
import { serialize } from 'pg-protocol';
import { ProtocolError, decodeErrorFieldMap, errorResponse, type BackendFrame, type ErrorFields, type FrontendMessage } from '../../pg/index.js';
import type { ResultTracker } from '../result-tracker.js';

type WireMessage = Exclude<FrontendMessage, { type: 'ProtocolError' }>;

export class Poisons {
  /** Secret tokens of refused messages whose upstream error must be replaced by ours. */
  private readonly pending = new Map<string, ErrorFields>();

  /** The bytes that go upstream in place of `m`; the tracker learns what the server will answer. */
  make(m: WireMessage, error: ErrorFields, t: ResultTracker): Buffer {
    const token = `PHIGATE_REFUSED_${randomBytes(12).toString('hex')}`;
    this.pending.set(token, error);
    if (m.type === 'Parse') {
      t.parse(m.name, token);
      return serialize.parse({ name: m.name, text: token, types: [] });
    }
    if (m.type === 'Execute') {
      t.parse(token.toLowerCase(), token);
      return serialize.parse({ name: token.toLowerCase(), text: token, types: [] });
    }
    t.query(token);
    return serialize.query(token);
  }

  /** An ErrorResponse: ours in place of a poison token's, else the server's own. */
  replace(f: BackendFrame): Buffer {
    if (this.pending.size === 0) return f.raw;
    const fields = decodeErrorFieldMap(f.body);
    const message = fields instanceof ProtocolError ? '' : (fields['M'] ?? '');
    const token = /PHIGATE_REFUSED_[0-9a-f]{24}/i.exec(message)?.[0]?.replace(/^phigate_refused_/, 'PHIGATE_REFUSED_');
    const ours = token === undefined ? undefined : this.pending.get(token);
    if (token === undefined || !ours) return f.raw;
    this.pending.delete(token);
    return errorResponse(ours);
  }
}
