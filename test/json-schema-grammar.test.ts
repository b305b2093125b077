// jsonSchemaToGrammar: the grammar must parse as llama.cpp would parse it, and
// admit exactly what we mean: valid instances in, invalid ones out, and the
// chosen narrowing (declaration key order, bounded whitespace) visible. Checked
// with the pure-TS recognizer in gbnf-recognizer.ts, so no native addon is needed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JSON_GRAMMAR, jsonSchemaToGrammar } from '../src/llama/json-schema-grammar.js';
import { accepts, parseGrammar } from './gbnf-recognizer.js';

/** Asserts each of `valid` is accepted and each of `invalid` rejected; returns the grammar text. */
function check(schema: unknown, valid: string[], invalid: string[]): string {
  const text = jsonSchemaToGrammar(schema);
  const grammar = parseGrammar(text);
  for (const s of valid) assert.ok(accepts(grammar, s), `should accept ${s}\n${text}`);
  for (const s of invalid) assert.not.ok(accepts(grammar, s), `should reject ${s}\n${text}`);
  return text;
}

function throwsMessage(schema: unknown, message: string): void {
  try {
    jsonSchemaToGrammar(schema);
  } catch (err) {
    assert.instance(err, Error);
    assert.is((err as Error).message, message);
    assert.is((err as { code?: string }).code, 'INVALID_ARGUMENT');
    return;
  }
  assert.unreachable(`expected an error: ${message}`);
}

test('JSON_GRAMMAR admits any JSON value and nothing else', () => {
  const grammar = parseGrammar(JSON_GRAMMAR);
  const valid = ['0', '-12.5e+3', 'true', 'null', '"a\\"b\\u00e9\\n"', '"héllo ✓"', '[]', '[1, "x", {"a": [null]}]',
    '{ }', '{"a":1,"b":{"c":[true,false]}}', '{\n  "k": "v"\n}'];
  const invalid = ['', ' 1', '1 ', '01', '1.', '.5', '+1', '"unterminated', '"raw\ncontrol"', '"bad \\q escape"',
    '[1,]', '[,1]', '{"a"}', '{"a":1,}', "{'a':1}", 'nul', 'True', '[  1]', '[\t1]', `[\n${' '.repeat(9)}1]`];
  for (const s of valid) assert.ok(accepts(grammar, s), s);
  for (const s of invalid) assert.not.ok(accepts(grammar, s), s);
  assert.ok(accepts(grammar, `[\n${' '.repeat(8)}1\n]`), 'a line break and up to 8 spaces of indent between tokens');
  assert.ok(accepts(grammar, '[ 1, 2 ]'), 'one space between tokens');
});

test('required and optional properties: declaration order, optional ones may be left out', () => {
  const schema = {
    type: 'object',
    properties: { a: { type: 'string', maxLength: 3 }, b: { type: 'integer' }, c: { type: 'boolean' } },
    required: ['b'],
  };
  check(schema,
    ['{"b":1}', '{"a":"xyz","b":-7}', '{"b":0,"c":true}', '{"a":"","b":1,"c":false}', '{ "a" : "x" ,\n "b" : 2 }'],
    [
      '{}', '{"a":"x"}', '{"c":true}', // b is required
      '{"b":1,"a":"x"}', '{"c":true,"b":1}', // keys in declaration order only
      '{"b":1,"d":2}', // closed: no other keys
      '{"b":"1"}', '{"b":1.5}', '{"b":1e3}', '{"a":"wxyz","b":1}', '{"b":1,"c":null}', // types and lengths
      '{"b":1,}', '{,"b":1}', '{"b":1 "c":true}', '{"b":1', '{"a":"xy,"b":1}', // punctuation, unterminated
    ]);
});

