// The audit log store: chained canonical records, group commit, checkpoints, torn-tail repair,
// locking, the signing key, and failing closed when a record cannot be written.
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/log.js';
import { AuditLockedError, AuditWriteError, AuditKeyError } from '../../src/audit/errors.js';
import { GENESIS_PREV, canonicalJson, canonicalRecord, sha256Hex } from '../../src/audit/canonical.js';
import fc from 'fast-check';
import { formatPublicKey, loadOrCreateSigningKey, parsePublicKey, keyFingerprint, SIGNING_KEY_FILE } from '../../src/audit/keys.js';
import { verifyLog } from '../../src/audit/verify.js';
import { statementEvent, tempDir } from './helpers.js';

const dirs: (() => void)[] = [];
afterAll(() => dirs.forEach((c) => c()));
function dir(): string {
  const t = tempDir();
  dirs.push(t.cleanup);
  return t.dir;
}

const lines = (d: string): string[] => readFileSync(join(d, 'audit.jsonl'), 'utf8').split('\n').filter(Boolean);

describe('canonical form', () => {
  it('sorts keys by code unit, drops undefined, writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x\n"'], c: undefined, é: 2, Z: { y: 1.5, x: -0 } })).toBe('{"Z":{"x":0,"y":1.5},"a":[true,null,"x\\n\\""],"b":1,"é":2}');
    expect(() => canonicalJson({ n: NaN })).toThrow(/finite/);
    expect(() => canonicalJson({ d: new Date() })).toThrow(/Date/);
  });

  it('the append path\'s serializer is exactly canonicalJson({ ...event, seq, at, prev })', () => {
    const value = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.array(fc.string(), { maxLength: 3 }),
      fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer()), { maxKeys: 3 }));
    const key = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('seq', 'at', 'prev', 'type', 'a', 'Z', 'é', '\u0000', '__proto__x'));
    fc.assert(fc.property(fc.dictionary(key, value, { maxKeys: 12 }), fc.nat(), fc.string(), fc.string(), (event, seq, at, prev) => {
      expect(canonicalRecord(event, seq, at, prev)).toBe(canonicalJson({ ...event, seq, at, prev }));
    }), { numRuns: 500 });
  });

  it('events whose key lists join to the same text are each written with their own keys', () => {
    // The append path looks key sets up by their joined names; `a\u0001b` must not pass for `a`, `b`.
    const one = { type: 'x', 'a\u0001b': 1 };
    const two = { type: 'x', a: 1, b: 2 };
    for (const e of [one, two, one, two]) expect(canonicalRecord(e, 1, 't', 'p')).toBe(canonicalJson({ ...e, seq: 1, at: 't', prev: 'p' }));
  });
});

