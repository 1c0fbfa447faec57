// `phigate policy check|test|apply|history`: validate a policy file, try statements against it,
// activate it on a running gateway, and list the versions that were in force.
import { errnoOf } from '../../common/errors.js';
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { classify, initClassifier } from '../../policy/classify/index.js';
import { tableName } from '../../policy/decide.js';
import { StatementGate } from '../../server/gate.js';
import { ShapeClassifierCache } from '../../policy/shape-cache.js';
import { gateMasking } from '../../masking/index.js';
import { SERVER_CAPABILITIES } from '../../policy/server-access.js';
import type { IdentityKind } from '../../policy/rules.js';
import type { PolicyActivation } from '../../policy/history.js';
import { decideConnectionAccess } from '../../server/access.js';
import { withGatewayOptions } from '../options.js';
import { resolveContext, type GlobalOptions } from '../context.js';
import { gatewayGet, gatewayRequest } from '../gateway-api.js';
import { resolve } from 'node:path';
import { loadPolicyFile, type PolicyFile } from '../../policy/file.js';
import { policyVersion } from '../../policy/version.js';
import { ExitCode, PhigateError } from '../errors.js';

export function policyCommand(): Command {
  const policy = new Command('policy').description('validate and inspect policy files');
  policy
    .command('check')
    .description('validate a policy file; prints its version')
    .argument('<file>', 'policy file (YAML)')
    .option('--json', 'print the result as JSON')
    .action((file: string, opts: { json?: boolean }) => {
      const p = load(file);
      const result = {
        file,
        valid: true,
        version: policyVersion(p.source),
        connections: [...p.connections.keys()],
        issuers: p.issuers.map((i) => i.issuer),
        rules: p.rules.length,
        default: p.default,
        // Who the server-access baseline is lifted for, per capability (empty: nobody).
        server_access: Object.fromEntries(SERVER_CAPABILITIES.map((c) => [c, [...p.serverAccess[c]]])),
        functions: p.functions.map((f) => ({ name: f.schema ? `${f.schema}.${f.name}` : f.name, read_only: f.readOnly, masked_readers: f.maskedReaders })),
      };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        return;
      }
      const lifted = SERVER_CAPABILITIES.filter((c) => p.serverAccess[c].length > 0).map((c) => `${c}: ${p.serverAccess[c].join(', ')}`);
      const declared = result.functions.map((f) => `${f.name} (${[f.read_only ? 'read_only' : '', f.masked_readers ? 'masked_readers' : ''].filter(Boolean).join(', ')})`);
      process.stdout.write(
        `${file}: valid\n  version     ${result.version}\n  connections ${result.connections.join(', ')}\n` +
          `  issuers     ${result.issuers.join(', ') || '(none)'}\n  rules       ${result.rules} (default: ${result.default})\n` +
          `  server      baseline on for everyone${lifted.length ? `; lifted for ${lifted.join('; ')}` : ''}\n` +
          (declared.length ? `  functions   ${declared.join(', ')}\n` : ''),
      );
    });
  policy
    .command('test')
    .description('show how a policy decides a statement, and why')
    .requiredOption('--sql <sql>', 'the statement(s) to decide')
    .option('--file <file>', 'policy file', 'phigate.yaml')
    .option('--as <user>', 'identity name', 'policy-test')
    .option('--groups <groups>', 'comma-separated groups of that identity', '')
    .addOption(new Option('--kind <kind>', 'identity kind').choices(['human', 'service', 'agent']).default('human'))
    .option('--connection <name>', 'connection the statement is sent to (default: the first in the file)')
    .option('--json', 'print one JSON document')
    .action(async (opts: { sql: string; file: string; as: string; groups: string; kind: IdentityKind; connection?: string; json?: boolean }) => {
      const p = load(opts.file);
      const connection = opts.connection ?? p.connections.keys().next().value ?? '';
      if (!p.connections.has(connection)) throw new PhigateError(`no connection named "${connection}" in ${opts.file}`, ExitCode.Usage);
      await initClassifier();
      const c = classify(opts.sql);
      const groups = opts.groups.split(',').map((g) => g.trim()).filter(Boolean);
      const access = decideConnectionAccess(groups, p.connections.get(connection)!);
      // The live gateway's own gate, with the masking facts it would use for these groups: masked
      // columns (predicates_on_masked) and, for masked readers, the refusal to copy masked rows. Only
      // the catalog (what views, rules and triggers reach) is not known offline.
      const gate = new StatementGate({
        policy: () => p, classifier: new ShapeClassifierCache(), connection,
        identity: { name: opts.as, subject: opts.as, groups, kind: opts.kind },
        ...gateMasking(p.masking, groups),
      });
      const verdict = gate.onQuery(opts.sql);
      const result = verdict.decision;
      const doc = {
        version: policyVersion(p.source),
        connection,
        identity: { name: opts.as, groups, kind: opts.kind },
        connection_access: access.allowed ? 'allowed' : `refused: ${access.reason}`,
        decision: verdict.action,
        rule: result?.rule ?? null,
        reason: verdict.action === 'block' && (result === undefined || result.action !== 'block')
          ? verdict.error.message.replace(/^phigate: /, '')
          : (result?.reason ?? ''),
        approvers: result?.approvers ?? [],
        statements: c.ok ? c.statements.map((st) => ({
          kind: st.kind, tables: st.tables.map(tableName), writes: st.writes.map(tableName),
          without_where: st.withoutWhere, functions: st.functions,
        })) : [],
      };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(doc)}\n`);
        return;
      }
      const lines = [
        `decision    ${doc.decision.toUpperCase()}${doc.rule ? ` (rule "${doc.rule}")` : ''}`,
        `why         ${doc.reason}`,
        `identity    ${opts.as} [${groups.join(', ') || 'no groups'}] (${opts.kind}) on "${connection}": connection ${doc.connection_access}`,
        `policy      ${doc.version}`,
        ...doc.statements.map((st, i) => `statement ${i + 1} ${st.kind}${st.tables.length ? ` on ${st.tables.join(', ')}` : ''}${st.without_where ? ' (without WHERE)' : ''}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  withGatewayOptions(
    policy
      .command('apply')
      .description('validate FILE and make it the policy in force on the gateway (admins only)')
      .argument('<file>', 'policy file (YAML)'),
  ).action(async (file: string, opts: GlobalOptions) => {
    const text = readPolicyText(file);
    load(file); // validate locally first: the same errors, without a round trip
    const ctx = resolveContext(opts);
    const r = await gatewayRequest<{ version: string; changed: boolean; replicas?: 'published' }>(ctx, 'POST', '/admin/policy', await ctx.token(), { text, contentType: 'application/yaml' });
    const fleet = r.replicas === 'published' ? ' (published to every replica)' : '';
    process.stdout.write(r.changed ? `activated ${r.version}${fleet}\n` : `unchanged: ${r.version} is already in force${fleet}\n`);
  });

  withGatewayOptions(
    policy
      .command('history')
      .description('list the policy versions the gateway has activated (admins and auditors)')
      .option('--json', 'print one JSON document'),
  ).action(async (opts: GlobalOptions & { json?: boolean }) => {
    const ctx = resolveContext(opts);
    const r = await gatewayGet<{ current: string; history: PolicyActivation[] }>(ctx, '/v1/policy/history', await ctx.token());
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      return;
    }
    const rows = r.history.map((h) => `${h.activated_at}  ${h.version.slice(0, 19)}…  ${h.source.padEnd(7)}  ${h.by ?? ''}${h.version === r.current ? '  (in force)' : ''}`);
    process.stdout.write(`ACTIVATED                 VERSION                 SOURCE   BY\n${rows.join('\n')}\n`);
  });
  return policy;
}

function readPolicyText(file: string): string {
  try {
    return readFileSync(resolve(file), 'utf8');
  } catch (err) {
    throw new PhigateError(`cannot read ${file}: ${errnoOf(err) ?? err}`);
  }
}

/** The policy file, or its PolicyFileError (exit 1, the problem's line and key). */
function load(file: string): PolicyFile {
  return loadPolicyFile(resolve(file));
}
