// The shape cache may only merge statements whose classification cannot depend on literal values.
import { beforeAll, describe, expect, it } from 'vitest';
import { initClassifier } from '../../src/policy/classify/index.js';
import { ShapeClassifierCache, shapeKey } from '../../src/policy/shape-cache.js';

beforeAll(async () => {
  await initClassifier();
});

describe('shapeKey', () => {
  it('merges DML statements that differ only in literal values', () => {
    expect(shapeKey("SELECT * FROM t WHERE a = 1 AND b = 'x'")).toBe(shapeKey("SELECT * FROM t WHERE a = 22 AND b = 'yy'"));
    expect(shapeKey('UPDATE t SET a = 1 WHERE id = 5')).toBe(shapeKey('UPDATE t SET a = 2 WHERE id = 6'));
  });

  it('keeps what decides the classification: names, row caps, structure', () => {
    expect(shapeKey('SELECT * FROM patients LIMIT 10')).not.toBe(shapeKey('SELECT * FROM patients LIMIT 100000'));
    expect(shapeKey('SELECT * FROM patients FETCH FIRST 5 ROWS ONLY')).not.toBe(shapeKey('SELECT * FROM patients FETCH FIRST 5000 ROWS ONLY'));
    expect(shapeKey('SELECT * FROM a WHERE x = 1')).not.toBe(shapeKey('SELECT * FROM b WHERE x = 1'));
    expect(shapeKey('SELECT * FROM "T"')).not.toBe(shapeKey('SELECT * FROM "t"'));
  });

  it('refuses shapes for multi-statement strings and non-DML statements', () => {
    expect(shapeKey('SELECT 1; DROP TABLE x')).toBeUndefined();
    expect(shapeKey("CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql")).toBeUndefined();
    expect(shapeKey("DO $$ BEGIN PERFORM 1; END $$")).toBeUndefined();
    expect(shapeKey("COPY t TO '/tmp/x'")).toBeUndefined();
    expect(shapeKey('  -- only a comment')).toBeUndefined();
  });
});

describe('ShapeClassifierCache', () => {
  it('answers like the exact classifier and serves repeats from the shape', () => {
    const c = new ShapeClassifierCache();
    const a = c.classify('SELECT * FROM patients WHERE id = 1');
    const b = c.classify('SELECT * FROM patients WHERE id = 2');
    expect(b).toBe(a);
    expect(c.stats().shapeHits).toBe(1);
    expect(c.classify('SELECT * FROM patients LIMIT 10')).toMatchObject({ ok: true, statements: [{ withoutWhere: false }] });
    expect(c.classify('SELECT * FROM patients LIMIT 100000')).toMatchObject({ ok: true, statements: [{ withoutWhere: true }] });
    expect(c.classify('SELECT 1; DROP TABLE x')).toMatchObject({ ok: true, statements: [{ kind: 'select' }, { kind: 'drop' }] });
  });

  it('never caches a failure by shape', () => {
    const c = new ShapeClassifierCache();
    expect(c.classify("SELECT U&'\\zzzz' FROM t").ok).toBe(false);
    expect(c.classify("SELECT U&'\\0041' FROM t").ok).toBe(true);
  });
});

describe('shapeKey refusals', () => {
  it('keeps every number of a row cap, however it is written', () => {
    expect(shapeKey('SELECT * FROM patients LIMIT (10)')).not.toBe(shapeKey('SELECT * FROM patients LIMIT (100000)'));
    expect(shapeKey('SELECT * FROM patients LIMIT CAST(10 AS int)')).not.toBe(shapeKey('SELECT * FROM patients LIMIT CAST(99999 AS int)'));
    expect(shapeKey('SELECT * FROM patients FETCH FIRST (5) ROWS ONLY')).not.toBe(shapeKey('SELECT * FROM patients FETCH FIRST (5000) ROWS ONLY'));
  });

  it('never shapes text the parser would refuse', () => {
    for (const bad of ["SELECT 'unterminated", 'SELECT "unterminated', 'SELECT $$unterminated', 'SELECT 1 /* open', "SELECT E'a\\'", 'SELECT \uD800 1', 'SELECT 1\0']) {
      expect(shapeKey(bad), bad).toBeUndefined();
    }
    for (const good of ["SELECT 'it''s'", "SELECT E'a\\'b'", 'SELECT $t$x$t$', 'SELECT 1 /* a /* b */ c */', 'SELECT "a""b"']) {
      expect(shapeKey(good), good).toBeDefined();
    }
  });
});