test('an object whose properties are all optional admits each subset in order', () => {
  const schema = { type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' }, z: { type: 'null' } } };
  check(schema,
    ['{}', '{"x":1}', '{"y":2}', '{"z":null}', '{"x":1,"z":null}', '{"x":1,"y":2,"z":null}', '{ }'],
    ['{"y":2,"x":1}', '{"x":1,"x":1}', '{,}', '{"x":1,}', '{"w":1}']);
});

test('objects without properties: any object, additionalProperties false, or a typed map', () => {
  check({ type: 'object' }, ['{}', '{"any":[1,{"b":null}]}'], ['[]', '"{}"']);
  check({ type: 'object', additionalProperties: false }, ['{}', '{ }'], ['{"a":1}']);
  check({ type: 'object', additionalProperties: { type: 'integer' } }, ['{}', '{"a":1,"b":2}'], ['{"a":"1"}', '{"a":1,}']);
  check({ type: 'object', required: ['id'] }, ['{"id":[1]}'], ['{}', '{"id":1,"x":2}']);
});

test('nested: an array of objects with enum and nullable fields', () => {
  const schema = {
    type: 'object',
    properties: {
      id: { type: 'string', format: 'uuid' },
      lines: {
        type: 'array', minItems: 1, maxItems: 2,
        items: {
          type: 'object',
          properties: {
            size: { enum: ['S', 'M', 'L'] },
            qty: { type: 'integer' },
            note: { type: 'string', nullable: true },
            tag: { type: ['string', 'null'] },
          },
          required: ['size', 'qty', 'note'],
        },
      },
      placed: { type: 'string', format: 'date-time' },
    },
    required: ['id', 'lines'],
  };
  const id = '"123e4567-e89b-12d3-a456-426614174000"';
  const line = '{"size":"M","qty":2,"note":null}';
  check(schema,
    [
      `{"id":${id},"lines":[${line}]}`,
      `{"id":${id},"lines":[${line}, {"size":"L","qty":1,"note":"gift","tag":"x"}],"placed":"2024-02-29T13:05:00Z"}`,
      `{"id":${id},"lines":[{"size":"S","qty":0,"note":"","tag":null}],"placed":"2024-01-01T00:00:00.5+05:30"}`,
    ],
    [
      `{"id":${id},"lines":[]}`, // minItems
      `{"id":${id},"lines":[${line},${line},${line}]}`, // maxItems
      `{"id":${id},"lines":[{"size":"XL","qty":2,"note":null}]}`, // enum
      `{"id":${id},"lines":[{"size":"M","qty":null,"note":null}]}`, // not nullable
      `{"id":${id},"lines":[{"size":"M","qty":2}]}`, // missing required
      `{"id":"123","lines":[${line}]}`, // uuid
      `{"id":${id},"lines":[${line}],"placed":"2024-13-01T00:00:00Z"}`, // date-time
      `{"id":${id},"lines":[${line}],"placed":"2024-01-01 00:00:00"}`,
    ]);
});

test('string formats and lengths', () => {
  check({ type: 'string', format: 'date' }, ['"2024-12-31"'], ['"2024-12-32"', '"24-12-31"', '2024-12-31']);
  check({ type: 'string', format: 'time' }, ['"23:59:59Z"', '"08:00:00.123-02:00"'], ['"24:00:00Z"', '"08:00:00"']);
  check({ type: 'string', minLength: 2, maxLength: 3 }, ['"ab"', '"a\\nb"', '"äöü"'], ['"a"', '"abcd"', '"\\n"']);
  check({ type: 'string', minLength: 1 }, ['"x"'], ['""']);
});

test('a recursive $ref (a tree) and refs through definitions and to the root', () => {
  const tree = {
    $defs: {
      node: {
        type: 'object',
        properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#/$defs/node' } } },
        required: ['name'],
      },
    },
    $ref: '#/$defs/node',
  };
  check(tree,
    ['{"name":"a"}', '{"name":"a","children":[]}', '{"name":"a","children":[{"name":"b","children":[{"name":"c"}]},{"name":"d"}]}'],
    ['{"name":"a","children":[{}]}', '{"name":"a","children":[{"name":"b","children":[{"name":1}]}]}', '{"children":[]}']);
  const list = { type: 'object', properties: { v: { type: 'integer' }, next: { anyOf: [{ $ref: '#' }, { type: 'null' }] } }, required: ['v', 'next'] };
  check(list, ['{"v":1,"next":null}', '{"v":1,"next":{"v":2,"next":null}}'], ['{"v":1,"next":{"v":2}}']);
  const old = { definitions: { pos: { type: 'integer' } }, type: 'array', items: { $ref: '#/definitions/pos' } };
  check(old, ['[1,2]'], ['[1.5]']);
});

test('anyOf, oneOf, type arrays, enum and const with any JSON values', () => {
  const schema = {
    anyOf: [
      { type: 'string', maxLength: 2 },
      { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] },
      { type: 'array', items: { oneOf: [{ type: 'boolean' }, { const: { k: [1, 'two'] } }] }, maxItems: 2 },
    ],
  };
  check(schema,
    ['"ab"', '{"n":1.5}', '[]', '[true,{"k":[1,"two"]}]'],
    ['"abc"', '{}', '[null]', '[true,true,true]', '[{"k":[1, "two"]}]', '3']);
  check({ type: ['integer', 'null'] }, ['5', 'null'], ['5.5', '"5"']);
  check({ type: 'string', enum: ['a', 1, 'b', null] }, ['"a"', '"b"'], ['1', 'null', '"c"']);
  check({ enum: ['a"b', 2.5, false] }, ['"a\\"b"', '2.5', 'false'], ['"a"', '2.50']);
  check({ allOf: [{ type: 'boolean' }], description: 'one schema' }, ['true'], ['1']);
  check(true, ['{"a":1}', '[]'], ['']);
});

