// The client's startup packet, decided without I/O: which parameters reach the upstream (anything
// else could change who the session is there), which are ignored with a notice, and the protocol
// version negotiation the client gets.
import { negotiateProtocolVersion, noticeResponse } from '../../pg/index.js';

/** Startup parameters passed through to the upstream; anything else could change who we are there. */
const FORWARDED_PARAMS = new Set([
  'application_name', 'client_encoding', 'datestyle', 'timezone', 'intervalstyle', 'extra_float_digits', 'search_path',
]);

export type StartupPlan =
  | { refused: string }
  | {
    /** The parameters the upstream connection is opened with. */
    forwarded: Record<string, string>;
    /** Sent after the upstream's own notices (ignored parameters). */
    notices: Buffer[];
    /** NegotiateProtocolVersion, sent first, when the client asked for a newer minor or _pq_ options. */
    negotiate: Buffer | undefined;
  };

export function planStartup(protocolVersion: number, params: Record<string, string>): StartupPlan {
  const replication = params['replication'];
  if (replication !== undefined && !['false', 'off', 'no', '0'].includes(replication.toLowerCase())) {
    return { refused: 'replication connections are not supported through phigate' };
  }
  const forwarded: Record<string, string> = {};
  const ignored: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (k === 'user' || k === 'database' || k === 'replication') continue;
    if (FORWARDED_PARAMS.has(k.toLowerCase())) forwarded[k] = v;
    else if (!k.startsWith('_pq_.')) ignored.push(k);
  }
  const notices: Buffer[] = [];
  if (ignored.length > 0) {
    notices.push(noticeResponse({ severity: 'NOTICE', code: '01000', message: `phigate ignored startup parameter(s): ${ignored.join(', ')}` }));
  }
  const minor = protocolVersion & 0xffff;
  const pqOptions = Object.keys(params).filter((k) => k.startsWith('_pq_.'));
  const negotiate = minor > 0 || pqOptions.length > 0 ? negotiateProtocolVersion(0, pqOptions) : undefined;
  return { forwarded, notices, negotiate };
}
