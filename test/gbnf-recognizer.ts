// A small GBNF parser and recognizer for tests, so grammars can be checked
// without the native addon. The parser follows llama.cpp's (src/llama-grammar.cpp)
// and is as strict: the same escapes, rule-name characters, repetition limits
// (including its count of the rules a repetition copies, see `repeated` below),
// undefined-rule and left-recursion errors. The recognizer computes, for each
// grammar node and start position, the set of positions where a match can end
// (memoised per rule and position), which is polynomial and plenty for short
// test strings.

export type Node =
  | { kind: 'seq'; items: Node[] }
  | { kind: 'alt'; options: Node[] }
  | { kind: 'lit'; chars: number[] }
  | { kind: 'class'; negated: boolean; ranges: [number, number][] }
  | { kind: 'any' }
  | { kind: 'ref'; name: string }
  | { kind: 'rep'; node: Node; min: number; max: number };

export type Grammar = Map<string, Node>;

const REPETITION_LIMIT = 2000;
const isWord = (c: string | undefined) => c !== undefined && /[a-zA-Z0-9-]/.test(c);
const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';

/** Parses GBNF text; throws on anything llama.cpp's parser would reject. */
export function parseGrammar(text: string): Grammar {
  const src = Array.from(text); // by code point, as llama.cpp decodes UTF-8
  let pos = 0;
  const rules: Grammar = new Map();
  const refs: string[] = [];
  // llama.cpp numbers every rule name when it first meets it (defined or
  // referenced) and every rule it makes for a group or a repetition; a
  // repetition of an item that brought N new numbers with it copies N rules
  // per repetition, and more than 2000 copies in all is an error
  // ("number of rules that are going to be repeated multiplied by the new
  // repetition exceeds sane defaults").
  const symbols = new Set<string>();
  let symbolCount = 0;
  const symbol = (n: string) => {
    if (!symbols.has(n)) {
      symbols.add(n);
      symbolCount++;
    }
  };
  const error = (what: string): never => {
    throw new Error(`${what} at ${JSON.stringify(src.slice(pos, pos + 30).join(''))}`);
  };

  // Blanks and comments; newlines only where a rule cannot end (llama.cpp's newline_ok).
  const space = (newlineOk: boolean) => {
    while (pos < src.length) {
      const c = src[pos]!;
      if (c === '#') while (pos < src.length && src[pos] !== '\n' && src[pos] !== '\r') pos++;
      else if (c === ' ' || c === '\t' || (newlineOk && (c === '\n' || c === '\r'))) pos++;
      else break;
    }
  };
  const name = () => {
    const start = pos;
    while (isWord(src[pos])) pos++;
    if (pos === start) error('expecting name');
    return src.slice(start, pos).join('');
  };
  const int = () => {
    const start = pos;
    while (isDigit(src[pos])) pos++;
    if (pos === start) error('expecting integer');
    return Number(src.slice(start, pos).join(''));
  };
  const hex = (size: number) => {
    const digits = src.slice(pos, pos + size).join('');
    if (!new RegExp(`^[0-9a-fA-F]{${size}}$`).test(digits)) error(`expecting ${size} hex chars`);
    pos += size;
    return parseInt(digits, 16);
  };
  const char = (): number => {
    if (pos >= src.length) error('unexpected end of input');
    const c = src[pos++]!;
    if (c !== '\\') return c.codePointAt(0)!;
    const e = src[pos++];
    switch (e) {
      case 'x': return hex(2);
      case 'u': return hex(4);
      case 'U': return hex(8);
      case 't': return 9;
      case 'r': return 13;
      case 'n': return 10;
      case '\\': case '"': case '[': case ']': case '-': return e.codePointAt(0)!;
      default: return error('unknown escape');
    }
  };

  const sequence = (nested: boolean): Node => {
    const items: Node[] = [];
    let repeated = 1; // the rules the last item brought with it (llama.cpp's n_prev_rules)
    for (;;) {
      const c = src[pos];
      if (c === '"') {
        pos++;
        const chars: number[] = [];
        while (src[pos] !== '"') chars.push(char());
        pos++;
        items.push({ kind: 'lit', chars });
        repeated = 1;
      } else if (c === '[') {
        pos++;
        const negated = src[pos] === '^';
        if (negated) pos++;
        const ranges: [number, number][] = [];
        while (src[pos] !== ']') {
          const lo = char();
          let hi = lo;
          if (src[pos] === '-' && src[pos + 1] !== ']') {
            pos++;
            hi = char();
          }
          ranges.push([lo, hi]);
        }
        pos++;
        items.push({ kind: 'class', negated, ranges });
        repeated = 1;
      } else if (isWord(c)) {
        const ref = name();
        refs.push(ref);
        symbol(ref);
        items.push({ kind: 'ref', name: ref });
        repeated = 1;
      } else if (c === '(') {
        pos++;
        space(true);
        const before = symbolCount++;
        items.push(alternates(true));
        repeated = Math.max(1, symbolCount - before);
        if (src[pos] !== ')') error("expecting ')'");
        pos++;
      } else if (c === '.') {
        pos++;
        items.push({ kind: 'any' });
        repeated = 1;
      } else if (c === '*' || c === '+' || c === '?' || c === '{') {
        const last = items.pop() ?? error('expecting preceding item');
        pos++;
        let min = c === '+' ? 1 : 0;
        let max = c === '?' ? 1 : Infinity;
        if (c === '{') {
          space(nested);
          min = int();
          space(nested);
          if (src[pos] === '}') max = min;
          else if (src[pos] === ',') {
            pos++;
            space(nested);
            if (isDigit(src[pos])) max = int();
            space(nested);
            if (src[pos] !== '}') error("expecting '}'");
          } else error("expecting ','");
          pos++;
          // llama.cpp throws above the limit for min and silently drops larger maxima.
          if (min > REPETITION_LIMIT || (max !== Infinity && max > REPETITION_LIMIT)) error('repetition above 2000');
        }
        const copies = max !== Infinity && max > 0 ? max : Math.max(min, 1);
        if (repeated * copies > REPETITION_LIMIT) error(`a repetition copies ${repeated} rules ${copies} times, more than ${REPETITION_LIMIT}`);
        symbolCount += max === Infinity ? 1 : max - min;
        repeated *= copies;
        items.push({ kind: 'rep', node: last, min, max });
      } else {
        break;
      }
      space(nested);
    }
    return items.length === 1 ? items[0]! : { kind: 'seq', items };
  };
  const alternates = (nested: boolean): Node => {
    const options = [sequence(nested)];
    while (src[pos] === '|') {
      pos++;
      space(true);
      options.push(sequence(nested));
    }
    return options.length === 1 ? options[0]! : { kind: 'alt', options };
  };

  space(true);
  while (pos < src.length) {
    const rule = name();
    symbol(rule);
    space(false);
    if (src.slice(pos, pos + 3).join('') !== '::=') error('expecting ::=');
    pos += 3;
    space(true);
    if (rules.has(rule)) error(`rule ${rule} defined twice`); // llama.cpp would merge; we never mean to
    rules.set(rule, alternates(false));
    if (src[pos] === '\r') pos += src[pos + 1] === '\n' ? 2 : 1;
    else if (src[pos] === '\n') pos++;
    else if (pos < src.length) error('expecting newline or end');
    space(true);
  }
  for (const ref of refs) if (!rules.has(ref)) throw new Error(`undefined rule ${ref}`);
  if (!rules.has('root')) throw new Error('no root rule');
  return rules;
}

