// The analysis of large statement texts off the event loop: the worker thread (AnalysisPool over the
// built analysis-worker.js) must give exactly what the inline path gives (classification, fingerprint,
// redaction, rewrite at the source, lineage) for a masked reader's large statements.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import pg from 'pg';
import { loadCatalog, type CatalogSnapshot } from '../../src/server/catalog.js';
import { initClassifier, redactLiterals } from '../../src/policy/classify/index.js';
import { ShapeClassifierCache } from '../../src/policy/shape-cache.js';
import { createSourceMasking } from '../../src/masking/source/index.js';
import { lineageOf } from '../../src/masking/lineage.js';
import type { MaskingConfig } from '../../src/masking/config.js';
import { analyzeText, classificationOf, isHeavy, type AnalysisRequest } from '../../src/server/analysis.js';
import { AnalysisPool, type SourceMaskingSpec } from '../../src/server/analysis-pool.js';

const info = inject('pg');
const target = { host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password, database: 'ehr', tls: 'disable' as const };
const WORKER = new URL('../../dist/src/server/analysis-worker.js', import.meta.url);

let admin: pg.Client;
let snap: CatalogSnapshot;
let spec: SourceMaskingSpec;
const pool = new AnalysisPool(undefined, WORKER);

beforeAll(async () => {
  await initClassifier();
  admin = new pg.Client({ ...target, ssl: false });
  await admin.connect();
  await admin.query(`DROP VIEW IF EXISTS an_v; DROP TABLE IF EXISTS an_patients, an_visits;
    CREATE TABLE an_patients (id int PRIMARY KEY, ssn text, full_name text, city text);
    CREATE TABLE an_visits (id int, patient_id int, note text);
    CREATE VIEW an_v AS SELECT id, full_name AS who FROM an_patients;`);
  snap = await loadCatalog(target);
  const config: MaskingConfig = {
    columns: [
      { table: 'an_patients', column: 'ssn', strategy: 'partial', keepFirst: 0, keepLast: 4, placeholder: '***' },
      { table: 'an_patients', column: 'full_name', strategy: 'tokenize', keepFirst: 0, keepLast: 0, placeholder: '***' },
    ],
    detectors: [],
    unmaskedGroups: [],
  };
  spec = { config, tokenKey: Buffer.alloc(32, 7), allowed: [] };
});
afterAll(async () => {
  await pool.close();
  await admin?.query('DROP VIEW IF EXISTS an_v; DROP TABLE IF EXISTS an_patients, an_visits').catch(() => undefined);
  await admin?.end();
});

/** A statement of about `bytes` bytes over the masked table. */
function bigSelect(bytes: number): string {
  const ids: number[] = [];
  for (let i = 0, len = 0; len < bytes; i++, len += String(i).length + 2) ids.push(i);
  return `SELECT p.id, p.ssn, upper(p.full_name) AS n, v.note FROM an_patients p JOIN an_visits v ON v.patient_id = p.id WHERE p.id IN (${ids.join(', ')}) AND p.ssn <> '123-45-6789'`;
}

/** What the session computes inline for the same text. */
function inline(req: AnalysisRequest) {
  const c = new ShapeClassifierCache().classify(req.sql);
  const masking = createSourceMasking(spec.config, spec.tokenKey, new Set(spec.allowed)).masking;
  return {
    classification: c.ok ? { ok: true, statements: c.statements, fingerprint: c.fingerprint } : c,
    redacted: redactLiterals(req.sql),
    rewrite: req.rewrite ? masking.rewrite(req.sql, snap, req.rewrite) : undefined,
    lineage: req.lineage ? lineageOf(req.sql, snap) : undefined,
  };
}

describe('analysis off the event loop', () => {
  it('sends large texts and many-statement texts to the worker, short ones not', () => {
    expect(isHeavy('select 1')).toBe(false);
    expect(isHeavy(`select '${'x'.repeat(100)}'`)).toBe(false);
    expect(isHeavy('select 1;'.repeat(63))).toBe(false);
    expect(isHeavy('select 1;'.repeat(64))).toBe(true);
    expect(isHeavy(bigSelect(9000))).toBe(true);
  });

  const cases: [string, () => string][] = [
    ['a 200 KiB masked SELECT', () => bigSelect(200 * 1024)],
    ['a view over masked data, 64 KiB', () => bigSelect(64 * 1024).replace('FROM an_patients p JOIN an_visits v ON v.patient_id = p.id', 'FROM an_v p JOIN an_visits v ON v.patient_id = p.id').replace(/p\.ssn/g, 'p.who').replace('upper(p.full_name)', 'p.who')],
    ['300 statements in one text', () => Array.from({ length: 300 }, (_, i) => `SELECT ssn FROM an_patients WHERE id = ${i}`).join(';\n')],
    ['a text the parser refuses', () => `${bigSelect(20 * 1024)} WHERE WHERE`],
    ['a write the rewrite refuses', () => `UPDATE an_patients SET city = 'x' WHERE ssn IN (${Array.from({ length: 3000 }, (_, i) => `'${i}'`).join(',')})`],
  ];
  for (const [name, make] of cases) {
    it(`gives the inline results through the worker thread: ${name}`, async () => {
      const sql = make();
      for (const rewrite of [{ allowUnknown: false, plainOutputs: true }, { allowUnknown: true, plainOutputs: false }]) {
        const req: AnalysisRequest = { sql, rewrite, lineage: true };
        const want = inline(req);
        const got = await pool.analyze(req, { spec, snapshot: snap });
        expect(got.classification).toEqual(want.classification);
        expect(got.redacted).toBe(want.redacted);
        expect(got.rewrite).toEqual(want.rewrite);
        expect(got.lineage).toEqual(want.lineage);
        // The pure pipeline inline is the same function.
        expect(analyzeText(req, { masking: createSourceMasking(spec.config, spec.tokenKey, new Set()).masking, snapshot: snap })).toEqual(got);
        // The gate reads a Classification like the classifier's own.
        const c = classificationOf(got.classification, sql);
        const own = new ShapeClassifierCache().classify(sql);
        expect(c.ok).toBe(own.ok);
        if (c.ok && own.ok) {
          expect(c.statements).toEqual(own.statements);
          expect(c.fingerprint).toBe(own.fingerprint);
          expect(c.normalized).toBe(own.normalized);
        }
      }
      const rw = inline({ sql, rewrite: { allowUnknown: false, plainOutputs: true } }).rewrite;
      if (name.includes('masked SELECT')) expect(rw?.kind).toBe('rewritten');
    });
  }

  it('answers jobs in order and survives a new catalog snapshot', async () => {
    const texts = [bigSelect(10 * 1024), bigSelect(30 * 1024), bigSelect(20 * 1024)];
    const results = await Promise.all(texts.map((sql) => pool.analyze({ sql }, {})));
    results.forEach((r, i) => expect(r.redacted).toBe(redactLiterals(texts[i]!)));
    await admin.query('ALTER TABLE an_visits ADD COLUMN IF NOT EXISTS extra text');
    const newer = await loadCatalog(target);
    const sql = 'SELECT * FROM an_visits v JOIN an_patients p ON p.id = v.patient_id';
    const got = await pool.analyze({ sql, rewrite: { allowUnknown: false, plainOutputs: true }, lineage: true }, { spec, snapshot: newer });
    expect(got.lineage![0]!.outputs!.map((o) => o.name)).toContain('extra');
  });
});
