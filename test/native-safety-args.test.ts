// Arguments that used to kill the process inside llama.cpp: more sequences than
// one batch has room for (a GGML_ASSERT at context creation, also reached by
// `understudy embed --context-size 4`), and arrays that claim a huge length
// (std::bad_alloc while native code sized a buffer by it). Each is now refused
// with INVALID_ARGUMENT, naming the option, or works. Run in child processes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, run, storiesModel } from './helpers.js';
import { inChild, type ChildResult } from './native-safety-child.js';

function exitedNormally(r: ChildResult): Record<string, Record<string, unknown>> {
  assert.is(r.signal, null, `the child died by ${r.signal}: ${r.stderr}`);
  assert.is(r.code, 0, `the child exited with ${r.code}: ${r.stderr}`);
  assert.ok(r.out, 'the child printed its result');
  return r.out as Record<string, Record<string, unknown>>;
}

test('sequences beyond min(contextSize, batchSize): INVALID_ARGUMENT naming the option', async () => {
  const out = exitedNormally(await inChild('sequences'));
  assert.equal(out.batch, {
    code: 'INVALID_ARGUMENT',
    message: 'Expected sequences at most batchSize (1) but received 2: every sequence needs room for a token in one batch of min(contextSize, batchSize); raise batchSize or lower sequences',
  });
  assert.equal(out.context, {
    code: 'INVALID_ARGUMENT',
    message: 'Expected sequences at most contextSize (4) but received 8: every sequence needs room for a token in one batch of min(contextSize, batchSize); raise contextSize or lower sequences',
  });
  assert.is(out.embeddingContext.code, 'INVALID_ARGUMENT');
  // Left to its default, an embedding context's batch of texts shrinks to fit.
  assert.equal(out.smallEmbedding, { sequences: 4, vectors: 2 });
});

test('understudy embed --context-size 4 embeds instead of aborting', async () => {
  const r = await run(process.execPath, [cli, 'embed', '--model', storiesModel, '--context-size', '4', 'a', 'b']);
  assert.is(r.signal, null, r.stderr);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 2);
  assert.ok(lines.every((l) => JSON.parse(l).length > 0));
});

test('arrays with a huge length and one element: INVALID_ARGUMENT, quickly', async () => {
  const out = exitedNormally(await inChild('hugeLength'));
  const tooMany = { code: 'INVALID_ARGUMENT', message: 'Expected at most 100000 messages but received an array of length 2147483648' };
  assert.equal(out.chat, tooMany);
  assert.equal(out.template, tooMany);
  assert.equal(out.holey, { code: 'INVALID_ARGUMENT', message: 'Expected { role, content } object for messages[1] but received undefined of type undefined' });
  assert.equal(out.embed, { code: 'INVALID_ARGUMENT', message: 'Expected string for texts[1] but received undefined of type undefined' });
  assert.equal(out.stop, { code: 'INVALID_ARGUMENT', message: 'Expected non-empty string or array of non-empty strings for stop but received an array of type object' });
});

test.run();
