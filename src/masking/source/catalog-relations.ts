// How readers who see masked values may read each catalog relation (pg_catalog and information_schema of PostgreSQL 17).
//
// Some catalog relations hold values of user tables (planner statistics, large objects), statement
// text (which carries other sessions' literals and the HMAC pads of phigate's own rewrite), or
// secrets (password hashes, user mapping options, connection strings). The source rewrite cannot
// mask those, so every catalog relation has a treatment here:
// - allow: metadata only;
// - hide: the rewriter replaces the listed columns by NULL of the same type (the rest stays useful);
// - refuse: the statement is refused with the reason.
// A relation of pg_catalog or information_schema that is not listed (a newer PostgreSQL) is refused
// until reviewed, and so is everything in pg_toast (raw chunks of every TOASTed value). Some
// extension views that show statement text are treated by name in any schema (pg_stat_statements).
// The tests check that this covers every relation of the test server and that hidden columns exist.
//
// Stored definitions (pg_views.definition, pg_get_viewdef, pg_rules, pg_rewrite.ev_action, ...)
// stay allowed as metadata: the rewriter must not store its pads there, i.e. a masked reader's
// CREATE VIEW / MATERIALIZED VIEW over a tokenized column has to be refused or kept pad-free.

export type CatalogTreatment =
  | { kind: 'allow' }
  | { kind: 'hide'; columns: readonly string[]; reason: string }
  | { kind: 'refuse'; reason: string };

const ALLOW: CatalogTreatment = { kind: 'allow' };

function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}

function hide(columns: string, reason: string): CatalogTreatment {
  return { kind: 'hide', columns: words(columns), reason };
}

function refuse(reason: string): CatalogTreatment {
  return { kind: 'refuse', reason };
}

const STATEMENT_TEXT = 'statement text holds other sessions\' literals and the secrets of phigate\'s rewrite';
const STATISTICS = 'planner statistics hold sample values computed from unmasked data';
const SECRETS = 'password hashes, user mapping options and connection strings are secrets';
const ROLE_SETTINGS = 'per-role and per-database settings are other identities\' literals';

/** Metadata-only relations of pg_catalog: object definitions, privileges, counters, progress, settings of this session. */
const PG_CATALOG_ALLOWED = words(`
  pg_aggregate pg_am pg_amop pg_amproc pg_attrdef pg_auth_members pg_cast pg_class pg_collation pg_constraint
  pg_conversion pg_database pg_default_acl pg_depend pg_description pg_enum pg_event_trigger pg_extension
  pg_foreign_data_wrapper pg_foreign_server pg_foreign_table pg_index pg_inherits pg_init_privs pg_language
  pg_largeobject_metadata pg_namespace pg_opclass pg_operator pg_opfamily pg_parameter_acl pg_partitioned_table
  pg_policy pg_proc pg_publication pg_publication_namespace pg_publication_rel pg_range pg_replication_origin
  pg_rewrite pg_seclabel pg_sequence pg_shdepend pg_shdescription pg_shseclabel pg_statistic_ext
  pg_subscription_rel pg_tablespace pg_transform pg_trigger pg_ts_config pg_ts_config_map pg_ts_dict
  pg_ts_parser pg_ts_template pg_type

  pg_available_extension_versions pg_available_extensions pg_config pg_group pg_indexes pg_matviews pg_policies
  pg_publication_tables pg_replication_origin_status pg_replication_slots pg_rules pg_seclabels pg_sequences
  pg_settings pg_shmem_allocations pg_tables pg_timezone_abbrevs pg_timezone_names pg_views pg_wait_events

  pg_stat_all_indexes pg_stat_all_tables pg_stat_archiver pg_stat_bgwriter pg_stat_checkpointer pg_stat_database
  pg_stat_database_conflicts pg_stat_gssapi pg_stat_io pg_stat_progress_analyze pg_stat_progress_basebackup
  pg_stat_progress_cluster pg_stat_progress_copy pg_stat_progress_create_index pg_stat_progress_vacuum
  pg_stat_recovery_prefetch pg_stat_replication pg_stat_replication_slots pg_stat_slru pg_stat_ssl
  pg_stat_subscription pg_stat_subscription_stats pg_stat_sys_indexes pg_stat_sys_tables pg_stat_user_functions
  pg_stat_user_indexes pg_stat_user_tables pg_stat_wal pg_stat_xact_all_tables pg_stat_xact_sys_tables
  pg_stat_xact_user_functions pg_stat_xact_user_tables pg_statio_all_indexes pg_statio_all_sequences
  pg_statio_all_tables pg_statio_sys_indexes pg_statio_sys_sequences pg_statio_sys_tables pg_statio_user_indexes
  pg_statio_user_sequences pg_statio_user_tables
`);

