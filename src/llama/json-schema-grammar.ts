// JSON Schema → GBNF, the grammar dialect of llama.cpp's grammar sampler
// (llama_sampler_init_grammar(vocab, text, "root")).
//
// The guiding rule: every string the grammar admits must be valid for the
// schema. Where the grammar cannot express a constraint exactly it either
// narrows (admits a subset: closed objects, fixed key order, bounded digits and
// whitespace), which is harmless for generation, or throws, naming the JSON
// pointer of the part it cannot express. It never silently widens, except that
// `oneOf` is read as `anyOf` (exclusivity cannot be expressed in a CFG).
//
// Design:
// - Whitespace is `ws ::= ( " " | "\n" " "{0,8} )?`: one space, or a line break
//   with up to 8 spaces of indent (compact and indented JSON both fit), allowed
//   only between tokens and
//   never twice in a row (adjacent `ws ws` would make every blank ambiguous and
//   multiply the sampler's parse stacks). Bounded so a model cannot loop on
//   blanks forever; none before or after the root value, so generation can end
//   as soon as the value is complete.
// - Objects with `properties` are closed, whatever additionalProperties says,
//   and keep declaration order: required properties always appear, optional
//   ones may be left out. Keys in a fixed
//   order make the grammar deterministic (each key literal picks the branch).
// - Numbers: at most 16 integer digits, 16 fraction digits, 3 exponent digits
//   (more than a double carries), again so digits cannot run on forever.
// - llama.cpp rejects repetition counts above 2000 (and silently makes larger
//   maxima unbounded), so larger length/item bounds throw here. It also writes
//   out one rule per allowed repetition, so the distinct bounds of a schema
//   may add up to REPETITION_BUDGET at most.
// - The output grows linearly with the schema: objects chain their optional
//   members instead of listing every choice, large enums share their common
//   prefixes (a trie, so the sampler follows one branch instead of thousands),
//   and nesting deeper than MAX_DEPTH is refused rather than overflowing the
//   stack.
import { UnderstudyError } from '../errors.js';

type Schema = Record<string, unknown>;

const REPETITION_LIMIT = 2000;
const REPETITION_BUDGET = 50_000;
const MAX_DEPTH = 100;
// Enums up to this size stay a plain alternation (easier to read); larger ones become a trie.
const FLAT_ENUM = 32;
const ANNOTATIONS = new Set([
  '$schema', '$id', '$comment', 'title', 'description', 'default', 'examples',
  'deprecated', 'readOnly', 'writeOnly', 'definitions', '$defs',
]);
const SUPPORTED = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems',
  'enum', 'const', 'anyOf', 'oneOf', 'allOf', '$ref', 'minLength', 'maxLength', 'format', 'nullable',
]);
const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];
// Keywords that decide a schema on their own; another constraint beside them
// would need an intersection, which a grammar cannot build in general.
const EXCLUSIVE = ['$ref', 'anyOf', 'oneOf', 'allOf', 'enum', 'const'];

// Fixed rules, emitted only when used: [body, rules it refers to].
const PRIMITIVES: Record<string, [string, string[]]> = {
  // Little room on purpose: a small model given 20 free blanks at every gap
  // spends its tokens on blanks instead of the value.
  ws: [String.raw`( " " | "\n" " "{0,8} )?`, []],
  value: ['object | array | string | number | boolean | null', ['object', 'array', 'string', 'number', 'boolean', 'null']],
  object: [String.raw`"{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value )* ws )? "}"`, ['ws', 'string', 'value']],
  array: [String.raw`"[" ws ( value ( ws "," ws value )* ws )? "]"`, ['ws', 'value']],
  string: [String.raw`"\"" char* "\""`, ['char']],
  // Any character but a quote, a backslash or a control character; or an escape.
  char: [String.raw`[^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" hex{4} )`, ['hex']],
  hex: ['[0-9a-fA-F]', []],
  integer: ['"-"? ( "0" | [1-9] [0-9]{0,15} )', []],
  number: ['integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?', ['integer']],
  boolean: ['"true" | "false"', []],
  null: ['"null"', []],
  // RFC 3339 full-date and full-time (days are not checked against the month).
  date: ['[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] )', []],
  time: ['( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,9} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )', []],
  'date-string': [String.raw`"\"" date "\""`, ['date']],
  'time-string': [String.raw`"\"" time "\""`, ['time']],
  'date-time-string': [String.raw`"\"" date "T" time "\""`, ['date', 'time']],
  'uuid-string': [String.raw`"\"" [0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12} "\""`, []],
};
const FORMATS: Record<string, string> = { date: 'date-string', time: 'time-string', 'date-time': 'date-time-string', uuid: 'uuid-string' };

