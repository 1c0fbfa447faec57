// The masking: policy section: the SPEC example, column names, and errors that name line and key; plus rule lookup and custom-pattern vetting.
import { describe, expect, it } from 'vitest';
import { LineCounter, parseDocument, type Node } from 'yaml';
import { Reader } from '../../src/policy/yaml-reader.js';
import { PolicyFileError } from '../../src/policy/errors.js';
import {
  EMPTY_MASKING, MAX_ATTEMPT_COST, UnsafePatternError, isUnmaskedReader, maskedColumnKeys, parseColumnName, parseMasking,
  ruleFor, tableHasRules, vetPattern, type MaskingConfig,
} from '../../src/masking/index.js';

function parse(text: string): MaskingConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const r = new Reader('p.yaml', lines);
  const top = r.map(doc.contents as Node, '', new Set());
  return parseMasking(r, top.get('masking'));
}

function errorOf(text: string): PolicyFileError {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof PolicyFileError) return err;
    throw err;
  }
  throw new Error('expected a PolicyFileError');
}

const SPEC = `masking:
  columns:
    - { column: patients.ssn, strategy: partial, keep_last: 4 }
    - { column: patients.mrn, strategy: tokenize }
    - { column: patients.full_name, strategy: redact }
    - { column: patients.date_of_birth, strategy: year_only }
  detectors: [us_ssn, email, phone, { name: mrn, pattern: 'MRN-\\d{8}' }]
  unmasked_groups: []
`;

