// How wide text is on a terminal, for everything that lines up columns (CLI tables, the doctor's
// report, psql-like result tables): grapheme clusters, East Asian wide characters and emoji
// sequences count as terminals draw them (string-width), not as UTF-16 code units.
import stringWidth from 'string-width';

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Terminal columns `s` takes. Text is data here, so escape-sequence look-alikes count. */
export function displayWidth(s: string): number {
  return PRINTABLE_ASCII.test(s) ? s.length : stringWidth(s, { countAnsiEscapeCodes: true });
}

/** `s` followed by spaces up to `width` columns (as `padEnd`, in columns). */
export function padEndWidth(s: string, width: number): string {
  const pad = width - displayWidth(s);
  return pad > 0 ? s + ' '.repeat(pad) : s;
}
