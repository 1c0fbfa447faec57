// `phigate connections`: the connections the caller's identity may use on the gateway.
import { Command } from 'commander';
import { withGatewayOptions } from '../options.js';
import { resolveContext, type GlobalOptions } from '../context.js';
import { gatewayGet } from '../gateway-api.js';
import { CONNECTIONS_PATH, type ConnectionInfo } from '../../tunnel/protocol.js';
import { displayWidth, padEndWidth } from '../../ui/width.js';

interface ConnectionsOptions extends GlobalOptions {
  json?: boolean;
}

/** The document `phigate connections --json` prints. */
export interface ConnectionsReport {
  server: string;
  connections: ConnectionInfo[];
}

export function connectionsCommand(): Command {
  return withGatewayOptions(
    new Command('connections')
      .description('list the connections you may use (`phigate connect NAME`)')
      .option('--json', 'print one JSON document'),
  ).action(async (opts: ConnectionsOptions) => {
    const ctx = resolveContext(opts);
    const body = await gatewayGet<{ connections: ConnectionInfo[] }>(ctx, CONNECTIONS_PATH, await ctx.token());
    const report: ConnectionsReport = { server: ctx.serverUrl, connections: body.connections };
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderConnections(report));
  });
}

export function renderConnections(r: ConnectionsReport): string {
  if (r.connections.length === 0) return `You may not use any connection on ${r.server}.\n`;
  const rows = [['NAME', 'TYPE', 'DATABASE'], ...r.connections.map((c) => [c.name, c.type, c.database])];
  const widths = [0, 1].map((i) => Math.max(...rows.map((row) => displayWidth(row[i]!))));
  return rows.map((row) => `${padEndWidth(row[0]!, widths[0]!)}  ${padEndWidth(row[1]!, widths[1]!)}  ${row[2]}`).join('\n') + '\n';
}
