// Pass rules of the attack suite, as pure functions from what came back to a list of problems (empty:
// the attack failed to get anything). See families.ts for what each kind of attack must show.
import { describeHits, rawForms, type LeakScanner } from './oracle.js';
import { FIELD_KIND, PHI_FIELDS, VICTIM, decoyOf } from './fixture.js';
import { stepText, type Attack } from './families.js';
import type { StepResult } from './runners.js';

/**
 * Raw forms in `output`, except the attacker's own literals echoed back (an EXPLAIN's filter, an error's
 * statement position): those say nothing the attacker did not send. What a statement with literals
 * reveals beyond the echo is what pair and model attacks check.
 */
export function leakProblems(scanner: LeakScanner, output: string | Buffer, attack: Attack): string[] {
  const own = [...attack.steps, ...(attack.decoy ?? [])].map(stepText).join('\n').toLowerCase();
  const hits = scanner.scan(output, (f) => own.includes(f.form));
  return hits.length ? [`raw values in the output: ${describeHits(hits).join('; ')}`] : [];
}

/** A refused attack: some statement failed with the expected SQLSTATE. */
export function refusedProblems(attack: Attack, codes: (string | undefined)[]): string[] {
  if (attack.kind !== 'refused') return [];
  return codes.includes(attack.code) ? [] : [`expected SQLSTATE ${attack.code}, got ${JSON.stringify(codes.map((c) => c ?? 'ok'))}`];
}

/** Every raw form of both guesses of a pair (and of all victim values), longest first. */
const GUESS_FORMS: string[] = (() => {
  const set = new Set<string>();
  for (const f of PHI_FIELDS) for (const v of [VICTIM[f], decoyOf(f, VICTIM[f])]) for (const form of rawForms(v, FIELD_KIND[f])) set.add(form.toLowerCase());
  return [...set].sort((a, b) => b.length - a.length);
})();

/** Quoted literals and bind values of an attack's statements. */
function literals(steps: Attack['steps']): string[] {
  const out: string[] = [];
  for (const s of steps) {
    const text = typeof s === 'string' ? s : s.text;
    for (const m of text.matchAll(/'((?:[^']|'')*)'/g)) out.push(m[1]!.replace(/''/g, "'"));
    if (typeof s !== 'string') out.push(...s.values);
  }
  return out;
}

/**
 * What stands for the guess in one variant's output: the literals that differ from the other
 * variant's (quoted when short, so a one-digit guess does not swallow every digit of the output).
 */
function guessEchoes(mine: Attack['steps'], other: Attack['steps']): string[] {
  const a = literals(mine);
  const b = literals(other);
  const out: string[] = [];
  a.forEach((lit, i) => {
    if (lit === b[i] || lit.length < 3) return;
    out.push((lit.length >= 6 ? lit : `'${lit}'`).toLowerCase());
  });
  return out.sort((x, y) => y.length - x.length);
}

/** Output with the guesses (true and false alike) and the run-to-run noise (timings, PIDs) taken out. */
export function normalize(text: string, echoes: string[] = []): string {
  let out = text.toLowerCase();
  for (const f of [...echoes, ...GUESS_FORMS]) out = out.split(f).join('<guess>');
  return out
    .replace(/\d+\.\d+/g, 'N')
    .replace(/\bpid \d+/g, 'pid N')
    .replace(/psql:<stdin>:\d+:/g, 'psql:<stdin>:N:');
}

/** A pair: what the true guess gave must equal what the false guess gave. */
export function pairProblems(attack: Attack, trueOut: string, falseOut: string): string[] {
  const a = normalize(trueOut, guessEchoes(attack.steps, attack.decoy ?? []));
  const b = normalize(falseOut, guessEchoes(attack.decoy ?? [], attack.steps));
  if (a === b) return [];
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  const around = (s: string): string => JSON.stringify(s.slice(Math.max(0, i - 80), i + 120));
  return [`the true and the false guess give different outputs: true ${around(a)} vs false ${around(b)}`];
}

/** A value output masking may have put in place of a computed one (the stricter layer wins). */
function maskedLooking(v: unknown): boolean {
  if (v === null) return true;
  if (typeof v !== 'string') return false;
  return /^"?\*{3,}[^*]{0,4}"?$/s.test(v.replace(/-/g, '')) || /^"?tok_[0-9a-f]{16}"?$/.test(v) || /^\s*<(email|phone|date|name|npi|mbi|mrn)>\s*$/.test(v);
}

/**
 * A model attack: the gateway's answer equals the same statements run over the masked copy of the
 * tables, statement by statement (same tag, same rows in the same order), except where the gateway
 * refused (42501) or output masking masked a cell further.
 */
export function modelProblems(gateway: StepResult[], model: StepResult[]): string[] {
  const problems: string[] = [];
  if (gateway.length !== model.length && !gateway.some((g) => g.code === '42501')) {
    return [`${gateway.length} results through the gateway, ${model.length} over masked values`];
  }
  for (let i = 0; i < Math.min(gateway.length, model.length); i++) {
    const g = gateway[i]!;
    const m = model[i]!;
    if (g.code === '42501') return problems; // refused: nothing computed, nothing revealed
    if (g.code !== m.code) {
      problems.push(`statement ${i + 1}: ${g.code ?? 'ok'} through the gateway, ${m.code ?? 'ok'} over masked values (${g.message ?? m.message ?? ''})`);
      continue;
    }
    if (g.code) continue;
    if (g.tag !== m.tag) problems.push(`statement ${i + 1}: tag ${g.tag} through the gateway, ${m.tag} over masked values`);
    const gr = g.rows ?? [];
    const mr = m.rows ?? [];
    const bad: string[] = [];
    for (let r = 0; r < Math.max(gr.length, mr.length); r++) {
      const a = gr[r];
      const b = mr[r];
      if (!a || !b || a.length !== b.length) {
        bad.push(`row ${r + 1}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
        continue;
      }
      if (a.some((v, c) => v !== b[c] && !maskedLooking(v))) bad.push(`row ${r + 1}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
    if (bad.length) problems.push(`statement ${i + 1}: ${bad.length} rows differ from the masked-values result, e.g. ${bad.slice(0, 3).join('; ')}`);
  }
  return problems;
}

/** The part of a node-postgres or psycopg outcome a pair compares. */
export function comparable(o: { steps: StepResult[]; notices: string[]; notifications: string[] }): string {
  return JSON.stringify({ steps: o.steps, notices: o.notices, notifications: o.notifications });
}
