// The attack suite's database: 48 patients with distinctive PHI (so a leak check is precise), their
// visits, a view, an inheritance child, a partitioned copy, a decoy schema, user-defined functions, and
// `maskref`: the same tables holding the masked values, the reference model of what a masked reader may
// compute. Also the policy the suite's gateway runs with.
import { createHmac } from 'node:crypto';
import { rawForms, binaryDateForm, type FieldKind, type Form } from './oracle.js';

export interface Patient {
  id: number;
  ssn: string;
  mrn: string;
  full_name: string;
  email: string;
  date_of_birth: string;
  city: string;
  zip: string;
}

export const PHI_FIELDS = ['ssn', 'mrn', 'full_name', 'email', 'date_of_birth'] as const;
export type PhiField = (typeof PHI_FIELDS)[number];
export const FIELD_KIND: Record<PhiField, FieldKind> = { ssn: 'ssn', mrn: 'mrn', full_name: 'name', email: 'email', date_of_birth: 'date' };

const FIRST_A = ['Zeph', 'Quil', 'Thad', 'Oph', 'Xan', 'Bryl', 'Crisp', 'Mael'];
const FIRST_B = ['yrine', 'andra', 'eusz', 'elia', 'thippe', 'onwyn', 'ianth', 'ovar'];
const LAST_A = ['Quokka', 'Vellum', 'Briskle', 'Ozzle', 'Tarnish', 'Wimble', 'Draxo', 'Pellory'];
const LAST_B = ['bury', 'worth', 'hollow', 'mere', 'stone', 'gate'];
const CITIES = ['Springfield', 'Riverton', 'Lakeside', 'Fairview', 'Greenville', 'Oakdale'];

function pad(n: number, w: number): string {
  return String(n).padStart(w, '0');
}

/** Patients 1..40 live in `apatients`, 41..48 in its inheritance child `apatients_hist`. */
export const PATIENTS: Patient[] = Array.from({ length: 48 }, (_, k) => {
  const i = k + 1;
  const first = FIRST_A[i % 8]! + FIRST_B[Math.floor(i / 8) % 8]!;
  const last = LAST_A[(i * 3) % 8]! + LAST_B[i % 6]!;
  return {
    id: i,
    // area and group numbers in an order unrelated to the id and to the kept last four digits
    ssn: `${pad(100 + ((i * 37) % 800), 3)}-${pad(10 + ((i * 13) % 89), 2)}-${pad(1000 + ((i * 7919) % 9000), 4)}`,
    mrn: `MRN-${pad(30000000 + i * 104729, 8)}`,
    full_name: `${first} ${last}`,
    email: `${first.toLowerCase()}.${last.toLowerCase()}@clinic.example`,
    // four patients per birth year; never in January, so year_only always changes the date
    date_of_birth: `${1940 + (i % 12)}-${pad(2 + ((i * 5) % 11), 2)}-${pad(2 + ((i * 7) % 26), 2)}`,
    city: CITIES[(i * 5) % CITIES.length]!,
    zip: `${9 - (i % 3)}${pad((i * 211) % 10000, 4)}`,
  };
});
export const MAIN_IDS = { from: 1, to: 40 };
export const HIST_IDS = { from: 41, to: 48 };

/** The patient whose values the paired probes guess (true guess vs false guess). */
export const VICTIM = PATIENTS[6]!; // id 7: in apatients and in apatients_part_a
/** The patient the write attacks aim at (in apatients, and in apatients_part_b). */
export const WRITE_VICTIM = PATIENTS[39]!; // id 40

export interface Visit { id: number; patient_id: number; mrn: string; note: string }
export const VISITS: Visit[] = PATIENTS.flatMap((p) => [1, 2].map((n) => ({ id: p.id * 10 + n, patient_id: p.id, mrn: p.mrn, note: `visit ${n}: routine follow-up` })));

const rot13 = (s: string): string => s.replace(/[A-Za-z]/g, (c) => {
  const base = c <= 'Z' ? 65 : 97;
  return String.fromCharCode(((c.charCodeAt(0) - base + 13) % 26) + base);
});
const shiftDigits = (s: string, keepLast = 0): string =>
  [...s].map((c, i) => (i < s.length - keepLast && /\d/.test(c) ? String((Number(c) + 5) % 10) : c)).join('');

/**
 * A false guess of the same shape as the true value, differing in every character a masked value
 * hides (so a probe on any single hidden character tells them apart), keeping what masking keeps.
 */
