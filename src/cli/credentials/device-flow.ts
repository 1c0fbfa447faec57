// The polling half of the device authorization grant (RFC 8628 §3.4-3.5): wait the interval, ask the
// token endpoint, keep waiting on authorization_pending, wait 5 s longer after each slow_down, stop
// with a clear reason on access_denied or expired_token. Clock and sleep are injectable for tests.
import { ExitCode, PhigateError } from '../errors.js';
import { oauthRefusal, type Tokens } from './issuer.js';

/** RFC 8628 §3.2: the interval a client uses when the issuer sends none. */
export const DEFAULT_INTERVAL_S = 5;

export interface PollOptions {
  /** From the device authorization response. */
  intervalS?: number;
  expiresInS: number;
  /** Used when the issuer sent no interval (tests set a short one; the RFC default is 5 s). */
  fallbackIntervalS?: number;
  /** One token-endpoint request; rejects with an OAuth error body for pending/slow_down/... */
  request: () => Promise<Tokens>;
  say?: (line: string) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface PollResult {
  tokens: Tokens;
  /** Interval in force at the end, seconds (after any slow_down). */
  intervalS: number;
  polls: number;
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function pollDeviceToken(opts: PollOptions): Promise<PollResult> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? realSleep;
  const say = opts.say ?? (() => {});
  let intervalS = opts.intervalS ?? opts.fallbackIntervalS ?? DEFAULT_INTERVAL_S;
  const deadline = now() + opts.expiresInS * 1000;
  let polls = 0;
  let networkFailures = 0;
  for (;;) {
    await sleep(intervalS * 1000);
    if (now() >= deadline) throw expired();
    polls++;
    try {
      return { tokens: await opts.request(), intervalS, polls };
    } catch (err) {
      const refusal = oauthRefusal(err);
      if (!refusal) {
        // A flaky network between polls is not a failed login; the deadline still bounds it.
        networkFailures++;
        if (networkFailures === 3) say('phigate: cannot reach the identity provider; still trying');
        continue;
      }
      networkFailures = 0;
      switch (refusal.error) {
        case 'authorization_pending':
          continue;
        case 'slow_down':
          intervalS += 5;
          say(`phigate: the identity provider asked to poll less often; now every ${intervalS} s`);
          continue;
        case 'access_denied':
          throw new PhigateError('login denied: the request was declined at the verification page', ExitCode.NotAuthenticated,
            'run `phigate login` again and approve the request in the browser');
        case 'expired_token':
          throw expired();
        default:
          throw new PhigateError(`login failed: the identity provider answered ${refusal.error}${refusal.description ? ` (${refusal.description})` : ''}`,
            ExitCode.NotAuthenticated, 'run `phigate login` again');
      }
    }
  }
}

function expired(): PhigateError {
  return new PhigateError('login expired: the code was not confirmed in time', ExitCode.NotAuthenticated,
    'run `phigate login` again and finish in the browser before the code expires');
}