const isObject = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Most entries of one list (enum, required, anyOf, ...): a sparse array's length could make a scan take minutes. */
const MAX_LIST = 1_000_000;
/** A dense copy of the array `value` (holes read as undefined), or undefined if it is not one. */
function list(value: unknown, key: string, ptr: string): unknown[] | undefined {
  if (!Array.isArray(value)) return undefined;
  if (value.length > MAX_LIST) fail(`invalid "${key}" at ${ptr}: ${value.length} entries, more than the ${MAX_LIST} supported`);
  return Array.from(value);
}
const invalidArgument = (message: string, options?: { cause?: unknown }) => new UnderstudyError('INVALID_ARGUMENT', message, options);
function fail(message: string): never {
  throw invalidArgument(message);
}
const NAME = /^[a-zA-Z0-9-]+$/;
const NONE: ReadonlySet<string> = new Set();

/** A GBNF string literal for `text` (llama.cpp's escapes: \" \\ \n \r \t \xXX). */
const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const literal = (text: string) =>
  `"${text.replace(/[\x00-\x1f"\\]/g, (c) => ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`;

/** `atom` repeated min..max times (max may be Infinity), in GBNF's shortest spelling. */
function repeat(atom: string, min: number, max: number): string {
  if (max === 0) return '';
  if (max === Infinity) return min === 0 ? `${atom}*` : min === 1 ? `${atom}+` : `${atom}{${min},}`;
  if (min === 0 && max === 1) return `${atom}?`;
  if (min === 1 && max === 1) return atom;
  return min === max ? `${atom}{${min}}` : `${atom}{${min},${max}}`;
}

const seq = (...parts: string[]) => parts.filter((p) => p !== '').join(' ');
const pointerKey = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');
const childHint = (hint: string, key: string) => (hint === 'root' ? key : `${hint}-${key}`);

const IS_TYPE: Record<string, (v: unknown) => boolean> = {
  null: (v) => v === null, boolean: (v) => typeof v === 'boolean', integer: Number.isInteger,
  number: (v) => typeof v === 'number', string: (v) => typeof v === 'string', array: Array.isArray, object: isObject,
};

/** Throws unless `value` is plain JSON, so that JSON.stringify spells it exactly. */
function checkJson(value: unknown, ptr: string, depth = 0): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number' && Number.isFinite(value)) return;
  if (depth >= MAX_DEPTH && typeof value === 'object') fail(`JSON value nested deeper than ${MAX_DEPTH} levels at ${ptr}`);
  if (Array.isArray(value)) return list(value, 'const', ptr)!.forEach((v) => checkJson(v, ptr, depth + 1));
  if (isObject(value)) return Object.values(value).forEach((v) => checkJson(v, ptr, depth + 1));
  fail(`invalid JSON value ${typeof value === 'symbol' ? value.toString() : String(value)} at ${ptr}`);
}



class Converter {
  private readonly rules = new Map<string, string>(); // name → body, in output order
  private readonly byBody = new Map<string, string>(); // body → name, to share identical rules
  private readonly refs = new Map<string, string>(); // $ref → rule name
  private readonly used = new Set<string>(); // primitives in use
  private readonly suffixes = new Map<string, number>(); // base name → next suffix to try
  private readonly repeats = new Set<string>(); // distinct bounded repetitions emitted
  private repeated = 0; // the copies llama.cpp will make of them, in all
  private depth = 0; // schemas being visited, nested

