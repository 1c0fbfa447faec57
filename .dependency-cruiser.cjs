// Layering of src/ (docs/architecture.md "Who may import whom"), checked by `npm run lint`:
//   - no import cycles, type-only imports included (they still tie modules together for a reader
//     and for the next refactoring);
//   - the sans-I/O core (src/common, src/pg, src/sql, src/policy, src/masking) imports neither the edges
//     (server, cli, ui, tunnel) nor I/O modules (sockets, files, processes, HTTP, the pg driver, ws);
//   - src/sql (lexer, parser binding, AST accessors) sits below policy and masking, which share it;
//   - src/common (the shared kernel: errors, logger, table names) imports nothing outside itself;
//   - src/store (the shared --store database and its migrations) imports only the kernel: approvals,
//     audit and server use it, never the other way round.
// Exceptions are listed by file with the reason; a new one needs the same.
/** @type {import('dependency-cruiser').IConfiguration} */

const CORE = '^src/(common|pg|sql|policy|masking)/';
const EDGES = '^src/(server|cli|ui|tunnel)/';
const NODE_IO = '^(node:)?(net|fs|fs/promises|http|https|http2|child_process|dgram|tls|cluster)$';
const NPM_IO = '^node_modules/(ws|pg|pg-pool)/';

/**
 * Core files that do I/O today, each for a reason; pathNot of the I/O rule. Shrink this list, do not
 * grow it without a reason as good as these.
 */
const CORE_IO_EXCEPTIONS = [
  // Reads the policy file named on the command line or in the server's config (the one place a
  // policy enters from disk); parsePolicyFile(text) is the pure part.
  '^src/policy/file[.]ts$',
  // Policy activation history under --data-dir (an append-only file), beside the policy it records.
  '^src/policy/history[.]ts$',
];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles (type-only ones too) make modules impossible to understand or move one at a time.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'core-imports-no-edges',
      severity: 'error',
      comment: 'The codec, SQL, policy and masking are the sans-I/O core: they must not depend on server, cli, ui or tunnel.',
      from: { path: CORE },
      to: { path: EDGES },
    },
    {
      name: 'sql-below-policy-and-masking',
      severity: 'error',
      comment: 'src/sql is what policy and masking share (lexer, parser binding, AST accessors): it must not import either of them.',
      from: { path: '^src/sql/' },
      to: { path: '^src/(policy|masking)/' },
    },
    {
      name: 'common-is-the-kernel',
      severity: 'error',
      comment: 'src/common is what every layer shares (errors, logger, table names): it imports nothing from the rest of src/.',
      from: { path: '^src/common/' },
      to: { path: '^src/', pathNot: '^src/common/' },
    },
    {
      name: 'store-below-its-users',
      severity: 'error',
      comment: 'src/store (the shared database, its schema steps) is used by approvals, audit, server and cli: it may import only src/common.',
      from: { path: '^src/store/' },
      to: { path: '^src/', pathNot: '^src/(common|store)/' },
    },
    {
      name: 'core-does-no-io',
      severity: 'error',
      comment: 'The sans-I/O core takes bytes and data and returns data: sockets, files, processes and drivers belong to the edges (see CORE_IO_EXCEPTIONS).',
      from: { path: CORE, pathNot: CORE_IO_EXCEPTIONS },
      to: { path: [NODE_IO, NPM_IO] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Not `exclude` for node_modules: that would drop the imports of ws and pg the I/O rule looks for.
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // node_modules is a symlink in worktrees: keep paths as written so NPM_IO matches.
    preserveSymlinks: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    cache: false,
  },
};
