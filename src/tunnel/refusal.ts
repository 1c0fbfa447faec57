// Maps what the gateway said (or did not say) to the CLI's errors: a code the gateway sends is read
// through common/errors.ts ERROR_TABLE (its exit code), with a one-line message and a hint.
import { ExitCode, PhigateError, isErrorCode } from '../common/errors.js';
import { isRefusalCode, type Refusal, type RefusalCode } from './protocol.js';

const HINT: Partial<Record<RefusalCode, string>> = {
  unauthenticated: 'run `phigate login`, or set PHIGATE_TOKEN / --token-file to a valid token for this gateway',
  forbidden: 'ask an administrator to add one of your groups to the connection\'s allow_groups',
  unknown_connection: 'run `phigate connections` to list what you may connect to',
  access_required: 'request access with `phigate connect NAME --reason TEXT [--duration 30m]`',
  token_misplaced: 'send the token only as `Authorization: Bearer <token>`; treat a token that was put in a URL as exposed and log in again',
};

export function refusalError(status: number, body: string): PhigateError {
  const refusal = parseRefusal(body);
  if (refusal) {
    const hint = typeof refusal.hint === 'string' && refusal.hint !== '' ? refusal.hint.slice(0, 300) : HINT[refusal.error];
    return new PhigateError(`gateway refused: ${refusal.message}`, refusal.error, hint);
  }
  // Other API errors ({ error, message }) keep their message and take their code's exit; a code this
  // CLI does not know (a newer gateway's) or no JSON at all: the status picks the exit code.
  const other = parseApiError(body);
  if (other && isErrorCode(other.error)) return new PhigateError(other.message, other.error);
  const exit = status === 401 ? ExitCode.NotAuthenticated : status === 403 ? ExitCode.Denied : status >= 500 ? ExitCode.Unreachable : ExitCode.Error;
  if (other) return new PhigateError(other.message, exit);
  return new PhigateError(`gateway answered HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ''}`, exit);
}

function parseApiError(body: string): { error: string; message: string } | undefined {
  try {
    const v = JSON.parse(body) as { error?: unknown; message?: unknown };
    if (typeof v.error === 'string' && typeof v.message === 'string') return { error: v.error, message: v.message };
  } catch {
    // not JSON
  }
  return undefined;
}

export function parseRefusal(body: string): Refusal | undefined {
  try {
    const v = JSON.parse(body) as Partial<Refusal>;
    if (isRefusalCode(v.error) && typeof v.message === 'string') return v as Refusal;
  } catch {
    // not JSON: not a phigate refusal
  }
  return undefined;
}

export function unreachableError(serverUrl: string, cause: unknown): PhigateError {
  const code = (cause as { code?: string; cause?: { code?: string } })?.cause?.code ?? (cause as { code?: string })?.code;
  return new PhigateError(
    `gateway unreachable at ${serverUrl}${code ? ` (${code})` : ''}`,
    'unreachable',
    'check --server / PHIGATE_SERVER and that `phigate server` is running',
  );
}
