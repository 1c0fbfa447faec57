// The leak oracle of the attack suite: every raw form a PHI value (or the tokenization key) can take
// in output bytes, and a scanner that finds any of them in any text, case-insensitively.
//
// A form is what an attacker can undo with no secret: the value as stored, without or with other
// separators, reversed, in another case, base64 or hex of its UTF-8 bytes (at every byte alignment, so a
// value inside a longer encoded string is found too), and for dates the usual written forms. Fragments a
// masked value legitimately keeps (the last 4 SSN digits, the birth year, the city) are never forms.

export type FieldKind = 'ssn' | 'mrn' | 'name' | 'email' | 'date';

/** One string that must not appear, and what it reveals (for the failure message). */
export interface Form {
  form: string;
  label: string;
}

/** Shortest form the scanner looks for: shorter strings turn up by chance in ordinary output. */
export const MIN_FORM = 6;

const SEPARATORS = ['', ' ', '.', '_', '-', '/', ','];

function reverse(s: string): string {
  return [...s].reverse().join('');
}

/** base64 of `s`'s UTF-8 bytes, exact, and the part that stays the same wherever it sits in a longer string. */
export function base64Forms(s: string): string[] {
  const bytes = Buffer.from(s, 'utf8');
  const out = [bytes.toString('base64')];
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
    const firstGroup = k === 0 ? 0 : 1;
    const fullGroups = Math.floor((k + bytes.length) / 3);
    if (fullGroups > firstGroup) out.push(enc.slice(firstGroup * 4, fullGroups * 4));
  }
  return out;
}

function encodings(s: string): string[] {
  const bytes = Buffer.from(s, 'utf8');
  return [...base64Forms(s), bytes.toString('hex')];
}

/** The written forms of an ISO date (YYYY-MM-DD) that say more than its year. */
export function dateForms(iso: string): string[] {
  const [y, m, d] = iso.split('-') as [string, string, string];
  const mu = String(Number(m));
  const du = String(Number(d));
  return [
    iso, `${y}${m}${d}`, `${y}/${m}/${d}`, `${y}.${m}.${d}`, `${y} ${m} ${d}`, `${y}_${m}_${d}`,
    `${m}/${d}/${y}`, `${mu}/${du}/${y}`, `${d}.${m}.${y}`, `${du}.${mu}.${y}`, `${d}/${m}/${y}`, `${d}-${m}-${y}`,
    `${m}-${d}-${y}`, `${m}${d}${y}`, `${d}${m}${y}`,
  ];
}

/**
 * Every raw form of one PHI value. Words of a name (and of an email's local part) are forms of their
 * own: one leaked first name is a leak.
 */
export function rawForms(value: string, kind: FieldKind): string[] {
  const base = new Set<string>();
  if (kind === 'date') {
    for (const f of dateForms(value)) base.add(f);
  } else {
    const parts = value.split(/[^A-Za-z0-9]+/).filter(Boolean);
    base.add(value);
    for (const sep of SEPARATORS) base.add(parts.join(sep));
    if (kind === 'name') for (const w of parts) base.add(w);
    if (kind === 'email') {
      const local = value.split('@')[0]!;
      base.add(local);
      for (const sep of SEPARATORS) base.add(local.split(/[^A-Za-z0-9]+/).filter(Boolean).join(sep));
    }
    // the identifying digits without their constant prefix (MRN-12345678 -> 12345678)
    if (kind === 'mrn') for (const p of parts) if (/^\d+$/.test(p)) base.add(p);
  }
  const out = new Set<string>();
  for (const f of base) {
    for (const g of [f, reverse(f)]) {
      out.add(g);
      out.add(g.toUpperCase());
      out.add(g.toLowerCase());
      for (const e of encodings(g)) out.add(e);
      for (const e of encodings(g.toUpperCase())) out.add(e);
      for (const e of encodings(g.toLowerCase())) out.add(e);
    }
  }
  return [...out].filter((f) => f.length >= MIN_FORM);
}

/**
 * A date as a binary-format DataRow field (length 4, then days since 2000-01-01, big-endian), as
 * latin1: the length prefix makes the 4 value bytes specific enough to look for.
 */
