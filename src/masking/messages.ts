// Masks values that PostgreSQL echoes inside error and notice texts, which carry PHI past every result-row defence (`SELECT full_name::int` → invalid input syntax for type integer: "Ada Lovelace").
//
// For a masked reader the session runs this over the message, detail, hint and context fields of
// ErrorResponse and NoticeResponse. Quoted strings are values unless a word that introduces an
// identifier precedes them (column "ssn", relation "patients"); key values in `Key (col)=(value)`
// and `Failing row contains (...)` are replaced; then the content detectors run over the rest.
import type { DetectorSet } from './detectors.js';
import { TypeKind } from './pgtypes.js';

const IDENTIFIER_WORDS = new Set(
  `column relation table schema function procedure routine aggregate type domain constraint index view sequence role user
  database operator cursor statement portal savepoint extension trigger policy attribute parameter key collation conversion
  publication subscription server wrapper language tablespace channel event rule family class method setting variable
  option field label encoding locale name identifier alias transaction`.split(/\s+/),
);

function maskQuoted(text: string): string {
  return text.replace(/(\b[\w]+\s)?"((?:[^"]|"")*)"/g, (m, word: string | undefined) => {
    const w = word?.trim().toLowerCase();
    return w !== undefined && IDENTIFIER_WORDS.has(w) ? m : `${word ?? ''}"***"`;
  });
}

export function maskServerText(text: string, detectors: DetectorSet): string {
  let out = maskQuoted(text);
  out = out.replace(/(\((?:[^()]|\([^()]*\))*\))=\((?:[^()]|\([^()]*\))*\)/g, '$1=(***)');
  out = out.replace(/Failing row contains \(.*\)/g, 'Failing row contains (***)');
  return detectors.scanString(out, TypeKind.Text);
}