  constructor(private readonly root: unknown) {}

  run(): string {
    this.rules.set('root', '');
    this.refs.set('#', 'root');
    this.rules.set('root', this.visit(this.root, '#', 'root', new Set(['#'])));
    const order = Object.keys(PRIMITIVES).filter((name) => this.used.has(name));
    const lines = [...this.rules].map(([name, body]) => `${name} ::= ${body}`);
    return [...lines, ...order.map((name) => `${name} ::= ${PRIMITIVES[name]![0]}`)].join('\n') + '\n';
  }

  private prim(name: string): string {
    if (!this.used.has(name)) {
      this.used.add(name);
      for (const dep of PRIMITIVES[name]![1]) this.prim(dep);
    }
    return name;
  }

  private fresh(hint: string): string {
    // At most 64 characters: a name follows the path of property names down to it, which a
    // schema with long keys or deep nesting would otherwise repeat at length in every rule.
    const base = hint.replace(/[^a-zA-Z0-9-]+/g, '-').replace(/-+/g, '-').slice(-64).replace(/^-|-$/g, '') || 'rule';
    let name = base;
    // Resume the suffix count where the last rule of this base stopped: counting
    // from 2 each time would make N rules of one base cost N² look-ups.
    let i = this.suffixes.get(base) ?? 2;
    while (this.rules.has(name) || name in PRIMITIVES) name = `${base}-${i++}`;
    this.suffixes.set(base, i);
    return name;
  }

  /** A rule name standing for `body`: the body itself if it is one, else a (shared) new rule. */
  private atom(hint: string, body: string): string {
    if (NAME.test(body)) return body;
    const existing = this.byBody.get(body);
    if (existing !== undefined) return existing;
    const name = this.fresh(hint);
    this.rules.set(name, body);
    this.byBody.set(body, name);
    return name;
  }

  /**
   * The GBNF body for `schema` at pointer `ptr`. `leading` holds the $refs
   * entered since the last consumed character: meeting one again would be left
   * recursion, which llama.cpp rejects (and which would never terminate).
   */
  private visit(schema: unknown, ptr: string, hint: string, leading: ReadonlySet<string>): string {
    if (this.depth >= MAX_DEPTH) fail(`schema nested deeper than ${MAX_DEPTH} levels at ${ptr.length > 200 ? `${ptr.slice(0, 200)}...` : ptr}`);
    this.depth++;
    try {
      return this.visitSchema(schema, ptr, hint, leading);
    } finally {
      this.depth--;
    }
  }

  private visitSchema(schema: unknown, ptr: string, hint: string, leading: ReadonlySet<string>): string {
    if (schema === true) return this.prim('value');
    if (schema === false) fail(`schema false admits no value at ${ptr}`);
    if (!isObject(schema)) return fail(`invalid schema at ${ptr}: expected an object or a boolean`);
    for (const key of Object.keys(schema)) {
      if (!SUPPORTED.has(key) && !ANNOTATIONS.has(key)) fail(`unsupported schema keyword "${key}" at ${ptr}`);
    }
    const nullable = schema.nullable;
    if (nullable !== undefined && typeof nullable !== 'boolean') fail(`invalid "nullable" at ${ptr}: expected a boolean`);
    const body = this.visitKeywords(schema, ptr, hint, leading);
    return nullable === true ? `${body} | ${this.prim('null')}` : body;
  }

