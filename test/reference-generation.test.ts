// Greedy generation on the real stories260K model matches, token for token, what
// llama.cpp's own llama-simple prints for the same prompts (built from the same
// vendored tree). llama-simple echoes the prompt's pieces first, BOS included,
// and ends with a newline; what lies between is the continuation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Model } from '../src/index.js';
import { llamaSimpleContinuation, storiesModel, within } from './helpers.js';

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Tom went to the park. They'];
const N = 32;
let model: Model;

test.before(async () => {
  model = await within(loadModel(storiesModel));
});
test.after(() => model?.dispose());

// llama-simple tokenizes with parse_special on; the pieces it echoes render
// special tokens (the BOS piece is "<s>").
function echoOf(prompt: string): string {
  const ids = model.tokenize(prompt, { addSpecial: true, parseSpecial: true });
  return ids.map((id) => Buffer.from(model.tokenPiece(id, { special: true })).toString('utf8')).join('');
}

for (const prompt of PROMPTS) {
  test(`greedy continuation of ${JSON.stringify(prompt)} matches llama-simple`, async () => {
    const reference = await llamaSimpleContinuation(storiesModel, prompt, N);
    const echo = echoOf(prompt);
    assert.ok(reference.startsWith(echo), `llama-simple output does not start with the prompt echo: ${JSON.stringify(reference.slice(0, 80))}`);
    assert.ok(reference.endsWith('\n'));
    const expected = reference.slice(echo.length, -1);
    assert.ok(expected.length > 20, 'llama-simple produced almost nothing');

    const context = await within(model.createContext({ contextSize: 256 }));
    try {
      const r = await within(context.complete(prompt, { maxTokens: N, temperature: 0, parseSpecial: true }));
      assert.is(r.text, expected);
      // Token for token: llama-simple prints one piece per token, and the pieces
      // of the ids we generated, one by one, spell exactly its output.
      const pieces = Buffer.concat(r.tokens.map((id) => model.tokenPiece(id, { special: true }))).toString('utf8');
      assert.is(pieces, expected);
      assert.is(r.tokens.length, r.usage.completionTokens);
      assert.ok(r.stopReason === 'maxTokens' || r.stopReason === 'eos');
    } finally {
      context.dispose();
    }
  });
}

test.run();
