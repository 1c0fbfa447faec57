// The demo's synthetic EHR: patients, visits and prescriptions generated deterministically inside
// PostgreSQL (same rows on every run, no real person's data). Identifiers look real enough for PHI
// detectors (SSN-shaped, MRN-nnnnnnnn, emails, phone numbers) but are derived from row numbers.

export const DEMO_PATIENTS = 10_000;

export function ehrSchemaAndData(patients = DEMO_PATIENTS): string {
  return `
CREATE TABLE patients (
  id            integer PRIMARY KEY,
  mrn           text NOT NULL UNIQUE,
  full_name     text NOT NULL,
  ssn           text NOT NULL,
  date_of_birth date NOT NULL,
  email         text NOT NULL,
  phone         text NOT NULL,
  city          text NOT NULL,
  state         text NOT NULL
);
CREATE TABLE visits (
  id          integer PRIMARY KEY,
  patient_id  integer NOT NULL REFERENCES patients(id),
  visit_date  date NOT NULL,
  department  text NOT NULL,
  reason      text NOT NULL
);
CREATE TABLE prescriptions (
  id          integer PRIMARY KEY,
  patient_id  integer NOT NULL REFERENCES patients(id),
  drug        text NOT NULL,
  dose_mg     integer NOT NULL,
  prescribed  date NOT NULL
);

INSERT INTO patients
SELECT g,
       'MRN-' || lpad((10000000 + g * 7919 % 89999999)::text, 8, '0'),
       (ARRAY['Ada','Ben','Cora','Dev','Elena','Farid','Grace','Hugo','Iris','Jonas','Kemi','Luis','Mara','Noor','Omar','Priya'])[1 + g % 16]
         || ' ' ||
       (ARRAY['Adams','Baker','Chen','Diaz','Evans','Fischer','Garcia','Haddad','Ito','Jensen','Khan','Lopez','Mensah','Novak','Okafor','Patel','Quinn','Rossi'])[1 + (g * 7) % 18],
       lpad((100 + g % 565)::text, 3, '0') || '-' || lpad((10 + g % 89)::text, 2, '0') || '-' || lpad((1000 + (g * 37) % 8999)::text, 4, '0'),
       date '1940-01-01' + ((g * 2654435761::bigint) % 29000)::int,
       'patient' || g || '@example.org',
       '(555) ' || lpad((200 + g % 799)::text, 3, '0') || '-' || lpad(((g * 13) % 10000)::text, 4, '0'),
       (ARRAY['Springfield','Riverton','Lakeside','Fairview','Georgetown','Ashland'])[1 + g % 6],
       (ARRAY['IL','OR','MN','TX','MA','OH'])[1 + g % 6]
FROM generate_series(1, ${patients}) AS g;

INSERT INTO visits
SELECT v, 1 + (v * 31) % ${patients},
       date '2024-01-01' + (v * 17) % 700,
       (ARRAY['cardiology','oncology','primary care','emergency','pediatrics','orthopedics'])[1 + v % 6],
       (ARRAY['annual check-up','follow-up','chest pain','fracture','vaccination','lab review'])[1 + (v * 3) % 6]
FROM generate_series(1, ${patients * 3}) AS v;

INSERT INTO prescriptions
SELECT r, 1 + (r * 53) % ${patients},
       (ARRAY['atorvastatin','metformin','lisinopril','amoxicillin','sertraline','albuterol'])[1 + r % 6],
       (ARRAY[10, 20, 40, 250, 500, 5])[1 + (r * 5) % 6],
       date '2024-01-01' + (r * 11) % 700
FROM generate_series(1, ${patients * 2}) AS r;

ANALYZE;
`;
}