  private visitKeywords(schema: Schema, ptr: string, hint: string, leading: ReadonlySet<string>): string {
    const main = EXCLUSIVE.find((k) => k in schema);
    if (main !== undefined) {
      // enum and const may sit beside "type" (values of other types are dropped).
      const allowed = main === 'enum' || main === 'const' ? ['type', 'nullable', main] : ['nullable', main];
      const other = Object.keys(schema).find((k) => !ANNOTATIONS.has(k) && !allowed.includes(k));
      if (other !== undefined) fail(`unsupported combination of "${main}" and "${other}" at ${ptr}`);
    }
    switch (main) {
      case '$ref': return this.ref(schema.$ref, ptr, leading);
      case 'anyOf':
      case 'oneOf':
      case 'allOf': {
        const schemas = list(schema[main], main, ptr);
        if (schemas === undefined || schemas.length === 0) return fail(`invalid "${main}" at ${ptr}: expected a non-empty array`);
        if (main === 'allOf' && schemas.length > 1) fail(`unsupported "allOf" with ${schemas.length} schemas at ${ptr} (only one schema is supported)`);
        const hintOf = (i: number) => (main === 'allOf' ? hint : childHint(hint, String(i)));
        const branches = schemas.map((s, i) => this.visit(s, `${ptr}/${main}/${i}`, hintOf(i), leading));
        // Alternation binds loosest in GBNF, so bodies join without parentheses;
        // identical branches would only add ambiguity.
        return [...new Set(branches)].join(' | ');
      }
      case 'enum':
      case 'const': return this.literals(schema, main, ptr, hint);
    }
    const types = this.types(schema, ptr);
    if (types.length === 0) return this.prim('value');
    return types
      .map((t) => (t === 'string' ? this.string(schema, ptr) : t === 'array' ? this.array(schema, ptr, hint) : t === 'object' ? this.object(schema, ptr, hint) : this.prim(t)))
      .join(' | ');
  }

  private ref(ref: unknown, ptr: string, leading: ReadonlySet<string>): string {
    if (typeof ref !== 'string') return fail(`invalid "$ref" at ${ptr}: expected a string`);
    if (ref !== '#' && !ref.startsWith('#/')) fail(`unsupported $ref "${ref}" at ${ptr} (only local refs such as #/$defs/name are supported)`);
    if (leading.has(ref)) fail(`left-recursive $ref "${ref}" at ${ptr}: the schema refers to itself before any character is produced`);
    const known = this.refs.get(ref);
    if (known !== undefined) return known;
    let target: unknown = this.root;
    for (const raw of ref === '#' ? [] : ref.slice(2).split('/')) {
      let key = raw;
      try { key = decodeURIComponent(raw); } catch { /* keep it as written */ }
      key = key.replace(/~1/g, '/').replace(/~0/g, '~');
      if (!(isObject(target) || Array.isArray(target)) || !Object.hasOwn(target, key)) fail(`unresolved $ref "${ref}" at ${ptr}`);
      target = (target as Schema)[key];
    }
    // Name the rule before visiting the target, so recursive refs can use it.
    const name = this.fresh(ref.split('/').pop() ?? 'ref');
    this.rules.set(name, '');
    this.refs.set(ref, name);
    const body = this.visit(target, ref, name, new Set([...leading, ref]));
    this.rules.set(name, body);
    if (!this.byBody.has(body)) this.byBody.set(body, name);
    return name;
  }

  private literals(schema: Schema, key: 'enum' | 'const', ptr: string, hint: string): string {
    const values = key === 'const' ? [schema.const] : list(schema.enum, 'enum', ptr);
    if (values === undefined || values.length === 0) return fail(`invalid "enum" at ${ptr}: expected a non-empty array`);
    values.forEach((v) => checkJson(v, `${ptr}/${key}`));
    const types = 'type' in schema ? this.types(schema, ptr) : undefined;
    const kept = values.filter((v) => types === undefined || types.some((t) => IS_TYPE[t]!(v)));
    if (kept.length === 0) fail(`no "${key}" value matches "type" at ${ptr}`);
    // JSON.stringify gives the compact spelling; duplicates would only add ambiguity.
    const texts = [...new Set(kept.map((v) => JSON.stringify(v)))];
    return texts.length <= FLAT_ENUM ? texts.map(literal).join(' | ') : this.trie(texts, `${hint}-enum`);
  }