test('rules are uniquely and validly named, and identical sub-schemas share one', () => {
  const short = { type: 'string', maxLength: 4 };
  const text = jsonSchemaToGrammar({
    type: 'object',
    properties: { 'first name': short, 'last/name': short, string: { type: 'array', items: short }, value: { type: 'integer', nullable: true } },
  });
  const names = text.trim().split('\n').map((line) => line.split(' ::= ')[0]!);
  assert.equal(names, [...new Set(names)]);
  for (const name of names) assert.match(name, /^[a-zA-Z0-9-]+$/);
  assert.is(names[0], 'root');
  assert.is(text.split('char{0,4}').length, 2, text); // one shared rule for both strings and the items
  assert.ok(names.includes('string-2') && names.includes('value-2'), text); // properties named like built-in rules get a suffix
  parseGrammar(text);
});

test('unsupported schemas throw, naming the JSON pointer', () => {
  throwsMessage({ type: 'object', properties: { name: { type: 'string', pattern: '^a' } } },
    'unsupported schema keyword "pattern" at #/properties/name');
  throwsMessage({ type: 'array', items: { type: 'number', minimum: 0 } }, 'unsupported schema keyword "minimum" at #/items');
  throwsMessage({ allOf: [{ type: 'string' }, { maxLength: 3 }] }, 'unsupported "allOf" with 2 schemas at # (only one schema is supported)');
  throwsMessage({ properties: { a: { $ref: 'https://example.com/s.json' } } },
    'unsupported $ref "https://example.com/s.json" at #/properties/a (only local refs such as #/$defs/name are supported)');
  throwsMessage({ $ref: '#/$defs/missing' }, 'unresolved $ref "#/$defs/missing" at #');
  throwsMessage({ $defs: { a: { anyOf: [{ $ref: '#/$defs/a' }, { type: 'null' }] } }, $ref: '#/$defs/a' },
    'left-recursive $ref "#/$defs/a" at #/$defs/a/anyOf/0: the schema refers to itself before any character is produced');
  throwsMessage({ type: 'strin' }, 'unknown type "strin" at #');
  throwsMessage({ type: 'string', format: 'email' }, 'unsupported string format "email" at #');
  throwsMessage({ type: 'string', maxLength: 5000 }, 'unsupported "maxLength" 5000 at # (llama.cpp grammars repeat at most 2000 times)');
  throwsMessage({ anyOf: [{ type: 'string' }], type: 'string' }, 'unsupported combination of "anyOf" and "type" at #');
  throwsMessage({ type: 'integer', enum: ['a'] }, 'no "enum" value matches "type" at #');
  throwsMessage({ type: 'array', items: [{ type: 'string' }] }, 'unsupported tuple "items" (an array of schemas) at #');
  throwsMessage({ properties: { 'a/b': { type: 'array', minItems: 3, maxItems: 2 } } },
    '"minItems" is greater than "maxItems" at #/properties/a~1b: no value is possible');
  throwsMessage({ properties: { x: false } }, 'schema false admits no value at #/properties/x');
});

