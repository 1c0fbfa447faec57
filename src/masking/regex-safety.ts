// Vets a policy author's custom detector pattern so it cannot stall the gateway: every value of every result row runs through it, and JavaScript regexes backtrack.
//
// The gateway is one event loop: a pattern such as `(\w+\s?)+@` fed a long crafted value would stop
// every session. So a custom pattern is checked and rewritten once, at policy load:
//   * ASCII only (detection runs over the raw bytes read as latin1, see detectors.ts), no
//     backreferences, no quantified lookarounds;
//   * no nested quantifiers: a repeated group may hold only single characters (no inner repetition,
//     no alternation), which rules out exponential backtracking;
//   * unbounded repetition (`*`, `+`, `{n,}`) is capped at REPEAT_CAP, so each attempt is bounded;
//   * the backtracking work of one attempt is estimated (repetitions whose stopping point is forced,
//     like `\d+` before `-`, count once; free ones multiply) and patterns above MAX_ATTEMPT_COST are
//     refused with the reason.
// Together these bound the work to (value length x MAX_ATTEMPT_COST x pattern size).

/** Upper bound written in place of `*`, `+` and `{n,}`. */
export const REPEAT_CAP = 64;
/** Largest accepted estimate of the steps one match attempt can take. */
export const MAX_ATTEMPT_COST = 256;

export class UnsafePatternError extends Error {
  constructor(readonly problem: string) {
    super(problem);
    this.name = 'UnsafePatternError';
  }
}

/** 256-bit character set over the latin1 domain the detectors read. */
type CharSet = Uint32Array;

function emptySet(): CharSet {
  return new Uint32Array(8);
}
function fullSet(): CharSet {
  return new Uint32Array(8).fill(0xffffffff);
}
function addChar(s: CharSet, c: number): void {
  s[c >>> 5] = (s[c >>> 5] as number) | (1 << (c & 31));
}
function addRange(s: CharSet, from: number, to: number): void {
  for (let c = from; c <= to && c < 256; c++) addChar(s, c);
}
function union(a: CharSet, b: CharSet): CharSet {
  const out = emptySet();
  for (let i = 0; i < 8; i++) out[i] = (a[i] as number) | (b[i] as number);
  return out;
}
function invert(a: CharSet): CharSet {
  const out = emptySet();
  for (let i = 0; i < 8; i++) out[i] = ~(a[i] as number);
  return out;
}
function disjoint(a: CharSet, b: CharSet): boolean {
  for (let i = 0; i < 8; i++) if (((a[i] as number) & (b[i] as number)) !== 0) return false;
  return true;
}

const DIGITS = ((): CharSet => {
  const s = emptySet();
  addRange(s, 0x30, 0x39);
  return s;
})();
const WORD = ((): CharSet => {
  const s = emptySet();
  addRange(s, 0x30, 0x39);
  addRange(s, 0x41, 0x5a);
  addRange(s, 0x61, 0x7a);
  addChar(s, 0x5f);
  return s;
})();
const SPACE = ((): CharSet => {
  const s = emptySet();
  for (const c of [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0]) addChar(s, c);
  return s;
})();
const DOT = ((): CharSet => {
  const s = fullSet();
  s[0] = (s[0] as number) & ~((1 << 0x0a) | (1 << 0x0d));
  return s;
})();

interface Atom {
  kind: 'char' | 'group' | 'assert';
  /** Characters the atom's first character can be (char atoms: the only character). */
  first: CharSet;
  /** Alternatives of a group or lookaround. */
  alts?: Item[][];
  /** A zero-width assertion (anchors, \b, lookarounds). */
  zeroWidth: boolean;
  /** How a group or lookaround opens: "(", "(?:", "(?<name>", "(?=", ... */
  open?: string;
}

interface Item {
  atom: Atom;
  min: number;
  max: number;
  /** Source text of a non-group atom as written. */
  atomSrc: string;
  /** The quantifier as rewritten ('' for none). */
  quant: string;
}

function sourceOf(alts: Item[][]): string {
  return alts
    .map((items) =>
      items.map((it) => (it.atom.alts === undefined ? it.atomSrc : `${it.atom.open ?? '(?:'}${sourceOf(it.atom.alts)})`) + it.quant).join(''),
    )
    .join('|');
}

