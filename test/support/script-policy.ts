// The policy file the long-running scripts (fuzz, soak, bench) start `phigate server` with: one
// test issuer, connections to the test PostgreSQL by password over loopback, then the script's own
// part (masking, rules, default). One fixture, so a change of the policy format is made once.

export interface ScriptConnection {
  /** postgres://user@host:port/db of the test PostgreSQL (password from EHR_DB_PASSWORD). */
  upstream: string;
  allowGroups: readonly string[];
  /** `pool: false`: the connection without upstream pooling. */
  pool?: false;
}

export function scriptPolicy(o: { issuer: string; connections: Record<string, ScriptConnection>; rest: string }): string {
  const connections = Object.entries(o.connections).map(([name, c]) => `  ${name}:
    upstream: ${c.upstream}
    password_env: EHR_DB_PASSWORD
    tls: disable
    allow_groups: [${c.allowGroups.join(', ')}]
${c.pool === false ? '    pool: false\n' : ''}`).join('');
  return `version: 1
identity:
  issuers:
    - issuer: ${o.issuer}
      audience: phigate
connections:
${connections}${o.rest}`;
}
