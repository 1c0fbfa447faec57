// `phigate replay SESSION_ID`: plays a recorded session back in the terminal as psql showed it, with
// its original pacing (--speed N, --step), after checking the recording against its seal. --json
// prints the recording itself (NDJSON). Auditors and admins only; the gateway records each replay.
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withGatewayOptions } from '../options.js';
import { showLabel } from '../../tunnel/label.js';
import { resolveContext, type GlobalOptions } from '../context.js';
import { ExitCode, PhigateError } from '../errors.js';
import { EvidenceClient } from '../../audit/client.js';
import { HEADER_SEAL, HEADER_SEAL_STATUS, HEADER_SESSION, SESSIONS_PATH, type SealStatus } from '../../audit/api.js';
import { findSessionEnd, sealOf } from '../../audit/search.js';
import { hashFile } from '../../audit/verify.js';
import { shortTime } from '../../audit/format.js';
import { RecordingLookupError, resolveRecording } from '../../recording/files.js';
import { parseRecording, recordingFileName, RecordingFormatError, type Recording } from '../../recording/format.js';
import { renderBlocks, renderText } from '../../recording/psql.js';
import { formatClock } from '../../ui/replay/state.js';
import { evidenceDirs } from './audit.js';

/** Rows of each result shown unless --rows says otherwise: about a screenful, as a pager would. */
export const DEFAULT_REPLAY_ROWS = 50;

interface ReplayOptions extends GlobalOptions {
  speed: string;
  rows: string;
  step?: boolean;
  json?: boolean;
  dataDir?: string;
}

export function replayCommand(): Command {
  return withGatewayOptions(
    new Command('replay')
      .description('play a recorded session back as psql showed it (auditors and admins)')
      .argument('<session>', 'session id, or its first characters (see `phigate sessions`)')
      .option('--speed <n>', 'playback speed (2 = twice as fast, 0.5 = half)', '1')
      .option('--step', 'show one statement at a time; space or enter for the next')
      .option('--rows <n|all>', 'rows of each result shown; the rest are counted ("... N more rows")', String(DEFAULT_REPLAY_ROWS))
      .option('--json', 'print the recording as NDJSON')
      .option('--data-dir <dir>', 'read the recording from this server data directory instead of asking the gateway (offline)'),
  ).action(async (session: string, opts: ReplayOptions) => runReplay(session, opts));
}

async function runReplay(idOrPrefix: string, opts: ReplayOptions): Promise<void> {
  const speed = Number(opts.speed);
  if (!Number.isFinite(speed) || speed <= 0 || speed > 1000) throw new PhigateError(`--speed must be a number above 0, got "${opts.speed}"`, ExitCode.Usage);
  const maxRows = rowsOption(opts.rows);
  const got = opts.dataDir ? await readLocal(opts.dataDir, idOrPrefix) : await fetchRemote(opts, idOrPrefix);
  if (opts.json) {
    process.stdout.write(got.text.endsWith('\n') ? got.text : `${got.text}\n`);
    return;
  }
  let rec: Recording;
  try {
    rec = parseRecording(got.text, `recording of ${got.session}`);
  } catch (err) {
    if (err instanceof RecordingFormatError) throw new PhigateError(err.message, ExitCode.Error);
    throw err;
  }
  const blocks = renderBlocks(rec, { maxRows });
  const h = rec.header;
  const who = `${h.user}${h.agent ? ` (agent ${showLabel(h.agent)})` : h.kind === 'agent' ? ' (agent)' : ''}`;
  const duration = blocks.length ? formatClock(blocks[blocks.length - 1]!.t) : '00:00';
  const title = `Session ${h.session}: ${who} on ${h.connection}${h.application_name ? ` via ${h.application_name}` : ''}, ` +
    `started ${shortTime(h.started_at)} UTC, ${duration}${endNote(rec)}`;
  const seal = sealText(got.status, got.seal);
  if (got.status === 'mismatch') process.stderr.write(`phigate: warning: ${seal}\n`);
  if (!process.stdout.isTTY || !process.stdin.isTTY) {
    // No terminal to pace or take keys: the whole session at once.
    process.stdout.write(`${title}\n${seal}\n\n${renderText(rec, { maxRows })}`);
    return;
  }
  const { runReplayTui } = await import('../../ui/replay/run.js');
  await runReplayTui({ title, seal: { status: got.status, text: seal }, blocks, speed, step: opts.step === true });
}

/** --rows: a whole number, or `all` for every recorded row. */
function rowsOption(v: string): number | undefined {
  if (v === 'all') return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new PhigateError(`--rows must be a whole number or "all", got "${v}"`, ExitCode.Usage);
  return n;
}

function endNote(rec: Recording): string {
  if (!rec.complete) return ' (recording ends abruptly: the session or server stopped)';
  const end = rec.events[rec.events.length - 1];
  return end?.type === 'end' && end.reason === 'interrupted' ? ' (interrupted: the server stopped without ending the session; closed at its next start)' : '';
}

function sealText(status: SealStatus, seal: string | undefined): string {
  if (status === 'ok') return `recording matches its seal (sha256 ${seal?.slice(0, 16)}…) in the audit log`;
  if (status === 'mismatch') return `recording does NOT match its seal in the audit log (sha256 ${seal?.slice(0, 16)}…): it was altered after the session ended`;
  return 'recording not sealed yet (the session is still open, or ended without its session.end record)';
}

interface Got {
  session: string;
  text: string;
  status: SealStatus;
  seal?: string;
}

async function readLocal(dataDir: string, idOrPrefix: string): Promise<Got> {
  const dirs = evidenceDirs(dataDir);
  let session: string;
  try {
    session = resolveRecording(dirs.recordingsDir, idOrPrefix);
  } catch (err) {
    if (err instanceof RecordingLookupError) throw new PhigateError(err.message, err.reason === 'not_found' ? ExitCode.Error : ExitCode.Usage);
    throw err;
  }
  const file = join(dirs.recordingsDir, recordingFileName(session));
  if (!existsSync(file)) throw new PhigateError(`no recording at ${file}`, ExitCode.Error);
  const seal = sealOf(findSessionEnd(dirs.auditDir, session));
  const actual = await hashFile(file);
  const status: SealStatus = !seal ? 'unsealed' : seal.sha256 === actual ? 'ok' : 'mismatch';
  return { session, text: readFileSync(file, 'utf8'), status, seal: seal?.sha256 };
}

async function fetchRemote(opts: ReplayOptions, idOrPrefix: string): Promise<Got> {
  const ctx = resolveContext(opts);
  const client = new EvidenceClient({ serverUrl: ctx.serverUrl, token: ctx.token, source: ctx.source });
  const { text, headers } = await client.text(`${SESSIONS_PATH}/${encodeURIComponent(idOrPrefix)}/recording`);
  const status = (headers.get(HEADER_SEAL_STATUS) ?? 'unsealed') as SealStatus;
  return { session: headers.get(HEADER_SESSION) ?? idOrPrefix, text, status, seal: headers.get(HEADER_SEAL) ?? undefined };
}