/** Parses the JavaScript (non-unicode) regex subset and returns the rewritten source. */
class PatternParser {
  private pos = 0;
  constructor(private readonly p: string) {}

  parse(): Item[][] {
    const alts = this.alternatives();
    if (this.pos < this.p.length) throw new UnsafePatternError(`unbalanced ")" at position ${this.pos + 1}`);
    return alts;
  }

  private alternatives(): Item[][] {
    const alts: Item[][] = [this.sequence()];
    while (this.p[this.pos] === '|') {
      this.pos++;
      alts.push(this.sequence());
    }
    return alts;
  }

  private sequence(): Item[] {
    const items: Item[] = [];
    while (this.pos < this.p.length) {
      const ch = this.p[this.pos];
      if (ch === '|' || ch === ')') break;
      const start = this.pos;
      const atom = this.atom();
      const atomSrc = this.p.slice(start, this.pos);
      const q = this.quantifier();
      if (q === undefined) {
        items.push({ atom, min: 1, max: 1, atomSrc, quant: '' });
        continue;
      }
      if (atom.zeroWidth) throw new UnsafePatternError(`a quantifier on an assertion at position ${start + 1} is not supported`);
      if (atom.kind === 'group' && q.max > 1 && nested(atom)) {
        throw new UnsafePatternError(
          `nested quantifier at position ${start + 1}: a repeated group may contain only single characters (no repetition or "|" inside), because nested repetition can backtrack exponentially`,
        );
      }
      items.push({ atom, min: q.min, max: q.max, atomSrc, quant: q.src });
    }
    return items;
  }

  private quantifier(): { min: number; max: number; src: string } | undefined {
    const ch = this.p[this.pos];
    let min: number;
    let max: number;
    if (ch === '*' || ch === '+' || ch === '?') {
      this.pos++;
      min = ch === '+' ? 1 : 0;
      max = ch === '?' ? 1 : Infinity;
    } else if (ch === '{') {
      const m = /^\{(\d{1,6})(,(\d{0,6}))?\}/.exec(this.p.slice(this.pos));
      // In non-unicode patterns a "{" that does not start a quantifier is a literal.
      if (m === null) return undefined;
      this.pos += m[0].length;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      if (max < min) throw new UnsafePatternError(`quantifier ${m[0]} has its bounds out of order`);
    } else {
      return undefined;
    }
    let lazy = '';
    if (this.p[this.pos] === '?') {
      this.pos++;
      lazy = '?';
    }
    if (max === Infinity) max = Math.max(min, REPEAT_CAP);
    if (min > 1000 || max > 1000) throw new UnsafePatternError('repetition counts above 1000 are not supported');
    const src = max === 1 && min === 0 ? '?' : min === max ? `{${min}}` : `{${min},${max}}`;
    return { min, max, src: src + lazy };
  }

  private atom(): Atom {
    const ch = this.p[this.pos] as string;
    this.pos++;
    switch (ch) {
      case '(':
        return this.group();
      case '[':
        return charAtom(this.charClass());
      case '.':
        return charAtom(DOT);
      case '^':
      case '$':
        return { kind: 'assert', first: emptySet(), zeroWidth: true };
      case '\\':
        return this.escape(false) as Atom;
      case '*':
      case '+':
      case '?':
        throw new UnsafePatternError(`nothing to repeat at position ${this.pos}`);
      default: {
        const s = emptySet();
        addChar(s, ch.charCodeAt(0));
        return charAtom(s);
      }
    }
  }

  private group(): Atom {
    const rest = this.p.slice(this.pos);
    const from = this.pos - 1;
    let lookaround = false;
    if (rest.startsWith('?:')) this.pos += 2;
    else if (rest.startsWith('?=') || rest.startsWith('?!')) {
      this.pos += 2;
      lookaround = true;
    } else if (rest.startsWith('?<=') || rest.startsWith('?<!')) {
      this.pos += 3;
      lookaround = true;
    } else if (rest.startsWith('?<')) {
      const m = /^\?<[A-Za-z_$][A-Za-z0-9_$]*>/.exec(rest);
      if (m === null) throw new UnsafePatternError(`invalid group name at position ${this.pos}`);
      this.pos += m[0].length;
    } else if (rest.startsWith('?')) {
      throw new UnsafePatternError(`unsupported group syntax "(?${rest[1] ?? ''}" at position ${this.pos}`);
    }
    const openEnd = this.pos;
    const alts = this.alternatives();
    if (this.p[this.pos] !== ')') throw new UnsafePatternError('unterminated group: missing ")"');
    this.pos++;
    let first = emptySet();
    for (const alt of alts) first = union(first, firstSet(alt, 0));
    return { kind: lookaround ? 'assert' : 'group', first, alts, zeroWidth: lookaround, open: this.p.slice(from, openEnd) };
  }

