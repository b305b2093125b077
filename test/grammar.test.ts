// Structured output: a GBNF grammar, or a JSON schema turned into one, constrains
// sampling; the output then follows it (for JSON: parses and matches the schema),
// whatever the seed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Context, type Model } from '../src/index.js';
import { rejection, storiesModel, within } from './helpers.js';

let model: Model;
let ctx: Context;

test.before(async () => {
  model = await within(loadModel(storiesModel));
  ctx = await within(model.createContext({ contextSize: 1024 }));
});
test.after(() => model?.dispose());

test('a GBNF grammar decides the shape of the text', async () => {
  const grammar = 'root ::= " there was a " ("dog" | "cat" | "bird") " named " [A-Z] [a-z]{1,8} "."';
  for (const seed of [1, 2, 3, 4]) {
    const r = await within(ctx.complete('Once upon a time', { maxTokens: 60, temperature: 1, seed, grammar }));
    assert.match(r.text, /^ there was a (dog|cat|bird) named [A-Z][a-z]{1,8}\.$/);
    assert.is(r.stopReason, 'eos', 'the grammar, once complete, leaves only the end');
  }
});

const schema = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 12 },
    kind: { enum: ['dog', 'cat', 'bird'] },
    age: { type: 'integer' },
    happy: { type: 'boolean' },
    friends: { type: 'array', items: { type: 'string', maxLength: 8 }, maxItems: 3 },
  },
  required: ['name', 'kind', 'age', 'happy', 'friends'],
  additionalProperties: false,
};

function matchesSchema(value: unknown): boolean {
  const v = value as Record<string, unknown>;
  return typeof v === 'object' && v !== null && Object.keys(v).join() === 'name,kind,age,happy,friends' &&
    typeof v.name === 'string' && v.name.length >= 1 && v.name.length <= 12 &&
    ['dog', 'cat', 'bird'].includes(v.kind as string) && Number.isInteger(v.age) && typeof v.happy === 'boolean' &&
    Array.isArray(v.friends) && v.friends.length <= 3 && v.friends.every((f) => typeof f === 'string' && f.length <= 8);
}

test('a JSON-schema-constrained generation always parses and validates', async () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const r = await within(ctx.complete('Once upon a time', { maxTokens: 1000, temperature: 1, seed, jsonSchema: schema }), 120_000);
    assert.is(r.stopReason, 'eos', `seed ${seed}: did not finish: ${r.text}`);
    const value = JSON.parse(r.text);
    assert.ok(matchesSchema(value), `seed ${seed}: ${r.text}`);
  }
});

test('bad grammars and schemas fail the call: INVALID_GRAMMAR / INVALID_ARGUMENT', async () => {
  const failure = (options: object) => rejection(ctx.generate('x', options).result);
  const bad = await failure({ grammar: 'root ::= ("unclosed"' });
  assert.is(bad.code, 'INVALID_GRAMMAR');
  assert.is(bad.message, "the grammar does not parse: expected ')' at line 1, column 21 (at the end), to close the group opened at line 1, column 10");
  const noRoot = await failure({ grammar: 'start ::= "a"' });
  assert.is(noRoot.code, 'INVALID_GRAMMAR');
  assert.is(noRoot.message, 'the grammar does not parse: it has no rule named root, where the output starts');
  const pattern = await failure({ jsonSchema: { type: 'string', pattern: '^a+$' } });
  assert.is(pattern.code, 'INVALID_ARGUMENT');
  assert.is(pattern.message, 'jsonSchema: unsupported schema keyword "pattern" at #');
  const both = await failure({ grammar: 'root ::= "a"', jsonSchema: {} });
  assert.is(both.message, 'Expected one of grammar and jsonSchema but received both');
});

test.run();
