// Server settings that would make PostgreSQL read statement bytes differently from the gateway's
// classifier (UTF-8, standard_conforming_strings on): a session that reaches one is ended.
import { BackendType, ProtocolError, decodeErrorFieldMap, decodeParameterStatus } from '../../pg/index.js';

/**
 * The gateway classifies statement text as UTF-8 with standard_conforming_strings on, as libpg-query
 * does. If the server read the same bytes differently (backslash escapes in '...' strings, or a
 * client encoding whose multibyte characters contain a backslash byte), a statement could be
 * smuggled past the classifier, so such sessions are ended.
 */
export function unsafeSetting(name: string, value: string): string | undefined {
  if (name === 'standard_conforming_strings' && value.toLowerCase() !== 'on') return `standard_conforming_strings was set to ${value}`;
  // Client-only encodings whose multibyte characters may contain ASCII bytes such as a backslash.
  if (name === 'client_encoding' && /^(s(hift_)?jis|mskanji|big5|gbk|uhc|gb18030|johab|win93[26]|win950|win949|cp93[26]|cp949|cp950|tcvn)$/i.test(value.replace(/[-\s]/g, '_'))) {
    return `client_encoding was set to ${value}`;
  }
  return undefined;
}

/** Checks every ParameterStatus in a buffer of whole backend messages. */
export function unsafeSettingIn(whole: Buffer): string | undefined {
  let off = 0;
  while (off + 5 <= whole.length) {
    const len = whole.readInt32BE(off + 1);
    if (whole[off] === BackendType.ParameterStatus) {
      const p = decodeParameterStatus(whole.subarray(off + 5, off + 1 + len));
      if (!(p instanceof ProtocolError)) {
        const problem = unsafeSetting(p.name, p.value);
        if (problem) return problem;
      }
    }
    off += 1 + len;
  }
  return undefined;
}

/** The first unsafe setting among those the server reported at startup. */
export function unsafeStartup(parameters: ReadonlyMap<string, string>): string | undefined {
  return unsafeSetting('standard_conforming_strings', parameters.get('standard_conforming_strings') ?? 'on') ??
    unsafeSetting('client_encoding', parameters.get('client_encoding') ?? 'UTF8');
}

export function isUtf8Name(encoding: string): boolean {
  return /^(utf-?8|unicode)$/i.test(encoding.trim());
}

/** An ErrorResponse body whose severity ends the session (FATAL, PANIC). */
export function isFatal(body: Buffer): boolean {
  const fields = decodeErrorFieldMap(body);
  if (fields instanceof ProtocolError) return false;
  const severity = fields['V'] ?? fields['S'];
  return severity === 'FATAL' || severity === 'PANIC';
}
