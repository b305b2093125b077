// Tokenization matches llama.cpp's own expected vectors (models/ggml-vocab-*.gguf.inp
// and .out) for every vocabulary that llama.cpp's tokenizer test runs on; the list
// is read from the vendored tests/CMakeLists.txt, not written here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../src/index.js';
import { root, vocabDir, within } from './helpers.js';

const cmake = readFileSync(join(root, 'vendor', 'llama.cpp', 'tests', 'CMakeLists.txt'), 'utf8');
const vocabs = [...cmake.matchAll(/llama_test\(test-tokenizer-0\s+NAME\s+\S+\s+ARGS\s+\S*\/models\/(ggml-vocab-[\w.-]+\.gguf)\)/g)].map((m) => m[1]);

// The same reading as llama.cpp's test: inputs separated by a marker line,
// outputs one line of space-separated ids per input.
function readCases(vocab: string): Array<{ text: string; ids: number[] }> {
  const raw = readFileSync(join(vocabDir, `${vocab}.inp`), 'utf8');
  const sep = '\n__ggml_vocab_test__\n';
  const inputs: string[] = [];
  let pos = 0;
  while (pos < raw.length) {
    const next = raw.indexOf(sep, pos);
    if (next < 0) {
      inputs.push(raw.slice(pos));
      break;
    }
    inputs.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  const outputs = readFileSync(join(vocabDir, `${vocab}.out`), 'utf8').split('\n');
  if (outputs.at(-1) === '') outputs.pop();
  assert.is(inputs.length, outputs.length, `${vocab}: .inp and .out disagree on the number of cases`);
  return inputs.map((text, i) => ({
    text,
    ids: outputs[i].trim() === '' ? [] : outputs[i].trim().split(/\s+/).map(Number),
  }));
}

test('the vendored tree lists the tokenizer vocabularies', () => {
  assert.ok(vocabs.length >= 10, `found only ${vocabs.length} vocabularies in tests/CMakeLists.txt`);
  assert.ok(vocabs.includes('ggml-vocab-llama-spm.gguf'));
});

for (const vocab of vocabs) {
  test(`tokenizer vectors: ${vocab}`, async () => {
    const cases = readCases(vocab);
    assert.ok(cases.length > 10);
    const model = await within(loadModel(join(vocabDir, vocab), { vocabOnly: true }), 120_000);
    try {
      for (const { text, ids } of cases) {
        const got = model.tokenize(text, { addSpecial: false, parseSpecial: false });
        assert.equal(got, ids, `${vocab}: ${JSON.stringify(text)}`);
      }
    } finally {
      model.dispose();
    }
  });
}

test.run();