// The conversion is linear: each property and enum value is spelled once.
const optionalProperties = (n: number, required: number[] = []) => ({
  type: 'object',
  properties: Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { type: 'integer' }])),
  required: required.map((i) => `p${i}`),
});
const bytes = (schema: unknown) => Buffer.byteLength(jsonSchemaToGrammar(schema));

test('N optional properties make a grammar linear in N (1,000 gave 22 MB before, 20,000 ran V8 out of memory)', () => {
  const ratio = bytes(optionalProperties(2000)) / bytes(optionalProperties(1000));
  assert.ok(ratio > 1.9 && ratio < 2.2, `size ratio for 2N/N properties: ${ratio}`);
  assert.ok(bytes(optionalProperties(1000)) < 200_000, `${bytes(optionalProperties(1000))} bytes`);
  const big = jsonSchemaToGrammar(optionalProperties(20_000));
  assert.ok(Buffer.byteLength(big) < 3_000_000, `${Buffer.byteLength(big)} bytes for 20,000 properties`);
  parseGrammar(big); // (the recognizer's recursion is too deep for 20,000 chained rules; 150 are checked below)
  assert.is(big.split('"\\"p19999\\""').length, 2, 'each property is spelled once');
});

test('many optional properties: each in-order subset is accepted, nothing else', () => {
  const n = 150;
  let seed = 5;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const doc = (keys: number[]) => `{${keys.map((k) => `"p${k}":${k}`).join(',')}}`;
  const all = Array.from({ length: n }, (_, i) => i);
  for (const required of [[], [0], [77], [149], [3, 90]]) {
    const text = jsonSchemaToGrammar(optionalProperties(n, required));
    const grammar = parseGrammar(text);
    for (let t = 0; t < 12; t++) {
      const keys = all.filter((k) => required.includes(k) || rnd() < 0.2);
      assert.ok(accepts(grammar, doc(keys)), `required ${required}: should accept ${doc(keys)}`);
      if (keys.length >= 2) {
        const swapped = [...keys];
        [swapped[0], swapped[1]] = [swapped[1]!, swapped[0]!];
        assert.not.ok(accepts(grammar, doc(swapped)), `out of order: ${doc(swapped)}`);
        assert.not.ok(accepts(grammar, doc([...keys, keys[0]!])), 'a repeated key');
      }
    }
    assert.is(accepts(grammar, '{}'), required.length === 0, 'the empty object');
    for (const r of required) assert.not.ok(accepts(grammar, doc(all.filter((k) => k !== r))), `missing required p${r}`);
    assert.ok(accepts(grammar, doc(all)), 'every property');
    assert.not.ok(accepts(grammar, '{"p1":1,}'), 'a trailing comma');
    assert.not.ok(accepts(grammar, '{,"p1":1}'), 'a leading comma');
    assert.not.ok(accepts(grammar, `{"p${n}":1}`), 'an undeclared key');
  }
});

test('a 100,000-value enum is linear in its text and shares prefixes', () => {
  const values = (n: number) => Array.from({ length: n }, (_, i) => `value-${i}`);
  const ratio = bytes({ enum: values(100_000) }) / bytes({ enum: values(50_000) });
  assert.ok(ratio > 1.8 && ratio < 2.3, `size ratio ${ratio}`);
  const text = jsonSchemaToGrammar({ enum: [...values(100_000), 7, null, 'é', '😀x', '😀y'] });
  assert.ok(Buffer.byteLength(text) < 1_500_000, `${Buffer.byteLength(text)} bytes`);
  const grammar = parseGrammar(text);
  for (const v of ['"value-0"', '"value-99999"', '"value-5"', '"value-50"', '7', 'null', '"é"', '"😀x"', '"😀y"']) {
    assert.ok(accepts(grammar, v), v);
  }
  for (const v of ['"value-100000"', '"value-"', '"value"', '"value-0', 'value-0', '"value-01"', '8', '"😀"', '""']) {
    assert.not.ok(accepts(grammar, v), v);
  }
  // Only the values' own prefixes branch: no alternative appears twice in one rule.
  for (const line of text.trim().split('\n')) {
    const alternatives = line.split(' ::= ')[1]!.replace(/^\( | \)\?$/g, '').split(' | ');
    const heads = alternatives.map((a) => a.split(' ')[0]);
    assert.equal(heads.length, new Set(heads).size, line);
  }
});