describe('AuditLog', () => {
  it('appends chained canonical records and continues the chain after reopening', async () => {
    const d = dir();
    const log = AuditLog.open(d);
    const a = log.append({ type: 'server.start', version: '0.1.0', pid: 1 });
    const b = log.append(statementEvent(1));
    expect(a.seq).toBe(0);
    expect(b.seq).toBe(1);
    await log.close();
    const [l0, l1] = lines(d);
    const r0 = JSON.parse(l0!);
    const r1 = JSON.parse(l1!);
    expect(r0.prev).toBe(GENESIS_PREV);
    expect(canonicalJson(r0)).toBe(l0);
    expect(sha256Hex(l0!)).toBe(a.hash);
    expect(r1.prev).toBe(a.hash);
    expect(r1).toMatchObject({ seq: 1, type: 'statement', user: expect.any(String) });
    expect(Date.parse(r1.at)).toBeGreaterThan(0);

    const again = AuditLog.open(d);
    expect(again.head).toEqual({ seq: 1, hash: b.hash });
    const c = again.append({ type: 'server.stop', reason: 'SIGTERM' });
    expect(c.seq).toBe(2);
    await again.close();
    expect(JSON.parse(lines(d)[2]!).prev).toBe(b.hash);
    expect((await verifyLog(d)).ok).toBe(true);
  });

  it('appendMany encodes batches of any size and text once: lines, hashes and index agree with the records', async () => {
    const d = dir();
    const log = AuditLog.open(d);
    // Multi-byte text, and a batch far larger than the encoding buffer the log keeps between appends.
    const small = log.appendMany([statementEvent(1, { sql: 'SELECT \'é中😀\'' }), statementEvent(2)]);
    const big = log.appendMany([statementEvent(3, { sql: `SELECT '${'ü'.repeat(300_000)}'` }), statementEvent(4)]);
    const after = log.appendMany([statementEvent(5)]);
    await log.close();
    const all = [...small, ...big, ...after];
    const ls = lines(d);
    expect(ls).toHaveLength(5);
    ls.forEach((l, i) => {
      expect(sha256Hex(l)).toBe(all[i]!.hash);
      expect(canonicalJson(JSON.parse(l))).toBe(l);
    });
    expect(JSON.parse(ls[0]!).sql).toBe('SELECT \'é中😀\'');
    // Each search-index entry points at its line: byte offset (float64 at 0), length with newline (u32 at 16).
    const idx = readFileSync(join(d, 'index', 'records.idx'));
    let offset = 0;
    ls.forEach((l, i) => {
      expect(idx.readDoubleLE(i * 48)).toBe(offset);
      expect(idx.readUInt32LE(i * 48 + 16)).toBe(Buffer.byteLength(l) + 1);
      offset += Buffer.byteLength(l) + 1;
    });
    expect((await verifyLog(d)).ok).toBe(true);
  });

  it('appendMany writes several records at once, chained; an event cannot set seq, at or prev', async () => {
    const d = dir();
    const log = AuditLog.open(d);
    const r = log.appendMany([statementEvent(1), statementEvent(2), { ...statementEvent(3), seq: 99, prev: 'x' } as never]);
    expect(r.map((x) => x.seq)).toEqual([0, 1, 2]);
    expect(() => log.append({ ...statementEvent(4), bundle: 'header' } as never)).toThrow(/bundle/);
    await log.close();
    const recs = lines(d).map((l) => JSON.parse(l));
    expect(recs[2].seq).toBe(2);
    expect(recs[2].prev).toBe(r[1]!.hash);
    expect(statSync(join(d, 'audit.jsonl')).mode & 0o777).toBe(0o600);
  });

  it('group commit: synced() resolves after one fsync covering every record appended before it', async () => {
    const d = dir();
    const log = AuditLog.open(d, { syncIntervalMs: 20 });
    for (let i = 0; i < 500; i++) log.append(statementEvent(i));
    expect(log.stats().fsyncs).toBe(0);
    await log.synced();
    expect(log.stats()).toMatchObject({ fsyncs: 1, synced: 500, records: 500 });
    // Nothing new: already synced, no further fsync.
    await log.synced();
    expect(log.stats().fsyncs).toBe(1);
    await log.close();
  });

  it('sustained appends with group commit on: prints records/s and per-append cost', async () => {
    const d = dir();
    const log = AuditLog.open(d, { signingKey: generateKeyPairSync('ed25519').privateKey });
    // Warm up the JIT, then time appends alone (the statement's critical path).
    for (let i = 0; i < 2000; i++) log.append(statementEvent(i));
    // Best of three: the machine is shared, the best run is the code's cost.
    const n = 10_000;
    const events = Array.from({ length: n }, (_, i) => statementEvent(i));
    let usPerAppend = Infinity;
    let t0 = 0;
    for (let round = 0; round < 3; round++) {
      t0 = performance.now();
      for (const e of events) log.append(e);
      usPerAppend = Math.min(usPerAppend, ((performance.now() - t0) * 1000) / n);
    }
    // Then a sustained load: batches with the event loop free in between, fsyncs and checkpoints running.
    await log.synced();
    const before = log.stats();
    t0 = performance.now();
    let count = 0;
    while (performance.now() - t0 < 1500) {
      for (let i = 0; i < 200; i++) log.append(statementEvent(count++));
      await new Promise((r) => setImmediate(r));
    }
    await log.synced();
    const secs = (performance.now() - t0) / 1000;
    const after = log.stats();
    await log.close();
    const rate = count / secs;
    process.stdout.write(`audit append: ${usPerAppend.toFixed(1)} us/record; sustained with group commit: ${Math.round(rate).toLocaleString('en-US')} records/s, ` +
      `${after.fsyncs - before.fsyncs} fsyncs, ${after.checkpoints - before.checkpoints} checkpoints in ${secs.toFixed(1)} s\n`);
    // A regression guard only (shared CI machines); the printed figure is the measurement.
    expect(usPerAppend).toBeLessThan(200);
    expect(after.fsyncs - before.fsyncs).toBeGreaterThan(3);
    expect((await verifyLog(d)).ok).toBe(true);
  });

  it('signs checkpoints every N records and on close; verify accepts them', async () => {
    const d = dir();
    const key = generateKeyPairSync('ed25519').privateKey;
    const log = AuditLog.open(d, { signingKey: key, checkpointEvery: 10, syncIntervalMs: 5 });
    for (let i = 0; i < 35; i++) {
      log.append(statementEvent(i));
      if (i % 5 === 4) await log.synced();
    }
    await log.close();
    const cps = readFileSync(join(d, 'checkpoints.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    // The first group commit anchors at once, then every 10 records, then close.
    expect(cps.length).toBeGreaterThanOrEqual(4);
    expect(cps.at(-1).seq).toBe(34);
    expect(cps.at(-1).key).toBe(keyFingerprint(key));
    const report = await verifyLog(d);
    expect(report).toMatchObject({ ok: true, records: 35, checkpoints: cps.length, unanchored: 0, key: keyFingerprint(key) });
  });

  it('after a crash, cuts a torn final line and records what it cut', async () => {
    const d = dir();
    const log = AuditLog.open(d);
    for (let i = 0; i < 3; i++) log.append(statementEvent(i));
    await log.close();
    const good = statSync(join(d, 'audit.jsonl')).size;
    const tornText = '{"at":"2025-01-01T00:00:00.000Z","prev":"ab';
    appendFileSync(join(d, 'audit.jsonl'), tornText);
    const torn = await verifyLog(d);
    expect(torn.ok).toBe(false);
    expect(torn.problems[0]!.message).toContain(`line 4: incomplete final record (${tornText.length} bytes without a newline)`);

    const again = AuditLog.open(d);
    expect(again.repaired).toHaveLength(1);
    await again.close();
    const rec = JSON.parse(lines(d)[3]!);
    expect(rec).toMatchObject({ type: 'log.repaired', seq: 3, file: 'audit.jsonl', offset: good, bytes: tornText.length, reason: expect.stringMatching(/incomplete final line/) });
    expect(rec.cut_sha256).toBe(sha256Hex(tornText));
    expect((await verifyLog(d)).ok).toBe(true);
  });

  it('a final line of zeros (lost blocks after a power cut) is cut too', async () => {
    const d = dir();
    const log = AuditLog.open(d);
    log.append(statementEvent(0));
    await log.close();
    appendFileSync(join(d, 'audit.jsonl'), Buffer.concat([Buffer.alloc(300), Buffer.from('\n')]));
    const again = AuditLog.open(d);
    expect(again.repaired[0]).toMatchObject({ bytes: 301, reason: expect.stringMatching(/final line was not a record/) });
    expect(again.head.seq).toBe(1);
    await again.close();
    expect((await verifyLog(d)).ok).toBe(true);
  });

  it('one writer per directory; a dead owner\'s lock is taken over', async () => {
    const d = dir();
    const log = AuditLog.open(d);
    expect(() => AuditLog.open(d)).toThrow(AuditLockedError);
    await log.close();
    writeFileSync(join(d, 'LOCK'), '999999999\n');
    const again = AuditLog.open(d);
    await again.close();
    expect(existsSync(join(d, 'LOCK'))).toBe(false);
  });

  it('a lock naming this process\'s own pid or its parent\'s is a previous incarnation\'s (pid 1 in a container after kill -9)', async () => {
    for (const pid of [process.pid, process.ppid]) {
      const d = dir();
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'LOCK'), `${pid}\n`);
      const log = AuditLog.open(d);
      // ... but while this process holds it, a second writer here is refused.
      expect(() => AuditLog.open(d)).toThrow(AuditLockedError);
      await log.close();
      expect(existsSync(join(d, 'LOCK'))).toBe(false);
    }
  });

  it('fails closed: a record that cannot be written throws AuditWriteError, nothing is half-written', async () => {
    const d = dir();
    mkdirSync(d, { recursive: true });
    // /dev/full accepts the open and fails every write with ENOSPC.
    symlinkSync('/dev/full', join(d, 'audit.jsonl'));
    const log = AuditLog.open(d);
    let err: unknown;
    try {
      log.append(statementEvent(0));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AuditWriteError);
    expect((err as AuditWriteError).fault).toBe('ENOSPC');
    expect((err as AuditWriteError).hint).toMatch(/disk is full/);
    expect(log.head.seq).toBe(-1);
    await log.close().catch(() => {});
    const closed = AuditLog.open(dir());
    await closed.close();
    expect(() => closed.append(statementEvent(0))).toThrow(/closed/);
  });
});