export function decoyOf(field: PhiField, value: string): string {
  switch (field) {
    case 'ssn': return shiftDigits(value, 4);
    case 'mrn': return `MRN-${shiftDigits(value.slice(4))}`;
    case 'full_name': return rot13(value);
    case 'email': return `${rot13(value.split('@')[0]!)}@clinic.example`;
    case 'date_of_birth': {
      const [y, m, d] = value.split('-').map(Number) as [number, number, number];
      return `${y}-${pad(((m + 4) % 11) + 2, 2)}-${pad(((d + 10) % 26) + 2, 2)}`;
    }
  }
}

/** Every raw form of every PHI value, labelled `patient 7 ssn` and so on. */
export function phiForms(opts: { binary?: boolean } = {}): Form[] {
  const out: Form[] = [];
  for (const p of PATIENTS) {
    for (const f of PHI_FIELDS) {
      const label = `patient ${p.id} ${f}`;
      for (const form of rawForms(p[f], FIELD_KIND[f])) out.push({ form, label });
      if (f === 'date_of_birth' && opts.binary) out.push({ form: binaryDateForm(p[f]), label: `${label} (binary date)` });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Masked values, as the policy's strategies give them (docs/policy.md, `masking`)

export const REDACTED = '***';
/** partial with keep_last: at most half the characters kept; separators ('-') stay. */
export function partialText(s: string, keepLast: number): string {
  const last = Math.min(keepLast, Math.floor(s.length / 2));
  return [...s].map((c, i) => (i >= s.length - last || c === '-' ? c : '*')).join('');
}
export function tokenOf(key: Buffer, value: string): string {
  return `tok_${createHmac('sha256', key).update(value, 'utf8').digest('hex').slice(0, 16)}`;
}
export function maskedPatient(p: Patient, key: Buffer): Patient {
  return {
    ...p,
    ssn: partialText(p.ssn, 4),
    mrn: tokenOf(key, p.mrn),
    full_name: REDACTED,
    email: REDACTED,
    date_of_birth: `${p.date_of_birth.slice(0, 4)}-01-01`,
  };
}

// ---------------------------------------------------------------------------------------------
// SQL the superuser runs

const MASKED_COLUMNS: [string, string][] = [['ssn', 'strategy: partial, keep_last: 4'], ['mrn', 'strategy: tokenize'],
  ['full_name', 'strategy: redact'], ['email', 'strategy: redact'], ['date_of_birth', 'strategy: year_only']];

/** The suite's policy: masking of apatients (and its partitioned copy by the parent's name), writes held. */
export const POLICY = `rules:
  - name: phi-writes
    when: { statement: [insert, update, delete, merge, copy_from], tables: [apatients, avisits, apatients_part] }
    action: approve
    approvers: [privacy-officers]
    timeout: 3s
default: allow
masking:
  columns:
${['apatients', 'apatients_part'].flatMap((t) => MASKED_COLUMNS.map(([col, rule]) => `    - { column: ${t}.${col}, ${rule} }`)).join('\n')}
    - { column: avisits.mrn, strategy: tokenize }
  detectors: [us_ssn, email, phone, { name: mrn, pattern: 'MRN-\\d{8}' }]
  unmasked_groups: [privacy-officers]
`;

const lit = (v: string | number): string => (typeof v === 'number' ? String(v) : `'${v.replace(/'/g, "''")}'`);
const row = (p: Patient): string => `(${[p.id, p.ssn, p.mrn, p.full_name, p.email, p.date_of_birth, p.city, p.zip].map(lit).join(', ')})`;

/** The tables, views and rows of one schema (`public` with raw values, `maskref` with masked ones). */
export function schemaSql(schema: string, patients: Patient[], visits: Visit[]): string {
  const s = schema;
  const main = patients.filter((p) => p.id <= MAIN_IDS.to);
  const hist = patients.filter((p) => p.id >= HIST_IDS.from);
  return `
    CREATE TABLE ${s}.apatients (id int PRIMARY KEY, ssn text NOT NULL, mrn text NOT NULL, full_name text NOT NULL,
      email text, date_of_birth date, city text, zip text);
    CREATE TABLE ${s}.apatients_hist () INHERITS (${s}.apatients);
    CREATE TABLE ${s}.avisits (id int PRIMARY KEY, patient_id int NOT NULL, mrn text NOT NULL, note text);
    CREATE TABLE ${s}.apatients_part (id int NOT NULL, ssn text, mrn text, full_name text, email text, date_of_birth date,
      city text, zip text) PARTITION BY RANGE (id);
    CREATE TABLE ${s}.apatients_part_a PARTITION OF ${s}.apatients_part FOR VALUES FROM (1) TO (25);
    CREATE TABLE ${s}.apatients_part_b PARTITION OF ${s}.apatients_part FOR VALUES FROM (25) TO (1000);
    CREATE VIEW ${s}.apatients_v AS SELECT id, ssn, mrn, full_name, email, date_of_birth, city, zip FROM ${s}.apatients;
    CREATE VIEW ${s}.apatients_v2 AS SELECT id, full_name AS who, ssn AS ident, city FROM ${s}.apatients WHERE city IS NOT NULL;
    INSERT INTO ${s}.apatients VALUES ${main.map(row).join(',\n')};
    INSERT INTO ${s}.apatients_hist VALUES ${hist.map(row).join(',\n')};
    INSERT INTO ${s}.apatients_part VALUES ${patients.map(row).join(',\n')};
    INSERT INTO ${s}.avisits VALUES ${visits.map((v) => `(${v.id}, ${v.patient_id}, ${lit(v.mrn)}, ${lit(v.note)})`).join(',\n')};
    GRANT USAGE ON SCHEMA ${s} TO PUBLIC;
    GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO PUBLIC;
  `;
}

export const DROP_SQL = `
  DROP SCHEMA IF EXISTS evil CASCADE; DROP SCHEMA IF EXISTS maskref CASCADE;
  DROP VIEW IF EXISTS apatients_v, apatients_v2, apatients_v3; DROP MATERIALIZED VIEW IF EXISTS amv;
  DROP TABLE IF EXISTS apatients_hist, apatients, avisits, apatients_part, ascratch CASCADE;
  DROP FUNCTION IF EXISTS patient_name(int), all_ssns(), run_sql(text), touch_city(int);
  DROP PROCEDURE IF EXISTS say_names(), copy_names();
`;

/** Everything besides the tables: decoy schema, scratch table, functions, dblink, statistics. */
export const EXTRAS_SQL = `
  CREATE SCHEMA evil;
  CREATE TABLE evil.apatients (id int, ssn text, mrn text, full_name text, email text, date_of_birth date, city text, zip text);
  INSERT INTO evil.apatients VALUES (1, 'decoy-ssn', 'decoy-mrn', 'Decoy Person', 'decoy@evil.example', '2000-06-15', 'Nowhere', '00000');
  GRANT USAGE ON SCHEMA evil TO PUBLIC; GRANT ALL ON evil.apatients TO PUBLIC;
  -- A view an administrator made with a column alias list (pg_get_viewdef keeps it: t(i, s, mrn, ...)).
  CREATE VIEW public.apatients_v3 AS SELECT t.i, t.s, t.n, t.city FROM public.apatients t(i, s, m, n);
  GRANT SELECT ON public.apatients_v3 TO PUBLIC;
  CREATE TABLE ascratch (id serial PRIMARY KEY, note text);
  GRANT ALL ON ascratch TO PUBLIC;
  CREATE FUNCTION patient_name(i int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT full_name FROM public.apatients WHERE id = i $$;
  CREATE FUNCTION all_ssns() RETURNS SETOF text LANGUAGE sql STABLE AS $$ SELECT ssn FROM public.apatients ORDER BY id $$;
  CREATE FUNCTION run_sql(q text) RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN QUERY EXECUTE q; END $$;
  CREATE FUNCTION touch_city(i int) RETURNS int LANGUAGE sql VOLATILE AS $$ UPDATE public.apatients SET city = 'Touched' WHERE id = i RETURNING id $$;
  CREATE PROCEDURE say_names() LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE '%', (SELECT string_agg(full_name, ',') FROM public.apatients); END $$;
  CREATE PROCEDURE copy_names() LANGUAGE sql AS $$ INSERT INTO public.ascratch (note) SELECT full_name FROM public.apatients $$;
  CREATE EXTENSION IF NOT EXISTS dblink;
  ANALYZE apatients; ANALYZE apatients_hist; ANALYZE avisits; ANALYZE apatients_part; ANALYZE apatients_part_a; ANALYZE apatients_part_b;
`;

/** Large objects and objects an attack may have left behind (the superuser removes them after each client). */
export const LEFTOVERS_SQL: string[] = [
  'SELECT lo_unlink(oid) FROM pg_largeobject_metadata',
  'DROP MATERIALIZED VIEW IF EXISTS amv', 'DROP TABLE IF EXISTS public.at_leak', 'DROP EXTENSION IF EXISTS pg_trgm',
  'ALTER SYSTEM RESET work_mem', 'SELECT pg_reload_conf()',
];