  /** Returns an Atom for an escape outside a class, or the CharSet for one inside a class. */
  private escape(inClass: boolean): Atom | CharSet {
    const ch = this.p[this.pos];
    if (ch === undefined) throw new UnsafePatternError('pattern ends with a lone "\\"');
    this.pos++;
    const single = (c: number): CharSet => {
      const s = emptySet();
      addChar(s, c);
      return s;
    };
    let set: CharSet;
    switch (ch) {
      case 'd':
        set = DIGITS;
        break;
      case 'D':
        set = invert(DIGITS);
        break;
      case 'w':
        set = WORD;
        break;
      case 'W':
        set = invert(WORD);
        break;
      case 's':
        set = SPACE;
        break;
      case 'S':
        set = invert(SPACE);
        break;
      case 'b':
      case 'B':
        if (inClass) {
          set = single(8);
          break;
        }
        return { kind: 'assert', first: emptySet(), zeroWidth: true };
      case 'n':
        set = single(10);
        break;
      case 't':
        set = single(9);
        break;
      case 'r':
        set = single(13);
        break;
      case 'f':
        set = single(12);
        break;
      case 'v':
        set = single(11);
        break;
      case '0':
        set = single(0);
        break;
      case 'x': {
        const m = /^[0-9A-Fa-f]{2}/.exec(this.p.slice(this.pos));
        if (m === null) throw new UnsafePatternError(`invalid \\x escape at position ${this.pos}`);
        this.pos += 2;
        set = single(parseInt(m[0], 16));
        break;
      }
      case 'u':
      case 'c':
      case 'p':
      case 'P':
        throw new UnsafePatternError(`the escape \\${ch} is not supported in custom patterns (patterns are ASCII)`);
      case 'k':
        throw new UnsafePatternError('backreferences are not supported in custom patterns');
      default:
        if (ch >= '1' && ch <= '9') {
          if (inClass) throw new UnsafePatternError(`octal escapes are not supported (position ${this.pos})`);
          throw new UnsafePatternError('backreferences are not supported in custom patterns');
        }
        set = single(ch.charCodeAt(0));
    }
    return inClass ? set : charAtom(set);
  }

  private charClass(): CharSet {
    let negate = false;
    if (this.p[this.pos] === '^') {
      negate = true;
      this.pos++;
    }
    let set = emptySet();
    let prev: number | undefined;
    for (;;) {
      const ch = this.p[this.pos];
      if (ch === undefined) throw new UnsafePatternError('unterminated character class: missing "]"');
      if (ch === ']') {
        this.pos++;
        break;
      }
      if (ch === '-' && prev !== undefined && this.p[this.pos + 1] !== ']' && this.p[this.pos + 1] !== undefined) {
        this.pos++;
        let hi: number;
        if (this.p[this.pos] === '\\') {
          this.pos++;
          const s = this.escape(true) as CharSet;
          hi = singleMember(s);
          if (hi < 0) throw new UnsafePatternError(`invalid range in character class at position ${this.pos}`);
        } else {
          hi = (this.p[this.pos] as string).charCodeAt(0);
          this.pos++;
        }
        if (hi < prev) throw new UnsafePatternError(`character class range out of order at position ${this.pos}`);
        addRange(set, prev, hi);
        prev = undefined;
        continue;
      }
      if (ch === '\\') {
        this.pos++;
        const s = this.escape(true) as CharSet;
        set = union(set, s);
        const m = singleMember(s);
        prev = m >= 0 ? m : undefined;
        continue;
      }
      this.pos++;
      const c = ch.charCodeAt(0);
      addChar(set, c);
      prev = c;
    }
    return negate ? invert(set) : set;
  }
}

