// CLI side of just-in-time access: when the gateway says a connection needs approved access, ask for
// it, tell the user who must approve, and wait (long-polling) until an approver decides.
import { ACCESS_REQUESTS_PATH, HEADER_SESSION_LABEL, type AccessRequestView, type PreflightResponse } from './protocol.js';
import { refusalError, unreachableError } from './refusal.js';
import { ExitCode, PhigateError } from '../cli/errors.js';
import { startWait } from './client.js';
import type { Progress } from '../ui/progress.js';

export interface AccessOptions {
  serverUrl: string;
  connection: string;
  token: () => Promise<string>;
  reason?: string;
  duration?: string;
  label?: string;
  say: (line: string) => void;
  /** A progress line while waiting for the approver (a spinner on a terminal); default: `say`. */
  wait?: (text: string) => Progress;
}

async function call(opts: AccessOptions, method: string, path: string, body?: unknown): Promise<AccessRequestView> {
  let res: Response;
  try {
    const headers: Record<string, string> = { authorization: `Bearer ${await opts.token()}`, 'content-type': 'application/json' };
    if (opts.label) headers[HEADER_SESSION_LABEL] = opts.label;
    res = await fetch(`${opts.serverUrl}${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(70_000),
    });
  } catch (err) {
    throw unreachableError(opts.serverUrl, err);
  }
  const text = await res.text();
  if (!res.ok) throw refusalError(res.status, text);
  return JSON.parse(text) as AccessRequestView;
}

/** Returns when access is granted (at once when a grant is in force); throws exit 4 when refused. */
export async function ensureAccess(info: PreflightResponse, opts: AccessOptions): Promise<void> {
  const access = info.access;
  if (!access) return;
  if (access.grant) {
    opts.say(`phigate: access to "${opts.connection}" granted by ${access.grant.approver} until ${access.grant.expires_at}`);
    return;
  }
  if (!opts.reason) {
    throw new PhigateError(`access to "${opts.connection}" must be approved by ${access.approvers.join(' or ')} first`, ExitCode.Usage,
      `say why with --reason TEXT (and how long with --duration, at most ${access.max_duration})`);
  }
  let st = await call(opts, 'POST', ACCESS_REQUESTS_PATH, { connection: opts.connection, reason: opts.reason, duration: opts.duration });
  if (st.status === 'pending') {
    const waiting = startWait(opts, `phigate: waiting for access approval ${st.id} (approvers: ${access.approvers.join(', ')}); an approver runs \`phigate approve ${st.id}\``);
    try {
      while (st.status === 'pending') st = await call(opts, 'GET', `${ACCESS_REQUESTS_PATH}/${encodeURIComponent(st.id)}?wait=50`);
    } finally {
      waiting.done();
    }
  }
  if (st.status === 'approved') {
    opts.say(`phigate: access to "${opts.connection}" granted by ${st.approver} until ${st.expires_at}`);
    return;
  }
  const who = st.approver ? ` by ${st.approver}` : '';
  const why = st.reason ? `: ${st.reason}` : '';
  throw new PhigateError(
    st.status === 'timeout' ? `access request ${st.id} was not decided in time` : `access request ${st.id} ${st.status}${who}${why}`,
    ExitCode.Denied,
  );
}
