// Session admission counts: limits per identity and per connection, connect slots that queue, and
// counts that return to zero however tickets end.
import { describe, expect, it } from 'vitest';
import { Admission, AdmissionTicket, type AdmissionRequest, type LimitRefusal } from '../../src/server/admission.js';
import { upstreamFailure } from '../../src/server/upstream-fault.js';
import { UpstreamError } from '../../src/server/upstream.js';

function req(identity: string, connection = 'ehr', o: Partial<{ perIdentity: number; perConnection: number; inFlight: number; key: string }> = {}): AdmissionRequest {
  return {
    identity, name: `${identity}@example.com`, connection,
    limits: { sessionsPerIdentity: o.perIdentity ?? 32, connectsInFlightPerIdentity: o.inFlight ?? 8 },
    connectionLimit: { value: o.perConnection ?? 80, key: o.key ?? 'limits.sessions_per_connection' },
  };
}

function ticket(a: Admission, r: AdmissionRequest): AdmissionTicket {
  const t = a.admit(r);
  if (!(t instanceof AdmissionTicket)) throw new Error(`refused: ${t.message}`);
  return t;
}

describe('Admission', () => {
  it('refuses the session past the identity limit with a message naming it, its count and key', () => {
    const a = new Admission();
    const held = [ticket(a, req('alice', 'ehr', { perIdentity: 2 })), ticket(a, req('alice', 'other', { perIdentity: 2 }))];
    const r = a.admit(req('alice', 'ehr', { perIdentity: 2 })) as LimitRefusal;
    expect(r).not.toBeInstanceOf(AdmissionTicket);
    expect(r.message).toBe('too many sessions for alice@example.com: 2 open, at most 2 (limits.sessions_per_identity)');
    expect(r).toMatchObject({ refused: 'sessionsPerIdentity', value: 2, count: 2, key: 'limits.sessions_per_identity' });
    // Another identity is not affected.
    expect(a.admit(req('bob', 'ehr', { perIdentity: 2 }))).toBeInstanceOf(AdmissionTicket);
    held[0]!.release();
    expect(a.admit(req('alice', 'ehr', { perIdentity: 2 }))).toBeInstanceOf(AdmissionTicket);
  });

  it('refuses past the connection limit, naming the connection key given', () => {
    const a = new Admission();
    ticket(a, req('alice', 'ehr', { perConnection: 2, key: 'connections.ehr.max_sessions' }));
    ticket(a, req('bob', 'ehr', { perConnection: 2, key: 'connections.ehr.max_sessions' }));
    const r = a.admit(req('carol', 'ehr', { perConnection: 2, key: 'connections.ehr.max_sessions' })) as LimitRefusal;
    expect(r.message).toBe('too many sessions on connection "ehr": 2 open, at most 2 (connections.ehr.max_sessions)');
    expect(a.admit(req('carol', 'other', { perConnection: 2 }))).toBeInstanceOf(AdmissionTicket);
  });

  it('queues connects past the in-flight limit in order, and refuses one that waited too long', async () => {
    const a = new Admission();
    const started: number[] = [];
    const refused: LimitRefusal[] = [];
    const tickets = [0, 1, 2, 3].map(() => ticket(a, req('alice', 'ehr', { inFlight: 2 })));
    tickets.forEach((t, i) => t.whenConnectSlot(() => started.push(i), (r) => refused.push(r), i === 3 ? 20 : 60_000));
    expect(started).toEqual([0, 1]);
    expect(a.counts().identities['alice']).toEqual({ sessions: 4, opening: 2, waiting: 2 });
    tickets[0]!.connected();
    expect(started).toEqual([0, 1, 2]);
    await new Promise((r) => setTimeout(r, 60));
    expect(started).toEqual([0, 1, 2]);
    expect(refused.map((r) => r.message)).toEqual([
      'too many sessions of alice@example.com being opened: 2 at once for 0 s, at most 2 (limits.connects_in_flight_per_identity)',
    ]);
    for (const t of tickets) t.release();
    expect(a.counts()).toEqual({ identities: {}, connections: {} });
  });

  it('returns to zero whatever state each ticket ends in, releasing twice changing nothing', () => {
    const a = new Admission();
    const go: number[] = [];
    const ts = Array.from({ length: 10 }, () => ticket(a, req('alice', 'ehr', { inFlight: 3 })));
    ts.forEach((t, i) => t.whenConnectSlot(() => go.push(i), () => {}, 60_000));
    ts[0]!.connected();
    ts[1]!.release(); // released while opening: the next waiter starts
    ts[5]!.release(); // released while waiting
    expect(go).toEqual([0, 1, 2, 3, 4]);
    for (const t of ts) {
      t.release();
      t.release();
    }
    expect(a.counts()).toEqual({ identities: {}, connections: {} });
  });
});

describe('upstreamFailure', () => {
  const err = (kind: ConstructorParameters<typeof UpstreamError>[0], sqlstate: string, reason: string, fields?: Record<string, string>) =>
    new UpstreamError(kind, sqlstate, `cannot connect to PostgreSQL at db.internal:5432: ${reason}`, fields, { reason });

  it('says an authentication failure is the operator\'s, without the role or the server text', () => {
    const f = upstreamFailure('ehr', err('auth', '28P01', 'password authentication failed for user "svc_ehr" (28P01)',
      { C: '28P01', M: 'password authentication failed for user "svc_ehr"' }), 'svc_ehr');
    expect(f.code).toBe('08004');
    expect(f.message).toBe('phigate could not authenticate to the database of "ehr"; ask the operator');
    expect(JSON.stringify(f)).not.toContain('svc_ehr');
  });

  it('keeps PostgreSQL\'s 53300 and 57P03 with a hint, scrubbing the role from its text', () => {
    const full = upstreamFailure('ehr', err('server', '53300', 'x', { C: '53300', M: 'too many connections for role "svc_ehr"' }), 'svc_ehr');
    expect(full).toMatchObject({ code: '53300', detail: 'PostgreSQL: too many connections for role "<connection role>"' });
    expect(full.hint).toContain('connections.ehr.max_sessions');
    const starting = upstreamFailure('ehr', err('server', '57P03', 'x', { C: '57P03', M: 'the database system is starting up' }));
    expect(starting).toMatchObject({ code: '57P03', detail: 'PostgreSQL: the database system is starting up' });
    expect(starting.message).toBe('phigate could not connect to the database of "ehr": the database is not accepting connections now');
  });

  it('names the cause of unreachable and silent databases without their address', () => {
    const dns = upstreamFailure('ehr', err('unreachable', '08001', 'host name not found (ENOTFOUND)'));
    expect(dns).toMatchObject({ code: '08001', message: 'phigate could not connect to the database of "ehr": host name not found (ENOTFOUND)' });
    const silent = upstreamFailure('ehr', err('timeout', '08001', 'timed out after 1000 ms during authentication'));
    expect(silent.message).toBe('phigate could not connect to the database of "ehr": timed out after 1000 ms during authentication (limits.upstream_connect_timeout)');
    expect(JSON.stringify([dns, silent])).not.toContain('db.internal');
  });
});