function singleMember(s: CharSet): number {
  let found = -1;
  for (let c = 0; c < 256; c++) {
    if (((s[c >>> 5] as number) & (1 << (c & 31))) !== 0) {
      if (found >= 0) return -1;
      found = c;
    }
  }
  return found;
}

function charAtom(set: CharSet): Atom {
  return { kind: 'char', first: set, zeroWidth: false };
}

/** Does a group contain repetition or alternation (directly or deeper)? */
function nested(atom: Atom): boolean {
  const alts = atom.alts ?? [];
  if (alts.length > 1) return true;
  for (const alt of alts) {
    for (const item of alt) {
      if (item.min !== item.max) return true;
      if (item.atom.kind === 'group' && nested(item.atom)) return true;
    }
  }
  return false;
}

/** Characters the sequence can start with from item i on (all characters when it can be empty). */
function firstSet(items: Item[], i: number): CharSet {
  let set = emptySet();
  for (let j = i; j < items.length; j++) {
    const item = items[j] as Item;
    if (item.atom.zeroWidth) continue;
    set = union(set, item.atom.first);
    if (item.min > 0 && !canBeEmpty(item.atom)) return set;
  }
  return fullSet();
}

function canBeEmpty(atom: Atom): boolean {
  if (atom.zeroWidth) return true;
  if (atom.kind === 'char') return false;
  return (atom.alts ?? []).some((alt) => alt.every((it) => it.min === 0 || canBeEmpty(it.atom)));
}

/**
 * Estimated steps of one match attempt: forced repetitions add, free ones multiply. `atEnd`: the
 * sequences end the pattern, so a repetition that ends one never gives characters back.
 */
function cost(alts: Item[][], atEnd = false): number {
  let total = 0;
  for (const items of alts) {
    let product = 1;
    let sum = 0;
    items.forEach((item, i) => {
      const inner = item.atom.alts === undefined ? 1 : cost(item.atom.alts);
      const width = item.max - item.min + 1;
      if (item.atom.zeroWidth) {
        sum += inner;
      } else if (width === 1) {
        product *= inner;
      } else if (item.atom.kind === 'char' && ((atEnd && items.slice(i + 1).every((x) => x.atom.zeroWidth)) || disjoint(item.atom.first, firstSet(items, i + 1)))) {
        // The repetition stops at the first character outside its set, and what follows cannot start
        // with such a character, so giving characters back never helps: linear, not multiplicative.
        sum += width;
      } else {
        product *= width * inner;
      }
    });
    total += product + sum;
  }
  return total;
}

export interface VettedPattern {
  /** The source to compile: unbounded repetition rewritten to {min,REPEAT_CAP}. */
  source: string;
  /** The estimate compared with MAX_ATTEMPT_COST (for tests and error messages). */
  cost: number;
}

/** Checks and rewrites a custom detector pattern; throws UnsafePatternError naming the problem. */
export function vetPattern(pattern: string): VettedPattern {
  if (pattern.length === 0) throw new UnsafePatternError('the pattern is empty');
  if (pattern.length > 500) throw new UnsafePatternError('the pattern is longer than 500 characters');
  if (/[^\x20-\x7e]/.test(pattern)) throw new UnsafePatternError('the pattern must be printable ASCII (detectors read values byte by byte)');
  try {
    new RegExp(pattern);
  } catch (err) {
    throw new UnsafePatternError(`not a valid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
  const alts = new PatternParser(pattern).parse();
  const source = sourceOf(alts);
  const estimate = cost(alts, true);
  if (estimate > MAX_ATTEMPT_COST) {
    throw new UnsafePatternError(
      `the pattern could backtrack too much (estimated ${estimate} steps per attempt, limit ${MAX_ATTEMPT_COST}): bound adjacent repetitions more tightly, e.g. \\d{1,12} instead of \\d+, or separate them with a character they cannot match`,
    );
  }
  let compiled: RegExp;
  try {
    compiled = new RegExp(source, 'g');
  } catch (err) {
    throw new UnsafePatternError(`not a valid regular expression after bounding repetition: ${(err as Error).message}`);
  }
  compiled.lastIndex = 0;
  if (compiled.test('')) throw new UnsafePatternError('the pattern matches the empty string, so it would match everywhere');
  return { source, cost: estimate };
}
