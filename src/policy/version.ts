// A policy's version: the SHA-256 of its canonical form (keys sorted, no formatting or comments), so
// re-indenting or commenting a file does not change the version but any semantic change does. The
// canonical form is the audit log's (RFC 8785, docs/decisions/strict-canonical-json.md): one
// definition, so an auditor recomputes a version with any JCS implementation.
import { parse } from 'yaml';
import { CanonicalFormError, canonicalJson, sha256Hex } from '../audit/canonical.js';
import { PolicyFileError } from './errors.js';

/** `sha256:<hex>` of the canonical form of a policy file's text (which must already be valid). */
export function policyVersion(source: string, file = '<policy>'): string {
  let canonical: string;
  try {
    canonical = canonicalJson(parse(source));
  } catch (err) {
    // YAML's "\uD800" escapes and .nan/.inf can make values that have no canonical form.
    if (err instanceof CanonicalFormError) {
      throw new PolicyFileError(file, undefined, undefined, err.path.replace(/^\$\.?/, ''),
        err.reason === 'lone_surrogate'
          ? 'a string holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair); write the character itself'
          : err.message);
    }
    throw err;
  }
  return `sha256:${sha256Hex(canonical)}`;
}