describe('signing key', () => {
  it('is created once with mode 0600, reused, refused when others can read it; the public key prints and parses', () => {
    const d = dir();
    const k1 = loadOrCreateSigningKey(d);
    const file = join(d, SIGNING_KEY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(keyFingerprint(loadOrCreateSigningKey(d))).toBe(keyFingerprint(k1));
    const printed = formatPublicKey(d);
    expect(printed).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(printed).toContain(`# fingerprint ${keyFingerprint(k1)}`);
    expect(keyFingerprint(parsePublicKey(printed, 'stdout'))).toBe(keyFingerprint(k1));
    chmodSync(file, 0o644);
    expect(() => loadOrCreateSigningKey(d)).toThrow(AuditKeyError);
    expect(() => loadOrCreateSigningKey(d)).toThrow(/readable by others/);
  });

  it('a log signed with one key cannot be continued with another', async () => {
    const d = dir();
    const log = AuditLog.open(d, { signingKey: generateKeyPairSync('ed25519').privateKey });
    log.append(statementEvent(0));
    await log.close();
    expect(() => AuditLog.open(d, { signingKey: generateKeyPairSync('ed25519').privateKey })).toThrow(/signed with another key/);
    // The failed open released the lock.
    const again = AuditLog.open(d);
    await again.close();
  });
});
