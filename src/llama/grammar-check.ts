// A GBNF grammar checked in one linear pass before it reaches llama.cpp: the
// same syntax as llama.cpp's parser (src/llama-grammar.cpp), so a mistake gets a
// message with its line and column, and limits that keep llama.cpp's parser
// safe. That parser recurses once per nesting level of groups and, in its
// left-recursion check, once per rule in a chain; it expands `x{m,n}` into
// copies and rules; and its set-up time grows with the square of a rule chain's
// length. Past these limits the grammar is refused with INVALID_GRAMMAR.
import { UnderstudyError } from '../errors.js';

export const GRAMMAR_LIMITS = Object.freeze({
  /** Characters of GBNF text. */
  maxLength: 4 * 1024 * 1024,
  /**
   * Groups `( ... )` inside one another. llama.cpp's parser needs about 420 bytes
   * of stack per level; it runs on threads with a 64 MiB stack, and 8 MiB (the
   * usual default) overflowed between 16,000 and 20,000 levels.
   */
  maxDepth: 1000,
  /**
   * Rules, counting those that groups and repetitions create. A chain of 20,000
   * rules, each starting with the next, takes llama.cpp about 8 s to set up.
   */
  maxRules: 20_000,
  /** Grammar elements after repetitions are expanded (each takes 8 bytes, and more to match). */
  maxElements: 16_000_000,
  /**
   * Choices in one alternation `a | b | ...`. llama.cpp keeps a parse stack per
   * live choice and compares them pairwise: 10,000 choices take it 0.4 s to set
   * up and about 0.1 s per token; 100,000 took 12 s, and 13 s per token.
   */
  maxAlternatives: 10_000,
});

// llama.cpp's cap on repetitions (MAX_REPETITION_THRESHOLD).
const MAX_REPETITIONS = 2000;

const QUOTE = 0x22, HASH = 0x23, LPAREN = 0x28, RPAREN = 0x29, STAR = 0x2a, PLUS = 0x2b, COMMA = 0x2c,
  DASH = 0x2d, DOT = 0x2e, COLON = 0x3a, LT = 0x3c, EQ = 0x3d, GT = 0x3e, QMARK = 0x3f, LBRACKET = 0x5b,
  BACKSLASH = 0x5c, RBRACKET = 0x5d, CARET = 0x5e, LBRACE = 0x7b, PIPE = 0x7c, RBRACE = 0x7d, BANG = 0x21,
  SPACE = 0x20, TAB = 0x09, LF = 0x0a, CR = 0x0d;