export function binaryDateForm(iso: string): string {
  const days = Math.round((Date.parse(`${iso}T00:00:00Z`) - Date.parse('2000-01-01T00:00:00Z')) / 86_400_000);
  const b = Buffer.alloc(8);
  b.writeInt32BE(4, 0);
  b.writeInt32BE(days, 4);
  return b.toString('latin1');
}

/**
 * Forms of the tokenization key: the key, both HMAC pads (64-byte key block XOR 0x36 / 0x5c), in hex and
 * base64, and every 16-character window of their hex (a pad read out in pieces is still read).
 */
export function keyForms(key: Buffer): Form[] {
  const block = Buffer.alloc(64);
  key.copy(block);
  const pad = (x: number): Buffer => Buffer.from(block.map((b) => b ^ x));
  const out: Form[] = [];
  const secrets: [string, Buffer][] = [['token key', key], ['HMAC inner pad', pad(0x36)], ['HMAC outer pad', pad(0x5c)]];
  for (const [label, bytes] of secrets) {
    const hex = bytes.toString('hex');
    for (const f of [hex, bytes.toString('base64'), ...base64Forms(bytes.toString('latin1'))]) out.push({ form: f, label });
    for (let i = 0; i + 16 <= hex.length; i += 1) out.push({ form: hex.slice(i, i + 16), label: `${label} (hex window)` });
  }
  return out.filter((f) => f.form.length >= MIN_FORM);
}

export interface Hit {
  label: string;
  form: string;
  /** A little of the text around the hit. */
  context: string;
}

/**
 * Finds forms in text, case-insensitively, in one pass: forms are bucketed by their first MIN_FORM
 * characters, so a scan costs one map lookup per position whatever the number of forms.
 */
const HEX = /^[0-9a-f]$/;

export class LeakScanner {
  private readonly buckets = new Map<string, Form[]>();

  constructor(forms: Iterable<Form>) {
    const seen = new Set<string>();
    for (const f of forms) {
      const form = f.form.toLowerCase();
      if (form.length < MIN_FORM || seen.has(`${form}\0${f.label}`)) continue;
      seen.add(`${form}\0${f.label}`);
      const key = form.slice(0, MIN_FORM);
      const list = this.buckets.get(key) ?? [];
      list.push({ form, label: f.label });
      this.buckets.set(key, list);
    }
  }

  /** Every hit in `text` (a Buffer is read as latin1: every byte one character). */
  scan(input: string | Buffer, ignore: (hit: Form) => boolean = () => false): Hit[] {
    const text = (typeof input === 'string' ? input : input.toString('latin1'));
    const lower = text.toLowerCase();
    const hits: Hit[] = [];
    const found = new Set<string>();
    for (let i = 0; i + MIN_FORM <= lower.length; i++) {
      const list = this.buckets.get(lower.slice(i, i + MIN_FORM));
      if (!list) continue;
      for (const f of list) {
        if (!lower.startsWith(f.form, i) || found.has(`${f.label}\0${f.form}`) || ignore(f)) continue;
        // A run of digits (an MRN or SSN without separators) inside a longer hex string (a hash, a
        // token, a chain link) is chance, not a value: 8 decimal digits turn up in about one in
        // 50 SHA-256 digests. Such forms count only where no hex digit flanks them.
        if (/^[0-9]+$/.test(f.form) && (HEX.test(lower[i - 1] ?? '') || HEX.test(lower[i + f.form.length] ?? ''))) continue;
        found.add(`${f.label}\0${f.form}`);
        hits.push({ label: f.label, form: f.form, context: JSON.stringify(text.slice(Math.max(0, i - 20), i + f.form.length + 20)) });
      }
    }
    return hits;
  }
}

/** Hits as short lines for a failure message (at most `max`). */
export function describeHits(hits: Hit[], max = 6): string[] {
  const lines = hits.slice(0, max).map((h) => `${h.label}: ${h.form} in ${h.context}`);
  if (hits.length > max) lines.push(`... and ${hits.length - max} more`);
  return lines;
}
