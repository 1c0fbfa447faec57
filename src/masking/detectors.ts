// Content detectors: the backstop that finds PHI by its shape in any text value (SSN, email, phone, birth-like dates, MBI, NPI, policy regexes) and replaces it in place.
//
// Values are read as latin1, one character per byte: every built-in pattern is ASCII, so matches
// land on the same offsets as the bytes, and unmatched bytes (UTF-8 or any other ASCII-compatible
// client encoding) come back unchanged. Custom patterns are ASCII too (regex-safety.ts); their
// matches are widened to whole UTF-8 characters so a replacement never leaves half a character.
//
// Replacements, chosen to be valid inside every text form they can land in (plain text, JSON
// strings, array and record literals):
//   us_ssn  ***-**-6789 (separators kept, last four shown)   email  <email>   phone  <phone>
//   date    <date>   mbi  <mbi>   npi  <npi>   custom  <name>
// In xml values the angle brackets are written as &lt; &gt;. A match inside a JSON number (an SSN
// stored as a bare number) becomes a JSON string, so the document stays valid JSON.
//
// Where a value is structured, detection follows the structure: JSON strings (after undoing
// \u00XX escapes of printable ASCII, so `\u0031\u0032...` cannot hide digits) and numbers are read
// token by token; array and record literals are read whole by the built-in patterns (which never
// span their punctuation) and element by element by custom patterns.
import type { BuiltinDetector, DetectorSpec } from './config.js';
import { TypeKind } from './pgtypes.js';

type Replacer = (match: string, ...groups: (string | undefined)[]) => string;

interface Builtin {
  name: BuiltinDetector;
  regex: RegExp;
  replace: Replacer | string;
  /** The replacement inside xml values, where angle brackets are markup. */
  xmlReplace: Replacer | string;
  /** Fewest ASCII digits a match contains, and whether it needs an "@": values short of that skip the regex. */
  minDigits: number;
  needsAt?: boolean;
}

function ssnValid(area: string, group: string, serial: string): boolean {
  return area !== '000' && area !== '666' && area.charCodeAt(0) !== 0x39 && group !== '00' && serial !== '0000';
}

const SSN_RE =
  /(?<![0-9])([0-9]{3})([- ])([0-9]{2})\2([0-9]{4})(?![0-9])|(?<![0-9A-Za-z.])([0-9]{3})([0-9]{2})([0-9]{4})(?![0-9A-Za-z]|\.[0-9])/g;

function replaceSsn(match: string, a1?: string, sep?: string, g1?: string, s1?: string, a2?: string, g2?: string, s2?: string): string {
  if (a1 !== undefined && g1 !== undefined && s1 !== undefined && sep !== undefined) {
    return ssnValid(a1, g1, s1) ? `***${sep}**${sep}${s1}` : match;
  }
  if (a2 !== undefined && g2 !== undefined && s2 !== undefined) return ssnValid(a2, g2, s2) ? `*****${s2}` : match;
  return match;
}

const EMAIL_RE = /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}(?![A-Za-z0-9-])/g;

const PHONE_RE =
  /(?<![0-9A-Za-z+])(?:\+?1[-. ]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[-. ])[2-9][0-9]{2}[-. ][0-9]{4}(?![0-9])|(?<![0-9A-Za-z+])\+1[2-9][0-9]{2}[2-9][0-9]{6}(?![0-9])/g;