describe('masking section', () => {
  it('parses the SPEC example', () => {
    const c = parse(SPEC);
    expect(c.columns).toEqual([
      { table: 'patients', column: 'ssn', strategy: 'partial', keepFirst: 0, keepLast: 4, placeholder: '***' },
      { table: 'patients', column: 'mrn', strategy: 'tokenize', keepFirst: 0, keepLast: 0, placeholder: '***' },
      { table: 'patients', column: 'full_name', strategy: 'redact', keepFirst: 0, keepLast: 0, placeholder: '***' },
      { table: 'patients', column: 'date_of_birth', strategy: 'year_only', keepFirst: 0, keepLast: 0, placeholder: '***' },
    ]);
    expect(c.detectors.map((d) => d.name)).toEqual(['us_ssn', 'email', 'phone', 'mrn']);
    const mrn = c.detectors[3];
    expect(mrn?.kind === 'custom' && mrn.regex.source).toBe('MRN-\\d{8}');
    expect(c.unmaskedGroups).toEqual([]);
  });

  it('reads schema-qualified and quoted names, placeholders, every strategy and unmasked groups', () => {
    const c = parse(`masking:
  columns:
    - { column: ehr.patients.ssn, strategy: "null" }
    - { column: '"Patients"."SSN"', strategy: redact, placeholder: '[hidden]' }
    - { column: Visits.Note, strategy: partial, keep_first: 2, keep_last: 2 }
  unmasked_groups: [privacy-officers]
`);
    expect(c.columns.map((r) => [r.schema, r.table, r.column, r.strategy])).toEqual([
      ['ehr', 'patients', 'ssn', 'null'],
      [undefined, 'Patients', 'SSN', 'redact'],
      [undefined, 'visits', 'note', 'partial'],
    ]);
    expect(c.columns[1]?.placeholder).toBe('[hidden]');
    expect(c.detectors).toEqual([]);
    expect(isUnmaskedReader(c, ['engineering', 'privacy-officers'])).toBe(true);
    expect(isUnmaskedReader(c, ['engineering'])).toBe(false);
  });

  it('treats an absent or empty section as no masking', () => {
    expect(parse('version: 1\n')).toBe(EMPTY_MASKING);
    expect(parse('masking:\n')).toBe(EMPTY_MASKING);
    expect(parse('masking: {}\n')).toEqual({ columns: [], detectors: [], unmaskedGroups: [] });
  });

  it.each([
    ['a bad strategy', '    - { column: patients.ssn, strategy: scramble }\n', 3, 'masking.columns[0].strategy', /expected one of redact, partial, tokenize, year_only, null/],
    ['partial without keep_*', '    - { column: patients.ssn, strategy: partial }\n', 3, 'masking.columns[0].strategy', /partial needs keep_first or keep_last/],
    ['keep_last on redact', '    - { column: patients.ssn, strategy: redact, keep_last: 4 }\n', 3, 'masking.columns[0].keep_last', /only the partial strategy/],
    ['a negative keep_first', '    - { column: patients.ssn, strategy: partial, keep_first: -1 }\n', 3, 'masking.columns[0].keep_first', /whole number/],
    ['a placeholder on tokenize', '    - { column: patients.mrn, strategy: tokenize, placeholder: x }\n', 3, 'masking.columns[0].placeholder', /only the redact strategy/],
    ['a column without a table', '    - { column: ssn, strategy: redact }\n', 3, 'masking.columns[0].column', /not a column name/],
    ['a missing strategy', '    - { column: patients.ssn }\n', 3, 'masking.columns[0].strategy', /missing/],
    ['an unknown key', '    - { column: patients.ssn, strategy: redact, mode: x }\n', 3, 'masking.columns[0].mode', /unknown key/],
  ])('rejects %s with line and key', (_what, item, line, key, problem) => {
    const err = errorOf(`masking:\n  columns:\n${item}`);
    expect(err.line).toBe(line);
    expect(err.key).toBe(key);
    expect(err.problem).toMatch(problem);
    expect(err.message).toContain(`p.yaml:${line}:`);
  });

  it('rejects a duplicate column, naming where the first one is', () => {
    const err = errorOf(`masking:
  columns:
    - { column: patients.ssn, strategy: redact }
    - { column: patients.mrn, strategy: tokenize }
    - { column: Patients.SSN, strategy: partial, keep_last: 4 }
`);
    expect(err.line).toBe(5);
    expect(err.key).toBe('masking.columns[2].column');
    expect(err.problem).toMatch(/duplicate masking rule for Patients\.SSN \(first at line 3\)/);
  });

  it.each([
    ['an unknown detector', '[us_ssn, passport]', 2, 'masking.detectors[1]', /unknown detector "passport"/],
    ['a duplicate detector', '[email, email]', 2, 'masking.detectors[1]', /duplicate detector "email"/],
    ['an invalid regex', "[{ name: mrn, pattern: 'MRN-(\\d{8}' }]", 2, 'masking.detectors[0].pattern', /not a valid regular expression/],
    ['a nested quantifier', "[{ name: bad, pattern: '(a+)+b' }]", 2, 'masking.detectors[0].pattern', /nested quantifier/],
    ['a backreference', "[{ name: bad, pattern: '(a)\\1' }]", 2, 'masking.detectors[0].pattern', /backreferences/],
    ['a pattern matching the empty string', "[{ name: bad, pattern: 'x*' }]", 2, 'masking.detectors[0].pattern', /empty string/],
    ['a built-in name for a custom detector', "[{ name: email, pattern: 'x' }]", 2, 'masking.detectors[0].name', /built-in detector/],
    ['an invalid custom name', "[{ name: My-Det, pattern: 'x' }]", 2, 'masking.detectors[0].name', /lower-case letters/],
    ['a custom detector without a pattern', '[{ name: mrn }]', 2, 'masking.detectors[0].pattern', /needs a name and a pattern/],
  ])('rejects %s in detectors', (_what, list, line, key, problem) => {
    const err = errorOf(`masking:\n  detectors: ${list}\n`);
    expect(err.line).toBe(line);
    expect(err.key).toBe(key);
    expect(err.problem).toMatch(problem);
  });

  it('parses column names as PostgreSQL folds them', () => {
    expect(parseColumnName('patients.ssn')).toEqual({ table: 'patients', column: 'ssn' });
    expect(parseColumnName('EHR.Patients.SSN')).toEqual({ schema: 'ehr', table: 'patients', column: 'ssn' });
    expect(parseColumnName('"My ""T"".x".col')).toEqual({ table: 'My "T".x', column: 'col' });
    for (const bad of ['ssn', 'a.b.c.d', 'a..b', 'a.', '.a', '1a.b', 'a b.c']) expect(parseColumnName(bad)).toBeUndefined();
  });
});