/** Whether `text` is in the language of the grammar's `root` rule. */
export function accepts(grammar: Grammar, text: string): boolean {
  const input = Array.from(text, (c) => c.codePointAt(0)!);
  const memo = new Map<string, Set<number> | 'busy'>();

  const ends = (node: Node, at: number): Set<number> => {
    switch (node.kind) {
      case 'lit': {
        const ok = node.chars.every((c, i) => input[at + i] === c);
        return ok ? new Set([at + node.chars.length]) : new Set();
      }
      case 'class': {
        const c = input[at];
        if (c === undefined) return new Set();
        const inside = node.ranges.some(([lo, hi]) => c >= lo && c <= hi);
        return inside !== node.negated ? new Set([at + 1]) : new Set();
      }
      case 'any': return at < input.length ? new Set([at + 1]) : new Set();
      case 'seq': {
        let current = new Set([at]);
        for (const item of node.items) current = union(current, (p) => ends(item, p));
        return current;
      }
      case 'alt': return union(new Set(node.options), (o) => ends(o, at));
      case 'ref': {
        const key = `${node.name}@${at}`;
        const known = memo.get(key);
        if (known === 'busy') throw new Error(`left recursion in rule ${node.name}`);
        if (known) return known;
        memo.set(key, 'busy');
        const result = ends(grammar.get(node.name)!, at);
        memo.set(key, result);
        return result;
      }
      case 'rep': {
        const result = new Set<number>(node.min === 0 ? [at] : []);
        let current = new Set([at]);
        for (let i = 1; i <= node.max && current.size > 0; i++) {
          current = union(current, (p) => ends(node.node, p));
          if (i >= node.min) {
            const fresh = [...current].filter((p) => !result.has(p));
            fresh.forEach((p) => result.add(p));
            if (node.max === Infinity) current = new Set(fresh); // stop once nothing new
          }
        }
        return result;
      }
    }
  };
  return ends({ kind: 'ref', name: 'root' }, 0).has(input.length);
}

function union<T>(from: Set<T>, f: (x: T) => Set<number>): Set<number> {
  const out = new Set<number>();
  for (const x of from) for (const y of f(x)) out.add(y);
  return out;
}
