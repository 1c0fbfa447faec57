// End-to-end harness: a real `phigate server` process in front of the embedded PostgreSQL, a real
// OpenID Provider minting tokens, and real `phigate connect` processes in front of the gateway.
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { startTestIdp, type TestIdp } from './oidc.js';
import type { TestPostgres } from './postgres.js';
import { run, type Proc } from './proc.js';

export { BIN, run, type Proc } from './proc.js';


export const IDENTITIES: Record<string, string[]> = {
  alice: ['engineering'],
  agent: ['ai-agents'],
  bob: ['privacy-officers'],
  mallory: ['marketing'],
  root: ['admins'],
  olivia: ['engineering', 'privacy-officers'],
  jitbot: ['jit-agents'],
  carol: ['auditors'],
};

export interface Gw {
  pg: TestPostgres;
  idp: TestIdp;
  dir: string;
  policyFile: string;
  url: string;
  server: Proc;
  token(name: keyof typeof IDENTITIES | string): Promise<string>;
  /** Starts `phigate connect` and resolves once it listens. */
  connect(connection: string, token: string, extra?: string[]): Promise<Proc & { port: number }>;
  restartServer(): Promise<void>;
  close(): Promise<void>;
}

export function policyYaml(pg: TestPostgres, idp: TestIdp, closedPort: number, extra = ''): string {
  return `version: 1
identity:
  issuers:
    - issuer: ${idp.issuer}
      audience: phigate
      owner_claim: owner
connections:
  ehr:
    type: postgres
    upstream: postgres://${pg.roles.scram.user}@localhost:${pg.port}/${pg.database}
    password_env: EHR_DB_PASSWORD
    tls: verify-full
    tls_ca_file: ${pg.caCert}
    allow_groups: [engineering, ai-agents]
  ehr-md5:
    upstream: postgres://${pg.roles.md5.user}@127.0.0.1:${pg.port}/${pg.database}
    password_env: EHR_MD5_PASSWORD
    tls: disable
    allow_groups: [engineering]
  ehr-trust:
    upstream: postgres://${pg.roles.trust.user}@127.0.0.1:${pg.port}/${pg.database}
    tls: require
    allow_groups: [engineering]
  ehr-jit:
    upstream: postgres://${pg.roles.scram.user}@127.0.0.1:${pg.port}/${pg.database}
    password_env: EHR_DB_PASSWORD
    tls: disable
    allow_groups: [engineering, jit-agents]
    access_approval: { groups: [jit-agents], approvers: [privacy-officers], max_duration: 1h }
  broken:
    upstream: postgres://nobody@127.0.0.1:${closedPort}/nothing
    tls: disable
    allow_groups: [engineering]
${extra || 'default: allow\n'}`;
}

export interface GatewayOptions {
  port?: number;
  policy?: string;
  /** More `phigate server` flags (e.g. --store) and environment. */
  serverArgs?: string[];
  serverEnv?: NodeJS.ProcessEnv;
  /** Trust this OpenID Provider instead of starting one (replicas share one); the caller closes it. */
  idp?: TestIdp;
  /** A PostgreSQL of the test's own (startTestPostgres) instead of the shared one. */
  pg?: TestPostgres;
}

export async function startGateway(opts: GatewayOptions = {}): Promise<Gw> {
  const pg = opts.pg ?? inject('pg');
  const idp = opts.idp ?? await startTestIdp({ identities: IDENTITIES });
  const dir = mkdtempSync(join(tmpdir(), 'phigate-gw-'));
  const policyFile = join(dir, 'phigate.yaml');
  writeFileSync(policyFile, policyYaml(pg, idp, 1, opts.policy));
  const serverEnv = { EHR_DB_PASSWORD: pg.roles.scram.password, EHR_MD5_PASSWORD: pg.roles.md5.password, ...opts.serverEnv };
  let listenPort = opts.port ?? 0;
  const startServer = async (): Promise<{ server: Proc; url: string }> => {
    const server = run(['server', '--config', policyFile, '--listen', `127.0.0.1:${listenPort}`, '--data-dir', join(dir, 'data'), ...(opts.serverArgs ?? [])], serverEnv);
    const m = await server.waitFor(/listening on (http:\/\/127\.0\.0\.1:(\d+))/, 45_000);
    listenPort = Number(m[2]);
    return { server, url: m[1]! };
  };
  let { server, url } = await startServer();
  const procs: Proc[] = [];
  const gw: Gw = {
    pg, idp, dir, policyFile, url, server,
    token: (name) => idp.mint(name),
    async connect(connection, token, extra = []) {
      const p = run(['connect', connection, '--server', gw.url, ...extra], { PHIGATE_TOKEN: token });
      procs.push(p);
      const m = await p.waitFor(/Listening on 127\.0\.0\.1:(\d+)/);
      return Object.assign(p, { port: Number(m[1]) });
    },
    async restartServer() {
      await gw.server.stop();
      ({ server, url } = await startServer());
      gw.server = server;
      gw.url = url;
    },
    async close() {
      await Promise.all(procs.map((p) => p.stop()));
      await gw.server.stop();
      if (!opts.idp) await idp.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return gw;
}

/** A gateway with `policy` and alice's `phigate connect ehr` port on it. */
export async function gatewayAndPort(policy?: string): Promise<{ gw: Gw; port: number }> {
  const gw = await startGateway({ policy });
  return { gw, port: (await gw.connect('ehr', await gw.token('alice'))).port };
}

/** The gateway's audit log as written so far, one object per record. */
export function auditRecords(gw: Gw): Record<string, unknown>[] {
  return readFileSync(join(gw.dir, 'data', 'audit', 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Runs `phigate ARGS --server <gw>` as identity `who` (a workload token) and waits for it. */
export async function gatewayCli(gw: Gw, who: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = run([...args, '--server', gw.url], { PHIGATE_TOKEN: await gw.token(who) });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