/** NPI check digit: Luhn over "80840" followed by the first nine digits (CMS's published rule). */
export function npiValid(digits: string): boolean {
  if (!/^[12][0-9]{9}$/.test(digits)) return false;
  let sum = 24; // the Luhn contribution of the 80840 prefix
  for (let i = 0; i < 9; i++) {
    let d = digits.charCodeAt(8 - i) - 48;
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10 === digits.charCodeAt(9) - 48;
}

const NPI_RE = /(?<![0-9A-Za-z.])[12][0-9]{9}(?![0-9A-Za-z]|\.[0-9])/g;

// MBI: C A AN N A AN N A A N N, letters excluding S L O I B Z; printed with or without dashes after
// characters 4 and 7.
const MBI_RE =
  /(?<![0-9A-Za-z])[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9][0-9]-?[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9][0-9]-?[AC-HJKMNP-RT-Y]{2}[0-9]{2}(?![0-9A-Za-z])/gi;

const MONTHS = 'Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?';
const YEAR = '(?:19|20)[0-9]{2}';
const DATE_RE = new RegExp(
  [
    // 1985-03-14, 1985/03/14, 1985.03.14
    `(?<![0-9])${YEAR}([-/.])(?:0[1-9]|1[0-2])\\1(?:0[1-9]|[12][0-9]|3[01])(?![0-9])`,
    // 03/14/1985, 3-14-1985, 14.03.1985 (month and day in either order)
    `(?<![0-9])([0-3]?[0-9])([-/.])([0-3]?[0-9])\\3${YEAR}(?![0-9])`,
    // March 14, 1985 / Mar 14 1985
    `(?<![A-Za-z])(?:${MONTHS})\\.? [0-3]?[0-9](?:st|nd|rd|th)?,? ${YEAR}(?![0-9])`,
    // 14 March 1985
    `(?<![0-9A-Za-z])[0-3]?[0-9] (?:${MONTHS})\\.?,? ${YEAR}(?![0-9])`,
  ].join('|'),
  'gi',
);

function replaceDate(match: string, _sep1?: string, a?: string, _sep2?: string, b?: string): string {
  if (a !== undefined && b !== undefined) {
    const x = Number(a);
    const y = Number(b);
    // One part must be a month, the other a day.
    const ok = x >= 1 && y >= 1 && x <= 31 && y <= 31 && (x <= 12 || y <= 12);
    return ok ? '<date>' : match;
  }
  return '<date>';
}

function builtin(name: BuiltinDetector, regex: RegExp, replace: Replacer | string, minDigits: number, needsAt = false): Builtin {
  const xmlReplace: Replacer | string =
    typeof replace === 'string' ? xmlSafe(replace) : (match: string, ...groups: (string | undefined)[]): string => xmlSafe(replace(match, ...groups));
  return { name, regex, replace, xmlReplace, minDigits, needsAt };
}

// Fixed replacements are strings, not callbacks: String.prototype.replace is several times faster so.
const BUILTINS: Record<BuiltinDetector, Builtin> = {
  email: builtin('email', EMAIL_RE, '<email>', 0, true),
  us_ssn: builtin('us_ssn', SSN_RE, replaceSsn as Replacer, 9),
  phone: builtin('phone', PHONE_RE, '<phone>', 10),
  npi: builtin('npi', NPI_RE, (m) => (npiValid(m) ? '<npi>' : m), 10),
  mbi: builtin('mbi', MBI_RE, '<mbi>', 5),
  // "May 5, 1985" has the fewest digits of the date shapes.
  date: builtin('date', DATE_RE, replaceDate as Replacer, 5),
};

/** Order matters: emails first so their digits are gone before the number detectors look. */
const BUILTIN_ORDER: readonly BuiltinDetector[] = ['email', 'us_ssn', 'phone', 'npi', 'mbi', 'date'];

interface Custom {
  regex: RegExp;
  replacement: string;
}

const ARRAY_STRUCTURE = new Set([0x7b, 0x7d, 0x2c, 0x22, 0x5c]); // { } , " \
const RECORD_STRUCTURE = new Set([0x28, 0x29, 0x2c, 0x22, 0x5c]); // ( ) , " \

/** Detectors compiled for one policy; scanning is synchronous and keeps no state between values. */
export class DetectorSet {
  private readonly builtins: Builtin[];
  private readonly customs: Custom[];
  readonly empty: boolean;
  /** The fewest digits any enabled digit-based built-in needs (Infinity: none enabled). */
  private readonly minDigits: number;
  private readonly wantsAt: boolean;

  constructor(specs: readonly DetectorSpec[]) {
    const names = new Set(specs.filter((s) => s.kind === 'builtin').map((s) => s.name));
    this.builtins = BUILTIN_ORDER.filter((n) => names.has(n)).map((n) => BUILTINS[n]);
    this.customs = specs.flatMap((s) => (s.kind === 'custom' ? [{ regex: new RegExp(s.source, 'g'), replacement: `<${s.name}>` }] : []));
    this.empty = this.builtins.length === 0 && this.customs.length === 0;
    this.minDigits = Math.min(Infinity, ...this.builtins.filter((b) => b.needsAt !== true).map((b) => b.minDigits));
    this.wantsAt = this.builtins.some((b) => b.needsAt === true);
  }

  /**
   * Scans one value's bytes as a value of `kind` (text form; binary text types have the same bytes).
   * Returns the rewritten bytes, or undefined when nothing was found.
   */
  scan(value: Buffer, kind: TypeKind): Buffer | undefined {
    return this.scanRange(value, 0, value.length, kind);
  }

  /** `scan` over buf[start, end), without making a view of it first (the row path's case). */
  scanRange(buf: Buffer, start: number, end: number, kind: TypeKind): Buffer | undefined {
    if (this.empty) return undefined;
    let digits = 0;
    let at = false;
    for (let i = start; i < end; i++) {
      const b = buf[i] as number;
      if (b >= 0x30 && b <= 0x39) digits++;
      else if (b === 0x40) at = true;
    }
    if (this.customs.length === 0 && digits < this.minDigits && !(at && this.wantsAt)) return undefined;
    const s = buf.toString('latin1', start, end);
    const out = this.scanString(s, kind, digits, at);
    return out === s ? undefined : Buffer.from(out, 'latin1');
  }

  /** The same over a latin1 string (one character per byte); returns `s` itself when unchanged. */
  scanString(s: string, kind: TypeKind, digits = -1, at = false): string {
    switch (kind) {
      case TypeKind.Json:
      case TypeKind.Jsonb:
        return this.scanJson(s);
      case TypeKind.TextArray:
        return this.scanCustom(this.scanBuiltins(s, false, digits, at), ARRAY_STRUCTURE, false);
      case TypeKind.Record:
        return this.scanCustom(this.scanBuiltins(s, false, digits, at), RECORD_STRUCTURE, false);
      case TypeKind.Xml:
        return this.scanCustom(this.scanBuiltins(s, true, digits, at), undefined, true);
      default:
        return this.scanCustom(this.scanBuiltins(s, false, digits, at), undefined, false);
    }
  }

  /** `digits` < 0: not counted yet. Detectors whose shape needs more digits (or an "@") are skipped. */
  private scanBuiltins(s: string, xml: boolean, digits = -1, at = false): string {
    if (this.builtins.length === 0) return s;
    if (digits < 0) {
      digits = 0;
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x30 && c <= 0x39) digits++;
        else if (c === 0x40) at = true;
      }
    }
    let out = s;
    for (const d of this.builtins) {
      if (d.needsAt === true ? !at : digits < d.minDigits) continue;
      const r = xml ? d.xmlReplace : d.replace;
      out = typeof r === 'string' ? out.replace(d.regex, r) : out.replace(d.regex, r as (m: string, ...g: unknown[]) => string);
    }
    return out;
  }

  /** Custom patterns over the whole string, or over each run of non-structural characters. */
  private scanCustom(s: string, structure: ReadonlySet<number> | undefined, xml: boolean): string {
    if (this.customs.length === 0) return s;
    if (structure === undefined) return this.customOver(s, xml);
    let out = '';
    let changed = false;
    let start = 0;
    for (let i = 0; i <= s.length; i++) {
      if (i < s.length && !structure.has(s.charCodeAt(i))) continue;
      if (i > start) {
        const seg = s.slice(start, i);
        const r = this.customOver(seg, xml);
        if (r !== seg) changed = true;
        out += r;
      }
      if (i < s.length) out += s[i];
      // The character after a backslash is escaped data, not structure; keep it with the backslash.
      if (i < s.length && s.charCodeAt(i) === 0x5c && i + 1 < s.length) {
        out += s[i + 1];
        i++;
      }
      start = i + 1;
    }
    return changed ? out : s;
  }

  private customOver(s: string, xml: boolean): string {
    let out = s;
    for (const c of this.customs) {
      const re = c.regex;
      re.lastIndex = 0;
      let m = re.exec(out);
      if (m === null) continue;
      let built = '';
      let last = 0;
      while (m !== null) {
        let start = m.index;
        let end = start + m[0].length;
        if (end === start) {
          // Unreachable for vetted patterns (they cannot match ""), but never loop forever.
          re.lastIndex = end + 1;
          m = re.exec(out);
          continue;
        }
        // Whole UTF-8 characters only: back up over continuation bytes, run forward over them.
        while (start > last && isContinuation(out.charCodeAt(start))) start--;
        while (end < out.length && isContinuation(out.charCodeAt(end))) end++;
        built += out.slice(last, start) + (xml ? xmlSafe(c.replacement) : c.replacement);
        last = end;
        re.lastIndex = end;
        m = re.exec(out);
      }
      out = built + out.slice(last);
    }
    return out;
  }

  /** JSON text token by token: strings (escapes of printable ASCII undone for reading) and numbers. */
  private scanJson(s: string): string {
    let out = '';
    let last = 0;
    const n = s.length;
    let i = 0;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        let j = i + 1;
        let escaped = false;
        while (j < n) {
          const d = s.charCodeAt(j);
          if (d === 0x5c) {
            escaped = true;
            j += 2;
          } else if (d === 0x22) break;
          else j++;
        }
        if (j > n) j = n;
        const raw = s.slice(i + 1, j);
        const readable = escaped ? unescapeAscii(raw) : raw;
        const scanned = this.scanCustom(this.scanBuiltins(readable, false), undefined, false);
        if (scanned !== readable) {
          out += s.slice(last, i + 1) + scanned;
          last = j;
        }
        i = j + 1;
      } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
        let j = i + 1;
        while (j < n && isNumberChar(s.charCodeAt(j))) j++;
        const raw = s.slice(i, j);
        const scanned = this.scanCustom(this.scanBuiltins(raw, false), undefined, false);
        if (scanned !== raw) {
          out += `${s.slice(last, i)}"${scanned}"`;
          last = j;
        }
        i = j;
      } else {
        i++;
      }
    }
    return last === 0 ? s : out + s.slice(last);
  }
}

function isContinuation(c: number): boolean {
  return c >= 0x80 && c <= 0xbf;
}

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
}

/** `\u0031` → `1` and `\/` → `/` for printable ASCII other than `"` and `\`; everything else stays escaped. */
function unescapeAscii(raw: string): string {
  return raw.replace(/\\(?:u00([2-7][0-9A-Fa-f])|\/)/g, (m, hex?: string) => {
    if (hex === undefined) return '/';
    const code = parseInt(hex, 16);
    return code === 0x22 || code === 0x5c || code === 0x7f ? m : String.fromCharCode(code);
  });
}

function xmlSafe(s: string): string {
  return s.replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
