// `phigate sessions`: who connected where and when, how long, how many statements, whether the
// session was recorded. Auditors and admins see everyone's; others see their own.
import { Command } from 'commander';
import { withGatewayOptions } from '../options.js';
import { resolveContext, type GlobalOptions } from '../context.js';
import { EvidenceClient } from '../../audit/client.js';
import { SESSIONS_PATH, type SessionsResponse } from '../../audit/api.js';
import { listSessions } from '../../audit/search.js';
import { renderSessions } from '../../audit/format.js';
import { evidenceDirs, limitOption, timeOption } from './audit.js';

interface SessionsOptions extends GlobalOptions {
  user?: string;
  connection?: string;
  since: string;
  until?: string;
  limit?: string;
  json?: boolean;
  dataDir?: string;
}

export function sessionsCommand(): Command {
  return withGatewayOptions(
    new Command('sessions')
      .description('sessions started in a time window, newest first (replay one with `phigate replay SESSION_ID`)')
      .option('--user <name>', 'identity name')
      .option('--connection <name>', 'connection')
      .option('--since <dur|iso>', 'started since this time or this long ago', '24h')
      .option('--until <iso>', 'started up to this time')
      .option('--limit <n>', 'most sessions shown (default 100)')
      .option('--json', 'print one JSON document')
      .option('--data-dir <dir>', 'read the evidence files of this server data directory instead of asking the gateway (offline)'),
  ).action(async (opts: SessionsOptions) => {
    const since = timeOption('since', opts.since);
    const until = timeOption('until', opts.until);
    const limit = limitOption(opts.limit);
    let r: SessionsResponse;
    if (opts.dataDir) {
      const s = listSessions(evidenceDirs(opts.dataDir).auditDir, { user: opts.user, connection: opts.connection, since, until, limit });
      r = { sessions: s.sessions, more: s.more };
    } else {
      const ctx = resolveContext(opts);
      const q = new URLSearchParams({ since: new Date(since!).toISOString(), limit: String(limit) });
      if (until !== undefined) q.set('until', new Date(until).toISOString());
      if (opts.user) q.set('user', opts.user);
      if (opts.connection) q.set('connection', opts.connection);
      r = await new EvidenceClient({ serverUrl: ctx.serverUrl, token: ctx.token, source: ctx.source }).json<SessionsResponse>(`${SESSIONS_PATH}?${q}`);
    }
    process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : renderSessions(r.sessions, { more: r.more, width: process.stdout.columns || 140 }));
  });
}
