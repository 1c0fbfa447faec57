// The policy's `limits` key: defaults, units, and errors that name the key and what it expects.
import { describe, expect, it } from 'vitest';
import { parsePolicyFile } from '../../src/policy/file.js';
import { DEFAULT_LIMITS, formatBytes, limitKey, parseBytes, sessionsFor } from '../../src/policy/limits.js';
import { policyErrorOf } from '../support/policy-errors.js';

const BASE = `version: 1
connections:
  ehr: { upstream: "postgres://svc@127.0.0.1:5432/ehr", tls: disable, allow_groups: [engineering] }
`;

describe('limits', () => {
  it('defaults when the key is absent', () => {
    const p = parsePolicyFile(BASE);
    expect(p.limits).toEqual(DEFAULT_LIMITS);
    expect(sessionsFor(p.limits, p.connections.get('ehr')!.maxSessions)).toBe(DEFAULT_LIMITS.sessionsPerConnection);
  });

  it('reads sizes with units, counts, durations and a per-connection session ceiling', () => {
    const p = parsePolicyFile(`version: 1
connections:
  ehr: { upstream: "postgres://svc@127.0.0.1:5432/ehr", tls: disable, max_sessions: 7 }
limits:
  message_bytes: 8MiB
  statement_bytes: 512kB
  statements_per_query: 50
  pipeline_depth: 200
  sessions_per_identity: 3
  connects_in_flight_per_identity: 2
  upstream_connect_timeout: 2s
  idle_in_transaction_timeout: 0
  tunnel_ping_interval: 5s
  tunnel_timeout: 20s
`);
    expect(p.limits).toMatchObject({
      messageBytes: 8 * 1024 * 1024, statementBytes: 512_000, statementsPerQuery: 50, pipelineDepth: 200,
      sessionsPerIdentity: 3, connectsInFlightPerIdentity: 2, upstreamConnectTimeoutMs: 2000,
      idleInTransactionTimeoutMs: 0, tunnelPingIntervalMs: 5000, tunnelTimeoutMs: 20_000,
    });
    expect(sessionsFor(p.limits, p.connections.get('ehr')!.maxSessions)).toBe(7);
  });

  it.each([
    ['limits: { statement_bytes: lots }', 'limits.statement_bytes', 'expected a size'],
    ['limits: { statement_bytes: 0 }', 'limits.statement_bytes', 'expected a size'],
    ['limits: { message_bytes: 4GiB }', 'limits.message_bytes', 'at most'],
    ['limits: { statements_per_query: 1.5 }', 'limits.statements_per_query', 'positive whole number'],
    ['limits: { upstream_connect_timeout: 0 }', 'limits.upstream_connect_timeout', 'expected a duration'],
    ['limits: { idle_in_transaction_timeout: forever }', 'limits.idle_in_transaction_timeout', '0 for none'],
    ['limits: { statement_bytes: 2MiB, message_bytes: 1MiB }', 'limits.statement_bytes', 'must not exceed'],
    ['limits: { tunnel_ping_interval: 1m, tunnel_timeout: 30s }', 'limits.tunnel_timeout', 'longer than'],
    ['limits: { max_rows: 5 }', 'limits.max_rows', 'unknown key'],
  ])('%s is refused naming the key', (yaml, key, problem) => {
    const err = policyErrorOf(`${BASE}${yaml}\n`);
    expect(err.key).toBe(key);
    expect(err.message).toContain(problem);
  });

  it('refuses a connection session ceiling that is not a positive count', () => {
    const err = policyErrorOf(`version: 1
connections:
  ehr: { upstream: "postgres://svc@127.0.0.1:5432/ehr", tls: disable, max_sessions: -1 }
`);
    expect(err.key).toBe('connections.ehr.max_sessions');
  });

  it('parses and formats byte counts', () => {
    expect(parseBytes('1MiB')).toBe(1_048_576);
    expect(parseBytes('64 kB')).toBe(64_000);
    expect(parseBytes(1234)).toBe(1234);
    expect(parseBytes('1.5MB')).toBeUndefined();
    expect(parseBytes('-3')).toBeUndefined();
    expect(formatBytes(1_048_576)).toBe('1 MiB');
    expect(formatBytes(1000)).toBe('1000 bytes');
    expect(limitKey('pipelineDepth')).toBe('limits.pipeline_depth');
  });
});
