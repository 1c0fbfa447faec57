// Masking at the source, assembled for the gateway: the rewrite (rewrite.ts) with SQL strategies
// (expressions.ts), the catalog relations' treatments (catalog-relations.ts) and the check of what
// the rewrite cannot see into (unseen.ts), for one policy's masking section and tokenization key.
import type { CatalogSnapshot } from './catalog-snapshot.js';
import type { MaskingConfig } from '../config.js';
import { catalogTreatment } from './catalog-relations.js';
import { maskExpression, redactExpression, sqlTokenKey } from './expressions.js';
import { SourceMasking } from './masker.js';
import type { ColumnMasker, SystemTreatmentFn } from './relations.js';
import { unseenReason } from './unseen.js';
import type { TreeCheck } from './rewrite.js';

export { SourceMasking, originalPosition } from './masker.js';
export type { RewriteOutcome, TextEdit } from './rewrite.js';

/** How masked readers see catalog relations; an unreviewed one in a system schema is refused. */
export const systemTreatment: SystemTreatmentFn = (schema, name, system) => {
  const t = catalogTreatment(schema, name);
  if (t === undefined) return system ? { kind: 'refuse', reason: 'it is a catalog relation phigate has not reviewed' } : undefined;
  return t.kind === 'hide' ? { kind: 'hide', columns: t.columns } : t;
};

export interface SourceMaskingSetup {
  masking: SourceMasking;
  /** Strings that would reveal the tokenization key: scrubbed from anything echoing statement text. */
  secrets: readonly string[];
}

/**
 * `allowedUserFunctions`: functions the policy lets masked readers call (`functions:` entries with
 * `masked_readers: true`), as `schema.name` or `name`.
 */
export function createSourceMasking(config: MaskingConfig, tokenKey: Buffer, allowedUserFunctions: ReadonlySet<string>): SourceMaskingSetup {
  const key = sqlTokenKey(tokenKey);
  const masker: ColumnMasker = {
    mask: (rule, column, type) => maskExpression(rule, column, type, key),
    redact: (type, column) => redactExpression(type, column),
  };
  const check = (snapshot: CatalogSnapshot): TreeCheck => {
    const ctx = { userFunctions: snapshot.userFunctionNames, allowedUserFunctions, untrustedOperators: snapshot.untrustedOperators };
    return (stmt) => unseenReason(stmt, ctx);
  };
  return { masking: new SourceMasking({ config, masker, system: systemTreatment, check }), secrets: key.secrets };
}