// Characters of a string that need no escape handling.
const PLAIN_RUN = /[^"\\]+/y;

const HEX_DIGITS: Record<number, number> = { 0x78: 2, 0x75: 4, 0x55: 8 }; // \x \u \U
const SIMPLE_ESCAPES = new Set([0x74, 0x72, 0x6e, BACKSLASH, QUOTE, LBRACKET, RBRACKET, DASH]); // t r n \ " [ ] -

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isWord(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === DASH || isDigit(c);
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** What the sequence being read has just seen, for the repetition that may follow. */
interface Sequence {
  /** Elements in the item a repetition would repeat (0: nothing to repeat). */
  item: number;
}

interface Group {
  outer: Sequence;
  nested: boolean;
  at: number;
  alternatives: number;
}

/** Throws INVALID_GRAMMAR when `text` is not a grammar llama.cpp can safely parse. */
export function checkGrammar(text: string): void {
  if (text.length > GRAMMAR_LIMITS.maxLength) {
    throw new UnderstudyError('INVALID_GRAMMAR',
      `the grammar is too large: ${text.length} characters, at most ${GRAMMAR_LIMITS.maxLength}`);
  }
  new Scanner(text).run();
}

class Scanner {
  #src: string;
  #pos = 0;
  #defined = new Set<string>();
  #refs = new Map<string, number>();
  #rules = 0;
  #elements = 0;

  constructor(src: string) {
    this.#src = src;
  }

  run(): void {
    const nul = this.#src.indexOf('\0');
    if (nul >= 0) this.#fail('it contains a NUL character', nul);
    this.#space(true);
    while (this.#pos < this.#src.length) this.#rule();
    for (const [name, at] of this.#refs) {
      if (!this.#defined.has(name)) this.#fail(`it refers to rule "${name}", which it does not define`, at);
    }
    if (!this.#defined.has('root')) {
      throw new UnderstudyError('INVALID_GRAMMAR', 'the grammar does not parse: it has no rule named root, where the output starts');
    }
  }

  #rule(): void {
    const name = this.#name('a rule name');
    this.#space(false);
    if (this.#at() !== COLON || this.#at(this.#pos + 1) !== COLON || this.#at(this.#pos + 2) !== EQ) this.#fail("expected '::='");
    this.#pos += 3;
    this.#defined.add(name);
    this.#addRules(1);
    this.#space(true);
    this.#alternates();
    const c = this.#at();
    if (c === CR) this.#pos += this.#at(this.#pos + 1) === LF ? 2 : 1;
    else if (c === LF) this.#pos++;
    else if (this.#pos < this.#src.length) this.#fail('expected a newline or the end after the rule');
    this.#space(true);
  }

  // A rule's right-hand side: alternatives of sequences, with groups kept on an
  // explicit stack (not by recursion), so any depth is measured safely.
  #alternates(): void {
    const groups: Group[] = [];
    let nested = false;
    let seq: Sequence = { item: 0 };
    let alternatives = 1;
    for (;;) {
      const c = this.#at();
      if (c === QUOTE) {
        this.#pos++;
        let n = 0;
        for (;;) {
          // Plain characters in one step (each UTF-16 unit counted as an element: an estimate).
          PLAIN_RUN.lastIndex = this.#pos;
          if (PLAIN_RUN.test(this.#src)) {
            n += PLAIN_RUN.lastIndex - this.#pos;
            this.#pos = PLAIN_RUN.lastIndex;
          }
          if (this.#at() === QUOTE) break;
          if (this.#pos >= this.#src.length) this.#fail('a string is never closed');
          this.#char();
          n++;
        }
        this.#pos++;
        this.#item(seq, n, nested);
      } else if (c === LBRACKET) {
        this.#pos++;
        if (this.#at() === CARET) this.#pos++;
        let n = 0;
        while (this.#at() !== RBRACKET) {
          if (this.#pos >= this.#src.length) this.#fail('a character class is never closed');
          this.#char();
          n++;
          if (this.#at() === DASH && this.#at(this.#pos + 1) !== RBRACKET) {
            this.#pos++;
            if (this.#pos >= this.#src.length) this.#fail('it ends inside a character range');
            this.#char();
            n++;
          }
        }
        this.#pos++;
        this.#item(seq, n, nested);
      } else if (c === LT || c === BANG) {
        this.#token();
        this.#item(seq, 1, nested);
      } else if (isWord(c)) {
        const at = this.#pos;
        const name = this.#name('a rule name');
        if (!this.#refs.has(name)) this.#refs.set(name, at);
        this.#item(seq, 1, nested);
      } else if (c === LPAREN) {
        if (groups.length >= GRAMMAR_LIMITS.maxDepth) {
          this.#limit(`nests groups deeper than ${GRAMMAR_LIMITS.maxDepth} levels`);
        }
        groups.push({ outer: seq, nested, at: this.#pos, alternatives });
        this.#addRules(1);
        this.#pos++;
        this.#space(true);
        nested = true;
        seq = { item: 0 };
        alternatives = 1;
      } else if (c === DOT) {
        this.#pos++;
        this.#item(seq, 1, nested);
      } else if (c === STAR || c === PLUS || c === QMARK) {
        const at = this.#pos++;
        this.#space(nested);
        this.#repeat(seq, c === PLUS ? 1 : 0, c === QMARK ? 1 : Infinity, at);
      } else if (c === LBRACE) {
        this.#braces(seq, nested);
      } else if (c === PIPE) {
        if (++alternatives > GRAMMAR_LIMITS.maxAlternatives) {
          this.#limit(`has an alternation of more than ${GRAMMAR_LIMITS.maxAlternatives} choices (llama.cpp slows with the square of that number; for many values, use jsonSchema's enum, which shares their prefixes)`);
        }
        this.#pos++;
        this.#space(true);
        seq = { item: 0 };
      } else if (!nested) {
        return;
      } else {
        const group = groups.pop()!;
        if (c !== RPAREN) this.#fail("expected ')'", this.#pos, `, to close the group opened at ${this.#where(group.at)}`);
        this.#pos++;
        seq = group.outer;
        nested = group.nested;
        alternatives = group.alternatives;
        this.#item(seq, 1, nested);
      }
    }
  }

  // One item of a sequence (a string, a class, a token, a rule or a group).
  #item(seq: Sequence, elements: number, nested: boolean): void {
    seq.item = elements;
    this.#addElements(elements);
    this.#space(nested);
  }

  // `{m}`, `{m,}` or `{m,n}`.
  #braces(seq: Sequence, nested: boolean): void {
    const at = this.#pos;
    this.#pos++;
    this.#space(nested);
    const min = this.#int();
    this.#space(nested);
    let max = Infinity;
    if (this.#at() === RBRACE) {
      max = min;
    } else if (this.#at() === COMMA) {
      this.#pos++;
      this.#space(nested);
      if (isDigit(this.#at())) {
        max = this.#int();
        this.#space(nested);
      }
      if (this.#at() !== RBRACE) this.#fail("expected '}'");
    } else {
      this.#fail("expected ',' or '}'");
    }
    this.#pos++;
    this.#space(nested);
    if (min > MAX_REPETITIONS) this.#fail(`an item is repeated ${min} times: llama.cpp allows at most ${MAX_REPETITIONS}`, at);
    // llama.cpp reads a maximum above its cap as no maximum.
    if (max > MAX_REPETITIONS) max = Infinity;
    // llama.cpp would count max - min rules in unsigned arithmetic: a wrapped,
    // near-endless loop.
    if (max < min) this.#fail(`a repetition's maximum ${max} is below its minimum ${min}`, at);
    this.#repeat(seq, min, max, at);
  }

  // Mirrors llama.cpp's rewrite of S{m,n}: S copied m times, then n - m optional
  // rules (one for no maximum), each holding S again.
  #repeat(seq: Sequence, min: number, max: number, at: number): void {
    if (seq.item === 0) this.#fail('a repetition has nothing before it to repeat', at);
    const optional = max === Infinity ? 1 : max - min;
    this.#addRules(optional, at);
    this.#addElements(seq.item * (Math.max(min, 1) - 1 + optional) + 3 * optional, at);
    seq.item = seq.item * min + (optional > 0 ? 1 : 0);
  }

  #token(): void {
    if (this.#at() === BANG) this.#pos++;
    if (this.#at() !== LT) this.#fail("expected '<'");
    this.#pos++;
    if (this.#at() === LBRACKET) {
      this.#pos++;
      this.#int();
      if (this.#at() !== RBRACKET) this.#fail("expected ']'");
      this.#pos++;
      if (this.#at() !== GT) this.#fail("expected '>'");
      this.#pos++;
      return;
    }
    const end = this.#src.indexOf('>', this.#pos);
    if (end < 0) this.#fail("expected '>' to close the token");
    this.#pos = end + 1;
  }

  // One character of a string or class: an escape, or one code point.
  #char(): void {
    if (this.#at() !== BACKSLASH) {
      const c = this.#src.codePointAt(this.#pos)!;
      this.#pos += c > 0xffff ? 2 : 1;
      return;
    }
    const e = this.#at(this.#pos + 1);
    const hex = HEX_DIGITS[e];
    if (hex !== undefined) {
      for (let i = 0; i < hex; i++) {
        if (!isHex(this.#at(this.#pos + 2 + i))) this.#fail(`expected ${hex} hex digits after \\${String.fromCharCode(e)}`);
      }
      this.#pos += 2 + hex;
    } else if (SIMPLE_ESCAPES.has(e)) {
      this.#pos += 2;
    } else {
      this.#fail('unknown escape');
    }
  }

  #int(): number {
    const start = this.#pos;
    while (isDigit(this.#at())) this.#pos++;
    if (this.#pos === start) this.#fail('expected an integer');
    return Number(this.#src.slice(start, this.#pos));
  }

  #name(what: string): string {
    const start = this.#pos;
    while (isWord(this.#at())) this.#pos++;
    if (this.#pos === start) this.#fail(`expected ${what}`);
    return this.#src.slice(start, this.#pos);
  }

  // Blanks and # comments; newlines only where the grammar allows them.
  #space(newlines: boolean): void {
    for (;;) {
      const c = this.#at();
      if (c === SPACE || c === TAB || (newlines && (c === LF || c === CR))) {
        this.#pos++;
      } else if (c === HASH) {
        while (this.#pos < this.#src.length && this.#at() !== LF && this.#at() !== CR) this.#pos++;
      } else {
        return;
      }
    }
  }

  #addRules(n: number, at = this.#pos): void {
    this.#rules += n;
    if (this.#rules > GRAMMAR_LIMITS.maxRules) {
      this.#limit(`has more than ${GRAMMAR_LIMITS.maxRules} rules (counting those its groups and repetitions create)`, at);
    }
  }

  #addElements(n: number, at = this.#pos): void {
    this.#elements += n;
    if (this.#elements > GRAMMAR_LIMITS.maxElements) {
      this.#limit(`expands to more than ${GRAMMAR_LIMITS.maxElements} elements (repetitions copy what they repeat)`, at);
    }
  }

  // The code unit at `i`; 0 past the end (where llama.cpp sees the C string's NUL).
  #at(i = this.#pos): number {
    return i < this.#src.length ? this.#src.charCodeAt(i) : 0;
  }

  #where(i: number): string {
    let line = 1;
    let lineStart = 0;
    for (let k = this.#src.indexOf('\n'); k >= 0 && k < i; k = this.#src.indexOf('\n', k + 1)) {
      line++;
      lineStart = k + 1;
    }
    return `line ${line}, column ${i - lineStart + 1}`;
  }

  // A mistake in the text: what llama.cpp's parser would refuse.
  #fail(what: string, at = this.#pos, then = ''): never {
    this.#throw(`does not parse: ${what}`, at, then);
  }

  // A grammar that parses but is past GRAMMAR_LIMITS.
  #limit(what: string, at = this.#pos): never {
    this.#throw(what, at);
  }

  #throw(what: string, at: number, then = ''): never {
    const near = this.#src.slice(at, at + 20).split(/[\r\n]/)[0].replace(/\s+/g, ' ');
    throw new UnderstudyError('INVALID_GRAMMAR',
      `the grammar ${what} at ${this.#where(at)}${near ? ` (near ${JSON.stringify(near)})` : at < this.#src.length ? ' (at the end of the line)' : ' (at the end)'}${then}`);
  }
}
