// Counts in words for people: "1 statement", "2 statements", "1,000 rows".

/** `n` and the noun in the number it takes (`many` for irregular plurals). */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** Like plural for a count read from a record, which may be missing or not a number. */
export function pluralOf(v: unknown, one: string, many = `${one}s`): string {
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? plural(n, one, many) : `? ${many}`;
}
