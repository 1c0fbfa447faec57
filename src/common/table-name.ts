// Table-name keys: the one place that says when two table names are the same table.
//
// Two questions are asked of names, and they differ on purpose:
// - `tableKey`: is this the same relation? For names as the SQL parser gives them (quotes removed,
//   unquoted names already folded to lower case by PostgreSQL's rules). Exact: case is kept, and an
//   unqualified name is a different key from any qualified one (policy and masking decide per
//   relation, and must not merge `Patients` with `patients` or `a.b` quoted with schema a, table b).
// - `tableFilterKey`: did a person mean this table? For names typed in a filter or recorded as text
//   (`phigate audit search --table public.Patients`): lower case, quotes dropped, schema dropped,
//   so `public.Patients`, `"patients"` and `patients` look alike.

/** The key of a relation as parsed (schema optional); injective: PostgreSQL names never hold NUL. */
export function tableKey(schema: string | undefined, name: string): string {
  return schema === undefined ? name : `${schema}\u0000${name}`;
}

/** Unqualified, lower-case table name: `public.Patients` and `patients` filter alike. */
export function tableFilterKey(name: string): string {
  const lower = name.toLowerCase().replaceAll('"', '');
  const dot = lower.lastIndexOf('.');
  return dot === -1 ? lower : lower.slice(dot + 1);
}
