// Hostile grammars and JSON schemas: deep nesting, huge repetition, literals the
// vocabulary cannot produce, empty and undefined rules, left recursion, invalid
// UTF-8, megabyte grammars, 20,000 optional properties, recursive $refs.
// Each is built on demand (some are large), by index.

export type GrammarCase = [what: string, make: () => { grammar?: string; jsonSchema?: object }];

const g = (what: string, text: () => string): GrammarCase => [what, () => ({ grammar: text() })];
const s = (what: string, schema: () => object): GrammarCase => [what, () => ({ jsonSchema: schema() })];
const nest = (depth: number, open: string, inner: string, close: string) => open.repeat(depth) + inner + close.repeat(depth);
const objectOf = (n: number, sub: (i: number) => object, required: string[] = []) => ({
  type: 'object', properties: Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, sub(i)])), required,
});

export const GRAMMARS: GrammarCase[] = [
  g('a plain literal', () => 'root ::= "Once"'),
  g('nesting 1,000 deep', () => `root ::= ${nest(1000, '( ', '"a"', ' )')}`),
  g('nesting 100,000 deep', () => `root ::= ${nest(100_000, '(', '"a"', ')')}`),
  g('a chain of 50,000 rules', () => ['root ::= r0', ...Array.from({ length: 50_000 }, (_, i) => `r${i} ::= ${i === 49_999 ? '"a"' : `"a" r${i + 1}`}`)].join('\n')),
  g('repetition {2001}', () => 'root ::= "a"{2001}'),
  g('repetition {0,100000}', () => 'root ::= "a"{0,100000}'),
  g('nested repetitions {1000} of {1000}', () => 'root ::= ( ( "a"{1000} ){1000} )'),
  g('repetition {2000,2000} of a group', () => 'root ::= ( "a" | "b" ){2000}'),
  g('repetition of an empty match', () => 'root ::= ( "a"? )*'),
  g('repetition of an empty rule', () => 'root ::= e*\ne ::= ""'),
  g('a character no token has', () => 'root ::= "\u{10FFFF}"'),
  g('a snowman and a NUL', () => 'root ::= "☃" "\\x00"'),
  g('a token id past the vocabulary', () => 'root ::= <[999999]>'),
  g('a negative token id', () => 'root ::= <[-1]>'),
  g('a token name that does not exist', () => 'root ::= <|nope|>'),
  g('an empty class', () => 'root ::= [^\\x00-\\U0010FFFF]'),
  g('a reversed range', () => 'root ::= [z-a]'),
  g('an empty root', () => 'root ::= '),
  g('an empty string literal', () => 'root ::= ""'),
  g('an empty rule used', () => 'root ::= a "x"\na ::= '),
  g('left recursion', () => 'root ::= root "a" | "a"'),
  g('indirect left recursion', () => 'root ::= a\na ::= b "x"\nb ::= root | "y"'),
  g('an undefined rule', () => 'root ::= foo'),
  g('no root rule', () => 'start ::= "a"'),
  g('unclosed group', () => 'root ::= ( "a"'),
  g('unclosed class', () => 'root ::= [a-'),
  g('unclosed literal', () => 'root ::= "a'),
  g('a dangling repetition', () => 'root ::= {3}'),
  g('a bad escape', () => 'root ::= "\\q"'),
  g('a lone surrogate', () => 'root ::= "\ud800"'),
  g('a NUL inside the text', () => 'root ::= "a"\u0000 "b"'),
  g('only NUL bytes', () => '\u0000'.repeat(1000)),
  g('an empty grammar', () => ''),
  g('a 1 MB sequence', () => `root ::= ${'"a" '.repeat(250_000)}`),
  g('a 1 MB alternation', () => `root ::= ${Array.from({ length: 100_000 }, (_, i) => `"w${i}"`).join(' | ')}`),
  g('a 1 MB rule name', () => `root ::= ${'x'.repeat(1 << 20)}\n${'x'.repeat(1 << 20)} ::= "a"`),
  g('a 1 MB comment', () => `# ${'c'.repeat(1 << 20)}\nroot ::= "a"`),
  g('10 MB of spaces', () => `root ::= "a"${' '.repeat(10 << 20)}`),
  s('20,000 optional properties', () => objectOf(20_000, () => ({ type: 'integer' }))),
  s('1,000 optional properties with one required', () => objectOf(1000, () => ({ type: 'string', maxLength: 3 }), ['p999'])),
  s('a 100,000-value enum', () => ({ enum: Array.from({ length: 100_000 }, (_, i) => `value-${i}`) })),
  s('a recursive $ref to the root', () => ({ type: 'object', properties: { next: { anyOf: [{ $ref: '#' }, { type: 'null' }] } }, required: ['next'] })),
  s('mutually recursive $refs', () => ({ $defs: { a: { type: 'array', items: { $ref: '#/$defs/b' } }, b: { anyOf: [{ $ref: '#/$defs/a' }, { type: 'integer' }] } }, $ref: '#/$defs/a' })),
  s('a left-recursive $ref', () => ({ $defs: { a: { anyOf: [{ $ref: '#/$defs/a' }, { type: 'null' }] } }, $ref: '#/$defs/a' })),
  s('a chain of 10,000 $refs', () => ({ $defs: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`d${i}`, i === 9999 ? { type: 'integer' } : { $ref: `#/$defs/d${i + 1}` }])), $ref: '#/$defs/d0' })),
  s('arrays nested 99 deep', () => { let x: object = { type: 'integer' }; for (let i = 0; i < 98; i++) x = { type: 'array', items: x }; return x; }),
  s('arrays nested 10,000 deep', () => { let x: object = { type: 'integer' }; for (let i = 0; i < 10_000; i++) x = { type: 'array', items: x }; return x; }),
  s('minItems 2000 of minItems 2000', () => ({ type: 'array', minItems: 2000, items: { type: 'array', minItems: 2000, items: { type: 'integer' } } })),
  s('maxItems 2000 of strings of maxLength 2000', () => ({ type: 'array', maxItems: 2000, items: { type: 'string', maxLength: 2000 } })),
  s('30 distinct maxLength 2000 strings', () => objectOf(30, (i) => ({ type: 'string', maxLength: 2000 - i }))),
  s('anyOf with 10,000 branches', () => ({ anyOf: Array.from({ length: 10_000 }, (_, i) => ({ const: i })) })),
  s('an unsatisfiable const', () => ({ const: '\u{10FFFF}☃' })),
  s('a schema that is false', () => ({ not: {} })),
];