  /**
   * Alternatives for many literal texts, sharing common prefixes: one rule per
   * branching point, each alternative led by a different character, so the
   * grammar grows with the total length of the texts and the sampler keeps one
   * live branch where a flat list of 100,000 values kept 100,000. Built
   * breadth-first without recursion: a trie is as deep as its longest text.
   */
  private trie(texts: string[], hint: string): string {
    // Sorted, the texts below any trie node form one run [lo, hi) sharing a
    // prefix of length `depth`; the shortest (a text ending there) comes first.
    const sorted = [...texts].sort();
    // Length of the character at `at` in UTF-16 units: a surrogate pair is never split.
    const width = (text: string, at: number) => (/[\ud800-\udbff]/.test(text[at]!) && at + 1 < text.length ? 2 : 1);
    const queue: { lo: number; hi: number; depth: number; name: string }[] = [{ lo: 0, hi: sorted.length, depth: 0, name: '' }];
    let rootBody = '';
    for (let q = 0; q < queue.length; q++) {
      const { lo, hi, depth, name } = queue[q]!;
      const ends = sorted[lo]!.length === depth;
      const alternatives: string[] = [];
      for (let i = ends ? lo + 1 : lo; i < hi;) {
        const first = sorted[i]!;
        const w = width(first, depth);
        const head = first.slice(depth, depth + w);
        let j = i + 1;
        while (j < hi && sorted[j]!.startsWith(head, depth)) j++;
        // Follow the run while all its texts go on with the same character:
        // one literal for the whole stretch.
        let d = depth + w;
        const last = sorted[j - 1]!;
        while (first.length > d) {
          const cw = width(first, d);
          if (last.length < d + cw || last.slice(d, d + cw) !== first.slice(d, d + cw)) break;
          d += cw;
        }
        const text = first.slice(depth, d);
        if (j - i === 1 && first.length === d) {
          alternatives.push(literal(text));
        } else {
          const child = this.fresh(hint);
          this.rules.set(child, ''); // reserved; filled when its turn in the queue comes
          queue.push({ lo: i, hi: j, depth: d, name: child });
          alternatives.push(`${literal(text)} ${child}`);
        }
        i = j;
      }
      const body = ends ? `( ${alternatives.join(' | ')} )?` : alternatives.join(' | ');
      if (q === 0) rootBody = body;
      else this.rules.set(name, body);
    }
    return rootBody;
  }

  /** `atom` repeated min..max times, counted against the budget of repetitions llama.cpp writes out. */
  private bounded(atom: string, min: number, max: number, key: string, ptr: string): string {
    const text = repeat(atom, min, max);
    // llama.cpp copies the atom min times and adds a rule for each optional one up to max.
    const copies = max === Infinity ? min : max;
    if (copies > 1 && !this.repeats.has(text)) {
      this.repeats.add(text);
      this.repeated += copies;
      if (this.repeated > REPETITION_BUDGET) {
        fail(`unsupported "${key}" ${copies} at ${ptr}: the schema's distinct length and item bounds add up to more than ${REPETITION_BUDGET} repetitions`);
      }
    }
    return text;
  }

  /** The listed types, or those the keywords imply (none: any JSON value). */
  private types(schema: Schema, ptr: string): string[] {
    const type = schema.type;
    if (type === undefined) {
      const has = (...keys: string[]) => keys.some((k) => k in schema);
      return [
        ...(has('properties', 'required', 'additionalProperties') ? ['object'] : []),
        ...(has('items', 'minItems', 'maxItems') ? ['array'] : []),
        ...(has('minLength', 'maxLength', 'format') ? ['string'] : []),
      ];
    }
    const names = typeof type === 'string' ? [type] : list(type, 'type', ptr);
    if (names === undefined || names.length === 0) return fail(`invalid "type" at ${ptr}: expected a type name or a non-empty array of them`);
    for (const t of names) if (typeof t !== 'string' || !TYPES.includes(t)) fail(`unknown type ${typeof t === 'string' ? JSON.stringify(t) : typeof t === 'number' || t === null ? String(t) : `(a ${typeof t})`} at ${ptr}`);
    const unique = [...new Set(names as string[])];
    // "number" already admits every integer; both would make integers ambiguous.
    return unique.includes('number') ? unique.filter((t) => t !== 'integer') : unique;
  }

