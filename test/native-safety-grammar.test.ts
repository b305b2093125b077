// Grammars that used to kill the process or stall it: one the vocabulary cannot
// satisfy (llama.cpp threw on the scheduler thread: SIGABRT), one nested deeper
// than llama.cpp's recursive parser has stack for (SIGSEGV on the JS thread),
// one whose repetition bounds are reversed (an endless, allocating loop). Each
// now fails its own request with INVALID_GRAMMAR and a message that says why;
// the context goes on serving. The dangerous ones run in a child process.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Context, type Model } from '../src/index.js';
import { GRAMMAR_LIMITS, checkGrammar } from '../src/llama/grammar-check.js';
import { rejection, storiesModel, within } from './helpers.js';
import { inChild, nestedGrammar, type ChildResult } from './native-safety-child.js';

function exitedNormally(r: ChildResult): Record<string, Record<string, unknown>> {
  assert.is(r.signal, null, `the child died by ${r.signal}: ${r.stderr}`);
  assert.is(r.code, 0, `the child exited with ${r.code}: ${r.stderr}`);
  assert.ok(r.out, 'the child printed its result');
  return r.out as Record<string, Record<string, unknown>>;
}

const UNSATISFIABLE = /^the grammar allows no token this model can produce after \d+ generated tokens: its vocabulary cannot spell what the grammar asks for next$/;

test('a grammar the vocabulary cannot satisfy fails only its own request', async () => {
  const out = exitedNormally(await inChild('unsatisfiable'));
  for (const name of ['tokenId', 'nul']) {
    assert.is(out[name].code, 'INVALID_GRAMMAR', `${name}: ${JSON.stringify(out[name])}`);
    assert.match(out[name].message as string, UNSATISFIABLE);
  }
  // The generation running beside them on the same context, and the next one, are untouched.
  assert.type(out.ordinary.text, 'string');
  assert.ok((out.ordinary.text as string).length > 0);
  assert.is(out.after.text, out.ordinary.text);
});

test('a grammar nested past the limit: INVALID_GRAMMAR; at the limit it parses off the JS thread', async () => {
  const out = exitedNormally(await inChild('deep'));
  assert.is(out.tooDeep.code, 'INVALID_GRAMMAR');
  assert.is(out.tooDeep.message,
    `the grammar nests groups deeper than ${GRAMMAR_LIMITS.maxDepth} levels at line 1, column ${10 + GRAMMAR_LIMITS.maxDepth} (near "((((((((((((((((((((")`);
  assert.is(out.atLimit.text, 'a');
});

test('reversed repetition bounds: INVALID_GRAMMAR instead of an endless loop', async () => {
  const out = exitedNormally(await inChild('reversedRepetition'));
  assert.is(out.reversed.code, 'INVALID_GRAMMAR');
  assert.is(out.reversed.message, 'the grammar does not parse: a repetition\'s maximum 2 is below its minimum 5 at line 1, column 13 (near "{5,2}")');
});

test('size and rule limits, checked before llama.cpp sees the grammar', () => {
  const code = (grammar: string) => {
    try {
      checkGrammar(grammar);
      return 'ok';
    } catch (err) {
      return `${(err as { code: string }).code}: ${(err as Error).message}`;
    }
  };
  assert.is(code(`root ::= "${'a'.repeat(GRAMMAR_LIMITS.maxLength)}"`),
    `INVALID_GRAMMAR: the grammar is too large: ${GRAMMAR_LIMITS.maxLength + 11} characters, at most ${GRAMMAR_LIMITS.maxLength}`);
  // x{0,2000} makes 2000 rules; eleven of them pass the limit.
  const many = Array.from({ length: 11 }, (_, i) => `r${i} ::= "x"{0,2000}`).join('\n');
  assert.match(code(`root ::= r0\n${many}`), /^INVALID_GRAMMAR: the grammar has more than 20000 rules \(counting those its groups and repetitions create\) at line 11, column 11 \(near "\{0,2000\}"\)$/);
  // A flat alternation of 100,000 literals took llama.cpp 12 s to set up and 13 s a token.
  const flat = (n: number) => `root ::= ${Array.from({ length: n }, (_, i) => `"w${i}"`).join(' | ')}`;
  assert.match(code(flat(GRAMMAR_LIMITS.maxAlternatives + 1)),
    /^INVALID_GRAMMAR: the grammar has an alternation of more than 10000 choices \(llama.cpp slows with the square of that number; for many values, use jsonSchema's enum, which shares their prefixes\) at line 1, column \d+ \(near "\| \\"w10000\\""\)$/);
  assert.is(code(flat(GRAMMAR_LIMITS.maxAlternatives)), 'ok');
  assert.match(code('root ::= "a" | ("b" | [c-d]+ x)* <[12]> !<[3]> . "\\u00e9\\x41\\n" # comment\nx ::= "y"{2,} "z"{3}'), /^ok$/);
  assert.is(code('root ::= x'), 'INVALID_GRAMMAR: the grammar does not parse: it refers to rule "x", which it does not define at line 1, column 10 (near "x")');
  assert.is(code('root ::= "a\\q"'), 'INVALID_GRAMMAR: the grammar does not parse: unknown escape at line 1, column 12 (near "\\\\q\\"")');
  assert.is(code('root ::= "a"\0'), 'INVALID_GRAMMAR: the grammar does not parse: it contains a NUL character at line 1, column 13 (near "\\u0000")');
  assert.is(code('root ::= *'), 'INVALID_GRAMMAR: the grammar does not parse: a repetition has nothing before it to repeat at line 1, column 10 (near "*")');
});

let model: Model;
let ctx: Context;

test.before(async () => {
  model = await within(loadModel(storiesModel));
  ctx = await within(model.createContext({ contextSize: 256 }));
});
test.after(() => model?.dispose());

test('a grammar llama.cpp refuses fails the call asynchronously, and the context goes on', async () => {
  // It passes the syntax check (the token text is only known to the vocabulary).
  const err = await rejection(ctx.generate('Once', { grammar: 'root ::= <no-such-token>' }).result);
  assert.is(err.code, 'INVALID_GRAMMAR');
  assert.match(err.message, /^the grammar does not parse: failed to parse grammar/);
  const r = await within(ctx.complete('Once', { temperature: 0, maxTokens: 4, grammar: 'root ::= " upon"' }));
  assert.is(r.text, ' upon');
});

test('abort settles at once, even while a big grammar is still being parsed', async () => {
  // 10,000 alternatives (the most allowed): llama.cpp takes a while to set them up.
  const grammar = `root ::= ${Array.from({ length: GRAMMAR_LIMITS.maxAlternatives }, (_, i) => `"v${i}"`).join(' | ')}`;
  const g = ctx.generate('Once', { grammar, maxTokens: 2 });
  let settled = false;
  const failed = g.result.then(
    () => ({ code: 'none' }),
    (err: { code?: string }) => {
      settled = true;
      return err;
    },
  );
  g.abort();
  // No event-loop turn in between: nothing native could have answered yet.
  for (let i = 0; i < 5; i++) await null;
  assert.ok(settled, 'result settled in the same turn as abort()');
  assert.is((await failed).code, 'ABORTED');
  // The context still serves (after the parse ends, the request is dropped).
  assert.is((await within(ctx.complete('Once', { temperature: 0, maxTokens: 2, grammar: 'root ::= " upon"' }))).text, ' upon');
});

test.run();