test('the largest bounds parse as llama.cpp parses them (it counts the rules a repeated group copies)', () => {
  const schema = { type: 'array', maxItems: 2000, items: { type: 'array', minItems: 2000, maxItems: 2000, items: { type: 'string', maxLength: 2000 } } };
  const text = jsonSchemaToGrammar(schema);
  const grammar = parseGrammar(text); // threw "a repetition copies 2002 rules 1 times" for the optional list
  assert.ok(accepts(grammar, '[]'));
  assert.ok(accepts(grammar, `[[${Array(2000).fill('"ab"').join(',')}]]`));
  assert.not.ok(accepts(grammar, `[[${Array(1999).fill('"ab"').join(',')}]]`));
  check({ type: 'array', maxItems: 1, items: { type: 'integer' } }, ['[]', '[1]', '[ 1 ]'], ['[1,2]', '[,]']);
  check({ type: 'array', minItems: 2, items: { type: 'integer' } }, ['[1,2]', '[1, 2, 3]'], ['[]', '[1]', '[1,]']);
});

test('deep nesting, cycles, huge bounds and throwing getters give INVALID_ARGUMENT', () => {
  let deep: unknown = { type: 'integer' };
  for (let i = 0; i < 150; i++) deep = { type: 'array', items: deep };
  throwsMessage(deep, `schema nested deeper than 100 levels at ${`#${'/items'.repeat(100)}`.slice(0, 200)}...`);
  const cyclic: Record<string, unknown> = { type: 'object', properties: {} };
  (cyclic.properties as Record<string, unknown>).self = cyclic;
  throwsMessage(cyclic, `schema nested deeper than 100 levels at ${`#${'/properties/self'.repeat(100)}`.slice(0, 200)}...`);
  let value: unknown = 1;
  for (let i = 0; i < 150; i++) value = [value];
  throwsMessage({ const: value }, 'JSON value nested deeper than 100 levels at #/const');
  const strings = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`s${i}`, { type: 'string', maxLength: 2000 - i }]));
  throwsMessage({ type: 'object', properties: strings },
    'unsupported "maxLength" 1975 at #/properties/s25: the schema\'s distinct length and item bounds add up to more than 50000 repetitions');
  // The same bound repeated costs nothing more: llama.cpp shares the rule.
  const same = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`s${i}`, { type: 'string', maxLength: 2000 }]));
  parseGrammar(jsonSchemaToGrammar({ type: 'object', properties: same }));
  throwsMessage({ type: 'object', get properties() { throw new Error('boom'); } }, 'could not read the JSON schema: boom');
  throwsMessage({ enum: [1n] }, 'invalid JSON value 1 at #/enum');
  // Sparse arrays with a huge length are refused before anything walks them.
  throwsMessage({ type: 'object', required: new Array(2 ** 32 - 1) },
    'invalid "required" at #: 4294967295 entries, more than the 1000000 supported');
  throwsMessage({ enum: new Array(2 ** 32 - 1) }, 'invalid "enum" at #: 4294967295 entries, more than the 1000000 supported');
  throwsMessage({ anyOf: new Array(2 ** 32 - 1) }, 'invalid "anyOf" at #: 4294967295 entries, more than the 1000000 supported');
  throwsMessage({ type: 'object', required: ['a', , 'b'] }, 'invalid "required" at #: expected an array of strings'); // eslint-disable-line no-sparse-arrays
  throwsMessage({ type: [Symbol('x')] }, 'unknown type (a symbol) at #');
  // Rule names stay short whatever the keys: the grammar is linear in the schema.
  const long = jsonSchemaToGrammar({ type: 'object', properties: { ['k'.repeat(100_000)]: { type: 'object', properties: { ['j'.repeat(100_000)]: { type: 'string', maxLength: 3 } } } } });
  for (const line of long.trim().split('\n')) assert.ok(line.split(' ::= ')[0]!.length <= 64, line.slice(0, 100));
  assert.ok(long.length < 250_000, `${long.length} characters`);
});

test.run();