  private count(schema: Schema, key: string, ptr: string): number | undefined {
    const n = schema[key];
    if (n === undefined) return undefined;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) fail(`invalid "${key}" at ${ptr}: expected a non-negative integer`);
    if ((n as number) > REPETITION_LIMIT) fail(`unsupported "${key}" ${n} at ${ptr} (llama.cpp grammars repeat at most ${REPETITION_LIMIT} times)`);
    return n as number;
  }

  private range(schema: Schema, minKey: string, maxKey: string, ptr: string): [number, number] {
    const min = this.count(schema, minKey, ptr) ?? 0;
    const max = this.count(schema, maxKey, ptr) ?? Infinity;
    if (min > max) fail(`"${minKey}" is greater than "${maxKey}" at ${ptr}: no value is possible`);
    return [min, max];
  }

  private string(schema: Schema, ptr: string): string {
    if (schema.format !== undefined) {
      const rule = typeof schema.format === 'string' ? FORMATS[schema.format] : undefined;
      if (rule === undefined) fail(`unsupported string format ${JSON.stringify(schema.format)} at ${ptr}`);
      const length = ['minLength', 'maxLength'].find((k) => k in schema);
      if (length !== undefined) fail(`unsupported combination of "format" and "${length}" at ${ptr}`);
      return this.prim(rule!);
    }
    // Lengths count grammar characters, as JSON Schema counts code points: an
    // escape such as \n is one. (An escaped surrogate pair counts as two.)
    const [min, max] = this.range(schema, 'minLength', 'maxLength', ptr);
    if (min === 0 && max === Infinity) return this.prim('string');
    return seq(String.raw`"\""`, this.bounded(this.prim('char'), min, max, 'maxLength', ptr), String.raw`"\""`);
  }

  private array(schema: Schema, ptr: string, hint: string): string {
    if (Array.isArray(schema.items)) fail(`unsupported tuple "items" (an array of schemas) at ${ptr}`);
    const [min, max] = this.range(schema, 'minItems', 'maxItems', ptr);
    this.prim('ws');
    if (max === 0) return '"[" ws "]"';
    const itemHint = childHint(hint, 'item');
    const item = schema.items === undefined ? this.prim('value') : this.atom(itemHint, this.visit(schema.items, `${ptr}/items`, itemHint, NONE));
    // The repeated unit and the optional list are rules of their own: llama.cpp
    // counts the rules that a repeated or optional group brings with it (the
    // group's, first references, the copies of a repetition inside it) against
    // its limit of 2000, so `( item ( ws "," ws item ){0,1999} ws )?` was refused.
    const next = this.atom(`${itemHint}-next`, `ws "," ws ${item}`);
    const inner = seq(item, this.bounded(next, Math.max(min - 1, 0), max - 1, 'maxItems', ptr), 'ws');
    return min === 0 ? `"[" ws ${this.atom(`${hint}-items`, inner)}? "]"` : `"[" ws ${inner} "]"`;
  }

  private object(schema: Schema, ptr: string, hint: string): string {
    const { properties, additionalProperties: extra } = schema;
    if (properties !== undefined && !isObject(properties)) fail(`invalid "properties" at ${ptr}: expected an object`);
    const required = schema.required === undefined ? [] : list(schema.required, 'required', ptr);
    if (required === undefined || required.some((r) => typeof r !== 'string')) fail(`invalid "required" at ${ptr}: expected an array of strings`);
    if (extra !== undefined && typeof extra !== 'boolean' && !isObject(extra)) fail(`invalid "additionalProperties" at ${ptr}: expected a boolean or a schema`);
    this.prim('ws');
    const value = (sub: unknown, subPtr: string, subHint: string) => this.atom(subHint, this.visit(sub, subPtr, subHint, NONE));

    // Properties in declaration order, then required names that are not declared
    // (they hold whatever additionalProperties allows).
    const names = new Set(required as string[]);
    const listed: [string, unknown, string][] = Object.entries((properties ?? {}) as Schema)
      .map(([key, sub]) => [key, sub, `${ptr}/properties/${pointerKey(key)}`]);
    const declared = new Set(listed.map(([key]) => key));
    for (const key of names) {
      if (declared.has(key)) continue;
      if (extra === false) fail(`required property ${JSON.stringify(key)} is not allowed by "additionalProperties": false at ${ptr}`);
      listed.push([key, isObject(extra) ? extra : true, `${ptr}/additionalProperties`]);
    }
    const members = listed.map(([key, sub, subPtr]) => ({
      required: names.has(key),
      kv: `${literal(JSON.stringify(key))} ws ":" ws ${value(sub, subPtr, childHint(hint, key))}`,
    }));

    if (properties === undefined && members.length === 0) {
      // No listed properties: any object, or a map whose values follow additionalProperties.
      if (extra === false) return `"{" ws "}"`;
      if (!isObject(extra)) return this.prim('object');
      const kv = `${this.prim('string')} ws ":" ws ${value(extra, `${ptr}/additionalProperties`, childHint(hint, 'value'))}`;
      return `"{" ws ( ${kv} ( ws "," ws ${kv} )* ws )? "}"`;
    }
    if (members.length === 0) return `"{" ws "}"`;
    const body = this.members(members, hint);
    return members.some((m) => m.required) ? `"{" ws ${body} ws "}"` : `"{" ws ( ${body} ws )? "}"`;
  }

  /**
   * The members of an object, in order, each optional one maybe left out, as a
   * chain of rules: "from-i" is the language of "the first member present is
   * one of i.., then the rest". Each member is spelled once, so the grammar
   * grows linearly with the number of properties (writing out every choice of
   * first member with its whole tail made it quadratic: 1,000 optional
   * properties gave 22 MB). Every alternative starts with a different key, so
   * the grammar stays deterministic.
   */
  private members(members: { required: boolean; kv: string }[], hint: string): string {
    const n = members.length;
    // requiredFrom[i]: some member at i or later is required, so "the rest" cannot be empty.
    const requiredFrom = new Array<boolean>(n + 1).fill(false);
    for (let i = n - 1; i >= 0; i--) requiredFrom[i] = members[i]!.required || requiredFrom[i + 1]!;
    let next = ''; // the rule for "from-(i+1)"
    let body = '';
    for (let i = n - 1; i >= 0; i--) {
      const m = members[i]!;
      // After member i: the next present member, led by its comma, if any.
      const rest = i + 1 === n ? '' : requiredFrom[i + 1] ? `ws "," ws ${next}` : `( ws "," ws ${next} )?`;
      const present = seq(m.kv, rest);
      // An optional member may be skipped: then the first present one comes later.
      body = !m.required && i + 1 < n ? `${present} | ${next}` : present;
      if (i > 0) next = this.atom(`${hint}-from-${i}`, body);
    }
    return body.includes(' | ') ? `( ${body} )` : body;
  }
}

/**
 * A GBNF grammar (start rule `root`) admitting JSON text valid for `schema`;
 * see the top of this file for what is supported. Throws an INVALID_ARGUMENT
 * UnderstudyError naming the JSON pointer of anything it cannot express.
 */
export function jsonSchemaToGrammar(schema: unknown): string {
  try {
    return new Converter(schema).run();
  } catch (err) {
    if (err instanceof UnderstudyError) throw err;
    // A getter or Proxy trap of the schema threw, or the schema is not plain data.
    throw invalidArgument(`could not read the JSON schema: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** A GBNF grammar for any JSON value. */
export const JSON_GRAMMAR: string = jsonSchemaToGrammar(true);
