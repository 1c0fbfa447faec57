// Public API of the masking core: policy section, strategies, detectors, lineage, result plans and the row path. Pure: no sockets, timers or files.
export {
  parseMasking,
  parseColumnName,
  ruleFor,
  tableHasRules,
  gateMasking,
  isUnmaskedReader,
  maskedColumnKeys,
  EMPTY_MASKING,
  DEFAULT_PLACEHOLDER,
  STRATEGIES,
  BUILTIN_DETECTORS,
  type MaskingConfig,
  type ColumnRule,
  type ColumnName,
  type DetectorSpec,
  type CustomDetector,
  type Strategy,
  type BuiltinDetector,
} from './config.js';
export { vetPattern, UnsafePatternError, REPEAT_CAP, MAX_ATTEMPT_COST } from './regex-safety.js';
export {
  Tokenizer,
  redactValue,
  partialValue,
  partialInto,
  partialText,
  tokenizeValue,
  tokenizeInto,
  yearOnlyValue,
  yearOnlyInto,
  yearOnlyText,
  numericBinaryToText,
  type MaskedValue,
  type ValueType,
} from './strategies.js';
export { DetectorSet, npiValid } from './detectors.js';
export { TypeKind, typeKind, detectable, OID } from './pgtypes.js';
export {
  lineageOf,
  statementLineage,
  type Catalog,
  type ColumnSource,
  type TableSource,
  type OutputLineage,
  type StatementLineage,
  type WriteLineage,
} from './lineage.js';
export {
  planColumns,
  maskedWrites,
  copyFields,
  detectorsFor,
  type MaskPlan,
  type MaskedWrite,
  type ColumnPlan,
  type ColumnAction,
  type PlanOptions,
  type ResolveAttr,
  type ResolvedAttribute,
  type ValueOp,
} from './plan.js';
export { applyToDataRow, applyToCopyLine, maskDataRowInto, type CopyOptions } from './row.js';
export { maskServerText } from './messages.js';