const PG_CATALOG_SPECIAL: ReadonlyArray<[string, CatalogTreatment]> = [
  // Values of user tables.
  ['pg_statistic', refuse(STATISTICS)],
  ['pg_statistic_ext_data', refuse(STATISTICS)],
  ['pg_stats', hide('most_common_vals histogram_bounds most_common_elems range_length_histogram range_bounds_histogram', STATISTICS)],
  ['pg_stats_ext', hide('most_common_vals', STATISTICS)],
  ['pg_stats_ext_exprs', hide('most_common_vals histogram_bounds most_common_elems', STATISTICS)],
  ['pg_largeobject', refuse('large objects are stored data that phigate cannot mask')],
  // A column added with a non-volatile default keeps that value here for the rows that predate it.
  ['pg_attribute', hide('attmissingval', 'the stored default of an added column is a value of the table')],
  // Statement text.
  ['pg_stat_activity', hide('query application_name', `${STATEMENT_TEXT}; application_name is set by other sessions`)],
  ['pg_prepared_statements', hide('statement', STATEMENT_TEXT)],
  ['pg_cursors', hide('statement', STATEMENT_TEXT)],
  ['pg_backend_memory_contexts', hide('ident', `memory context identifiers include ${STATEMENT_TEXT}`)],
  // Other sessions' literals.
  ['pg_prepared_xacts', hide('gid', 'prepared transaction names are other sessions\' literals')],
  ['pg_locks', hide('classid objid', 'advisory lock keys are other sessions\' values')],
  ['pg_db_role_setting', hide('setconfig', ROLE_SETTINGS)],
  ['pg_roles', hide('rolconfig', ROLE_SETTINGS)],
  ['pg_user', hide('useconfig', ROLE_SETTINGS)],
  // Secrets.
  ['pg_authid', hide('rolpassword', SECRETS)],
  ['pg_shadow', hide('passwd useconfig', SECRETS)],
  ['pg_user_mapping', hide('umoptions', SECRETS)],
  ['pg_user_mappings', hide('umoptions', SECRETS)],
  ['pg_subscription', hide('subconninfo', SECRETS)],
  ['pg_stat_wal_receiver', hide('conninfo', SECRETS)],
  // Server files.
  ['pg_file_settings', refuse('it reads the server\'s configuration files')],
  ['pg_hba_file_rules', refuse('it reads the server\'s pg_hba.conf')],
  ['pg_ident_file_mappings', refuse('it reads the server\'s pg_ident.conf')],
];

/** information_schema: views over the catalogs, metadata only, and the SQL feature tables. */
const INFORMATION_SCHEMA_ALLOWED = words(`
  sql_features sql_implementation_info sql_parts sql_sizing
  _pg_foreign_data_wrappers _pg_foreign_servers _pg_foreign_table_columns _pg_foreign_tables
  administrable_role_authorizations applicable_roles attributes character_sets check_constraint_routine_usage
  check_constraints collation_character_set_applicability collations column_column_usage column_domain_usage
  column_options column_privileges column_udt_usage columns constraint_column_usage constraint_table_usage
  data_type_privileges domain_constraints domain_udt_usage domains element_types enabled_roles
  foreign_data_wrapper_options foreign_data_wrappers foreign_server_options foreign_servers foreign_table_options
  foreign_tables information_schema_catalog_name key_column_usage parameters referential_constraints
  role_column_grants role_routine_grants role_table_grants role_udt_grants role_usage_grants routine_column_usage
  routine_privileges routine_routine_usage routine_sequence_usage routine_table_usage routines schemata sequences
  table_constraints table_privileges tables transforms triggered_update_columns triggers udt_privileges
  usage_privileges user_defined_types user_mappings view_column_usage view_routine_usage view_table_usage views
`);

const INFORMATION_SCHEMA_SPECIAL: ReadonlyArray<[string, CatalogTreatment]> = [
  ['_pg_user_mappings', hide('umoptions', SECRETS)],
  ['user_mapping_options', hide('option_value', SECRETS)],
];

/**
 * Extension views that show statement text, matched by name in any schema (extensions install into
 * a schema of the administrator's choice). Their functions are user-defined and so already refused
 * to masked readers; reading the view calls them out of sight.
 */
const EXTENSION_VIEWS: ReadonlyArray<[string, CatalogTreatment]> = [
  ['pg_stat_statements', hide('query', STATEMENT_TEXT)],
  ['pg_stat_statements_info', ALLOW],
];

function table(allowed: readonly string[], special: ReadonlyArray<[string, CatalogTreatment]>): ReadonlyMap<string, CatalogTreatment> {
  const out = new Map<string, CatalogTreatment>();
  for (const name of allowed) out.set(name, ALLOW);
  for (const [name, treatment] of special) {
    if (out.has(name)) throw new Error(`catalog relation ${name} has two treatments`);
    out.set(name, treatment);
  }
  return out;
}

/** Reviewed treatments by schema, then relation name (as pg_class spells it). */
export const CATALOG_RELATIONS: ReadonlyMap<string, ReadonlyMap<string, CatalogTreatment>> = new Map([
  ['pg_catalog', table(PG_CATALOG_ALLOWED, PG_CATALOG_SPECIAL)],
  ['information_schema', table(INFORMATION_SCHEMA_ALLOWED, INFORMATION_SCHEMA_SPECIAL)],
]);

export const EXTENSION_RELATIONS: ReadonlyMap<string, CatalogTreatment> = new Map(EXTENSION_VIEWS);

const UNREVIEWED = refuse('it is a catalog relation that phigate has not reviewed for this PostgreSQL version');
const TOAST = refuse('TOAST tables hold the raw chunks of large values of every table');

/**
 * The treatment of a relation for readers who see masked values, by schema and name as the catalog
 * spells them (resolve the reference first: search_path, quoting). Undefined for a relation outside
 * the catalog schemas that is not a known extension view: not a catalog relation.
 */
export function catalogTreatment(schema: string, name: string): CatalogTreatment | undefined {
  const extension = EXTENSION_RELATIONS.get(name);
  if (extension !== undefined) return extension;
  const reviewed = CATALOG_RELATIONS.get(schema);
  if (reviewed !== undefined) return reviewed.get(name) ?? UNREVIEWED;
  if (schema === 'pg_toast' || /^pg_toast_temp_\d+$/.test(schema)) return TOAST;
  return undefined;
}
