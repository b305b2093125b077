// Chat: formatting with the model's own template (from its GGUF) or a named one,
// a clear error when there is none, generation of the assistant's turn, and
// reuse of the cached conversation prefix across turns.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type ChatMessage } from '../src/index.js';
import { rejection, storiesModel, thrown, tinyModel, within } from './helpers.js';

const CHATML_JINJA = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const conversation: ChatMessage[] = [
  { role: 'system', content: 'You tell stories.' },
  { role: 'user', content: 'Tell me about a dog.' },
];

test('a model without a chat template: TEMPLATE_MISSING, naming both ways out', async () => {
  const model = await within(loadModel(storiesModel));
  try {
    const ctx = await within(model.createContext({ contextSize: 256 }));
    // Reported the asynchronous way: on `result` and on iteration, never thrown.
    const g = ctx.chat(conversation);
    const err = await rejection(g.result);
    assert.is(err.code, 'TEMPLATE_MISSING');
    assert.is((await rejection((async () => { for await (const _ of g); })())).code, 'TEMPLATE_MISSING');
    assert.match(err.message, /the model has no chat template .*pass a template.*or format the prompt yourself and call generate\(\)/);
  } finally {
    model.dispose();
  }
});

test('a named template formats as that template is defined', async () => {
  const model = await within(loadModel(storiesModel, { vocabOnly: true }));
  try {
    const text = model.applyChatTemplate(conversation, { template: 'chatml' });
    assert.is(text, '<|im_start|>system\nYou tell stories.<|im_end|>\n<|im_start|>user\nTell me about a dog.<|im_end|>\n<|im_start|>assistant\n');
    assert.is(thrown(() => model.applyChatTemplate(conversation, { template: 'no-such-template' })).code, 'TEMPLATE_UNSUPPORTED');
    assert.is(thrown(() => model.applyChatTemplate([{ role: 'user' } as never])).message,
      'Expected string for messages[0].content but received undefined of type undefined');
  } finally {
    model.dispose();
  }
});

test('the model\'s own template is used by default, and chat equals generate on the formatted prompt', async () => {
  const path = await tinyModel('chat', { chatTemplate: CHATML_JINJA });
  const model = await within(loadModel(path));
  try {
    assert.is(model.info.chatTemplate, CHATML_JINJA);
    const formatted = model.applyChatTemplate(conversation);
    assert.ok(formatted.startsWith('<|im_start|>system\nYou tell stories.'));
    const ctx = await within(model.createContext({ contextSize: 512 }));
    const chunks: string[] = [];
    const g = ctx.chat(conversation, { maxTokens: 12, temperature: 0, ignoreEos: true });
    for await (const c of g) chunks.push(c);
    const r = await within(g.result);
    assert.is(chunks.join(''), r.text);
    ctx.clearCache();
    const direct = await within(ctx.complete(formatted, { maxTokens: 12, temperature: 0, ignoreEos: true, parseSpecial: true }));
    assert.is(direct.text, r.text);
  } finally {
    model.dispose();
  }
});

test('a follow-up turn reuses the cached conversation', async () => {
  const model = await within(loadModel(storiesModel));
  try {
    const ctx = await within(model.createContext({ contextSize: 512 }));
    const first = await within(ctx.chat(conversation, { template: 'chatml', maxTokens: 16, temperature: 0 }).result);
    const next = [...conversation, { role: 'assistant', content: first.text }, { role: 'user', content: 'And then?' }];
    const second = await within(ctx.chat(next, { template: 'chatml', maxTokens: 16, temperature: 0 }).result);
    const firstPrompt = model.tokenize(model.applyChatTemplate(conversation, { template: 'chatml' }), { parseSpecial: true }).length;
    assert.ok(second.reusedPromptTokens >= firstPrompt - 1, `reused ${second.reusedPromptTokens} of ${firstPrompt}`);
  } finally {
    model.dispose();
  }
});

test.run();
