// Lists the built-in functions and catalog relations of a server that phigate has not reviewed for readers who see masked values.
//
//   node dist/scripts/function-allowlist.js postgres://user:password@host:5432/db
//
// After a PostgreSQL major upgrade, new pg_catalog functions are in neither list of
// src/masking/source/allowed-functions.ts and new catalog relations are missing from
// catalog-relations.ts: masked readers are refused them until someone reviews them and adds each to
// the allowed or denied side. Exit status 0 when everything is reviewed, 1 when something is not.
import pg from 'pg';
import { ALLOWED_FUNCTIONS, DENIED_FUNCTIONS } from '../src/masking/source/allowed-functions.js';
import { CATALOG_RELATIONS } from '../src/masking/source/catalog-relations.js';

const FUNCTIONS_SQL = `
  SELECT DISTINCT p.proname AS name,
         string_agg(DISTINCT pg_get_function_identity_arguments(p.oid) || ' -> ' || format_type(p.prorettype, NULL), ' | ') AS signatures
    FROM pg_proc p
   WHERE p.pronamespace = 'pg_catalog'::regnamespace
   GROUP BY p.proname
   ORDER BY p.proname`;

const RELATIONS_SQL = `
  SELECT n.nspname AS schema, c.relname AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname IN ('pg_catalog', 'information_schema') AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
   ORDER BY 1, 2`;

async function main(): Promise<number> {
  const url = process.argv[2];
  if (url === undefined || url === '--help' || url === '-h') {
    process.stderr.write('usage: function-allowlist <postgres URL>\n');
    return 2;
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const version = await client.query<{ server_version: string }>('SHOW server_version');
    const functions = await client.query<{ name: string; signatures: string }>(FUNCTIONS_SQL);
    const relations = await client.query<{ schema: string; name: string }>(RELATIONS_SQL);
    const unreviewed = functions.rows.filter((r) => !ALLOWED_FUNCTIONS.has(r.name) && !DENIED_FUNCTIONS.has(r.name));
    const present = new Set(functions.rows.map((r) => r.name));
    const gone = [...ALLOWED_FUNCTIONS, ...DENIED_FUNCTIONS.keys()].filter((n) => !present.has(n)).sort();
    const missingRelations = relations.rows.filter((r) => CATALOG_RELATIONS.get(r.schema)?.has(r.name) !== true);
    const out: string[] = [`PostgreSQL ${version.rows[0]?.server_version ?? '?'}: ${functions.rows.length} pg_catalog function names, ${relations.rows.length} catalog relations`];
    out.push(`${unreviewed.length} built-in functions in neither list (refused to masked readers until reviewed):`);
    for (const r of unreviewed) out.push(`  ${r.name}  (${r.signatures})`);
    out.push(`${missingRelations.length} catalog relations without a treatment (refused to masked readers until reviewed):`);
    for (const r of missingRelations) out.push(`  ${r.schema}.${r.name}`);
    if (gone.length > 0) out.push(`${gone.length} listed names this server does not have (older version, or removed): ${gone.join(' ')}`);
    process.stdout.write(out.join('\n') + '\n');
    return unreviewed.length === 0 && missingRelations.length === 0 ? 0 : 1;
  } finally {
    await client.end();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`function-allowlist: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