describe('rule lookup', () => {
  const c = parse(`masking:
  columns:
    - { column: patients.ssn, strategy: partial, keep_last: 4 }
    - { column: billing.patients.ssn, strategy: redact }
    - { column: archive.visits.note, strategy: "null" }
`);

  it('matches unqualified rules in any schema and prefers the schema-qualified rule', () => {
    expect(ruleFor(c, { schema: 'public', table: 'patients', column: 'ssn' })?.strategy).toBe('partial');
    expect(ruleFor(c, { schema: 'billing', table: 'patients', column: 'ssn' })?.strategy).toBe('redact');
    expect(ruleFor(c, { table: 'patients', column: 'ssn' })?.strategy).toBe('partial');
    expect(ruleFor(c, { schema: 'public', table: 'patients', column: 'id' })).toBeUndefined();
  });

  it('lets a source of unknown schema match a schema-qualified rule (masks more, never less)', () => {
    expect(ruleFor(c, { table: 'visits', column: 'note' })?.strategy).toBe('null');
    expect(ruleFor(c, { schema: 'public', table: 'visits', column: 'note' })).toBeUndefined();
    expect(tableHasRules(c, { name: 'visits' })).toBe(true);
    expect(tableHasRules(c, { schema: 'public', name: 'visits' })).toBe(false);
  });

  it('lists table.column keys for predicates_on_masked', () => {
    expect([...maskedColumnKeys(c)].sort()).toEqual(['patients.ssn', 'visits.note']);
  });
});

describe('custom pattern vetting', () => {
  it('accepts bounded patterns and caps unbounded repetition', () => {
    expect(vetPattern('MRN-\\d{8}').source).toBe('MRN-\\d{8}');
    expect(vetPattern('[A-Z]+-\\d+').source).toBe('[A-Z]{1,64}-\\d{1,64}');
    expect(vetPattern('(?:ACCT|ACC)#?\\d{6,}').source).toBe('(?:ACCT|ACC)#?\\d{6,64}');
    expect(vetPattern('\\w+@\\w+\\.\\w+').cost).toBeLessThanOrEqual(MAX_ATTEMPT_COST);
    expect(vetPattern('(?<![0-9])\\d{3}[.]\\d{3}(?![0-9])').source).toBe('(?<![0-9])\\d{3}[.]\\d{3}(?![0-9])');
    expect(vetPattern('(?:ab){2,}x').source).toBe('(?:ab){2,64}x');
    expect(vetPattern('a{2}b{,3}').source).toBe('a{2}b{,3}');
    expect(vetPattern('(?:x\\d{2})+').source).toBe('(?:x\\d{2}){1,64}');
  });

  it.each([
    ['(a+)+$', /nested quantifier/],
    ['(\\w+\\s?)+@', /nested quantifier/],
    ['(a|aa)*b', /nested quantifier/],
    ['(?:x\\d{1,2})+', /nested quantifier/],
    ['\\d*\\d*\\d*x', /backtrack too much/],
    ['.*.*=.*', /backtrack too much/],
    ['(a)\\1', /backreferences/],
    ['(?<n>a)\\k<n>', /backreferences/],
    ['caf\u00e9', /printable ASCII/],
    ['\\p{L}', /not supported|not a valid/],
    ['(?=a)*b', /assertion/],
    ['a|', /empty string/],
    ['[z-a]', /not a valid regular expression/],
    ['', /empty/],
  ])('rejects %s', (pattern, problem) => {
    let err: unknown;
    try {
      vetPattern(pattern);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsafePatternError);
    expect((err as Error).message).toMatch(problem);
  });

  it('keeps the worst case of accepted patterns small on hostile input', () => {
    const inputs = ['a'.repeat(100_000) + '!', '1'.repeat(100_000), 'ab'.repeat(50_000)];
    for (const p of ['\\w+@\\w+\\.\\w+', '[A-Za-z0-9]+-[A-Za-z0-9]+', '\\d{1,16}\\d{1,16}x', '(?:ab){2,}x', 'x\\d+', '[a-z0-9]{1,15}[a-z0-9]{1,15}!?z']) {
      const vetted = vetPattern(p);
      expect(vetted.cost).toBeLessThanOrEqual(MAX_ATTEMPT_COST);
      const re = new RegExp(vetted.source, 'g');
      const start = performance.now();
      for (const input of inputs) input.replace(re, '<x>');
      // About 100k characters x at most 256 steps each: well under a second on an idle machine; the
      // bound is loose because the test machine is shared (catastrophic backtracking would take hours).
      expect(performance.now() - start, p).toBeLessThan(5000);
    }
  });
});
