// Training examples into tokens and loss masks: what is learned in each shape
// (checked against the text of the tokens, not against the method that found
// them), where the boundaries fall, and every refusal with its code and message.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, type Model } from '../src/index.js';
import { tokenizeExamples, type TokenizedExample } from '../src/llama/training-data.js';
import { storiesModel, thrown, within } from './helpers.js';

let model: Model;
test.before(async () => {
  model = await within(loadModel(storiesModel));
});
test.after(() => model?.dispose());

const BOS = 1;
const EOS = 2;
const decoder = new TextDecoder();

/** The text tokens render to, piece by piece: unlike detokenize(), it keeps a first piece's leading space. */
function text(model: Model, tokens: ArrayLike<number>): string {
  const bytes = Array.from(tokens, (t) => Array.from(model.tokenPiece(t)));
  return decoder.decode(new Uint8Array(bytes.flat()));
}

/** The runs of consecutive learned tokens, and the tokens not learned (after the first). */
function split(e: TokenizedExample): { learned: number[][]; context: number[] } {
  const learned: number[][] = [];
  const context: number[] = [];
  for (let i = 1; i < e.tokens.length; i++) {
    if (!e.mask[i]) context.push(e.tokens[i]!);
    else if (e.mask[i - 1]) learned[learned.length - 1]!.push(e.tokens[i]!);
    else learned.push([e.tokens[i]!]);
  }
  return { learned, context };
}

test('{ prompt, completion }: BOS first, EOS last, the completion and EOS learned, the prompt not', () => {
  const prompt = 'Once upon a time, there was a girl named Lily.';
  const completion = ' She loved to play in the park with her dog.';
  const [e] = tokenizeExamples(model, [{ prompt, completion }], { window: 256 });
  assert.is(e!.tokens.length, e!.mask.length);
  assert.is(e!.tokens[0], BOS);
  assert.is(e!.tokens[e!.tokens.length - 1], EOS);
  assert.is(e!.mask[0], 0);
  const { learned, context } = split(e!);
  assert.is(learned.length, 1, 'one learned run');
  const answer = learned[0]!;
  assert.is(answer[answer.length - 1], EOS);
  // SentencePiece writes the text's leading space into the first piece.
  assert.is(text(model, context), ` ${prompt}`);
  assert.is(text(model, answer.slice(0, -1)), completion);
});

test('{ prompt, completion }: a word split across the boundary is learned whole', () => {
  // "ti" + "me" tokenizes as " time": the prompt's last token changes, so learning starts before it.
  const prompt = 'Once upon a ti';
  const completion = 'me there was a cat.';
  const [e] = tokenizeExamples(model, [{ prompt, completion }], { window: 256 });
  const { learned, context } = split(e!);
  assert.is(learned.length, 1);
  const before = text(model, context);
  const after = text(model, learned[0]!.slice(0, -1));
  assert.is(before + after, ` ${prompt}${completion}`);
  assert.is(before, ' Once upon a');
  assert.ok(after.endsWith(completion) && after.length > completion.length, after);
  // An empty prompt: everything after BOS is learned.
  const [whole] = tokenizeExamples(model, [{ prompt: '', completion: 'The end.' }], { window: 256 });
  assert.equal(Array.from(whole!.mask), [0, ...Array(whole!.tokens.length - 1).fill(1)]);
  assert.is(text(model, whole!.tokens.slice(1, -1)), ' The end.');
});

const conversation = [
  { role: 'system', content: 'You tell short stories.' },
  { role: 'user', content: 'Tell me about a dog.' },
  { role: 'assistant', content: 'The dog ran in the park.' },
  { role: 'user', content: 'And then?' },
  { role: 'assistant', content: 'He found a big red ball.' },
];

test('{ messages }: each assistant turn and its end marker learned; system, user and headers not', () => {
  const [e] = tokenizeExamples(model, [{ messages: conversation, task: 'ignored' }], { window: 256, template: 'chatml' });
  assert.is(e!.tokens[0], BOS);
  assert.is(e!.mask[0], 0);
  const { learned, context } = split(e!);
  assert.equal(learned.map((run) => text(model, run)), [
    'The dog ran in the park.<|im_end|>\n',
    'He found a big red ball.<|im_end|>\n',
  ]);
  assert.is(text(model, context), ' <|im_start|>system\nYou tell short stories.<|im_end|>\n'
    + '<|im_start|>user\nTell me about a dog.<|im_end|>\n<|im_start|>assistant\n'
    + '<|im_start|>user\nAnd then?<|im_end|>\n<|im_start|>assistant\n');
  // A conversation may open with the assistant: its header stays context.
  const [first] = tokenizeExamples(model, [{ messages: [{ role: 'assistant', content: 'Hello.' }] }], { window: 256, template: 'chatml' });
  const opened = split(first!);
  assert.equal(opened.learned.map((run) => text(model, run)), ['Hello.<|im_end|>\n']);
  assert.is(text(model, opened.context), ' <|im_start|>assistant\n');
});

test("{ messages, learn: 'last' }: only the final assistant turn is learned, the earlier answer is context", () => {
  const options = { window: 256, template: 'chatml' };
  const [all, last, explicit] = tokenizeExamples(model, [
    { messages: conversation },
    { messages: conversation, learn: 'last' },
    { messages: conversation, learn: 'assistant' },
  ], options);
  // The learned span, found from the template's own renderings: what rendering the whole
  // conversation adds to the rendering that stops at the final turn's header.
  const before = model.applyChatTemplate(conversation.slice(0, -1), { template: 'chatml', addAssistant: true });
  const whole = model.applyChatTemplate(conversation, { template: 'chatml', addAssistant: false });
  assert.ok(whole.startsWith(before));
  const { learned, context } = split(last!);
  assert.equal(Array.from(last!.tokens), Array.from(all!.tokens), 'the same tokens; only the mask differs');
  assert.is(learned.length, 1, 'one learned run');
  assert.is(text(model, learned[0]!), whole.slice(before.length));
  assert.is(text(model, learned[0]!), 'He found a big red ball.<|im_end|>\n');
  assert.is(last!.mask[last!.tokens.length - 1], 1, 'the run reaches the end');
  assert.is(text(model, context), ` ${before}`);
  assert.equal(Array.from(explicit!.mask), Array.from(all!.mask), "'assistant' is the default");
  assert.is(split(all!).learned.length, 2);
});

test('{ tokens, mask }: taken as given, booleans and typed arrays too; mask[0] is always 0', () => {
  const out = tokenizeExamples(model, [
    { tokens: [1, 5, 6, 7], mask: [1, 0, 1, 1] },
    { tokens: new Int32Array([9, 8, 7]), mask: [false, true, false] },
    { tokens: new Uint16Array([1, 511]), mask: new Uint8Array([0, 1]) },
  ], { window: 4 });
  assert.equal(out.map((e) => [Array.from(e.tokens), Array.from(e.mask)]), [
    [[1, 5, 6, 7], [0, 0, 1, 1]],
    [[9, 8, 7], [0, 1, 0]],
    [[1, 511], [0, 1]],
  ]);
  assert.ok(out.every((e) => e.tokens instanceof Int32Array && e.mask instanceof Uint8Array));
});

test('an example exactly as long as the window fits; one token longer does not', () => {
  const [e] = tokenizeExamples(model, [{ prompt: 'Once upon a time', completion: ' there was a cat.' }], { window: 256 });
  const n = e!.tokens.length;
  assert.is(tokenizeExamples(model, [{ prompt: 'Once upon a time', completion: ' there was a cat.' }], { window: n })[0]!.tokens.length, n);
  const err = thrown(() => tokenizeExamples(model, [{ prompt: 'Once upon a time', completion: ' there was a cat.' }], { window: n - 1 }));
  assert.is(err.code, 'INVALID_DATASET');
  assert.is(err.message, `examples[0]: is ${n} tokens long, longer than the window of ${n - 1} tokens: raise the window option (the model was trained on 2048), or shorten or split the example`);
});

const ok = { prompt: 'Once upon a time', completion: ' there was a cat.' };
const kinds = 'give one of { messages }, { prompt, completion } or { tokens, mask }';
const cases: Array<[string, unknown, string]> = [
  ['not an array', 'abc', 'Expected non-empty array of training examples for examples but received "abc" of type string'],
  ['an empty array', [], 'Expected non-empty array of training examples for examples but received an array of type object'],
  ['a number', [ok, 42], 'examples[1]: expected { messages }, { prompt, completion } or { tokens, mask } object for examples[1] but received 42 of type number'],
  ['null', [null], 'examples[0]: expected { messages }, { prompt, completion } or { tokens, mask } object for examples[0] but received null'],
  ['an array', [[ok]], 'examples[0]: expected { messages }, { prompt, completion } or { tokens, mask } object for examples[0] but received an array of type object'],
  ['a hole', [ok, , ok], 'examples[1]: expected { messages }, { prompt, completion } or { tokens, mask } object for examples[1] but received undefined of type undefined'],
  ['no shape', [{ task: 'x' }], `examples[0]: has none of messages, prompt and completion, or tokens and mask: ${kinds}`],
  ['two shapes', [{ messages: conversation, ...ok }], `examples[0]: has both messages and prompt, which belong to different kinds of example: ${kinds}`],
  ['completion and tokens', [{ completion: 'x', tokens: [1, 2] }], `examples[0]: has both completion and tokens, which belong to different kinds of example: ${kinds}`],
  ['no completion', [{ prompt: 'x' }], 'examples[0]: expected string for completion but received undefined of type undefined'],
  ['a number prompt', [{ prompt: 5, completion: 'x' }], 'examples[0]: expected string for prompt but received 5 of type number'],
  ['an empty completion', [{ prompt: 'Once', completion: '' }], 'examples[0]: the completion "" adds no token to the prompt: give a completion to learn'],
  ['messages not an array', [{ messages: 'hi' }], 'examples[0]: expected non-empty array of messages for messages but received "hi" of type string'],
  ['no messages', [{ messages: [] }], 'examples[0]: expected non-empty array of messages for messages but received an array of type object'],
  ['a message without content', [{ messages: [{ role: 'user' }] }], 'examples[0]: expected string for messages[0].content but received undefined of type undefined'],
  ['a number role', [{ messages: [{ role: 1, content: 'x' }] }], 'examples[0]: expected non-empty string for messages[0].role but received 1 of type number'],
  ['a message not an object', [{ messages: ['hi'] }], 'examples[0]: expected { role, content } object for messages[0] but received "hi" of type string'],
  ['no assistant', [{ messages: conversation.slice(0, 2) }], 'examples[0]: has no assistant message, so nothing to learn: end the conversation with { role: "assistant", content: <the answer> }'],
  ['ending with the user', [{ messages: conversation.slice(0, 4) }], 'examples[0]: the last message has role "user": end the conversation with the assistant\'s answer, the turn to learn'],
  ['learn: last, ending with the user', [ok, { messages: conversation.slice(0, 4), learn: 'last' }], 'examples[1]: with learn: "last" the final message is the one learned, but it has role "user": end the conversation with { role: "assistant", content: <the answer> }'],
  ['learn: last, ending with a tool', [{ messages: [...conversation, { role: 'tool', content: '{}' }], learn: 'last' }], 'examples[0]: with learn: "last" the final message is the one learned, but it has role "tool": end the conversation with { role: "assistant", content: <the answer> }'],
  ['an unknown learn', [{ messages: conversation, learn: 'all' }], 'examples[0]: expected "assistant" or "last" for learn but received "all" of type string'],
  ['an empty answer', [{ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: '' }] }], 'examples[0]: the last assistant message is empty: give the answer to learn as its content'],
  ['tokens not an array', [{ tokens: 'abc', mask: [1] }], 'examples[0]: expected array of token ids for tokens but received "abc" of type string'],
  ['no mask', [{ tokens: [1, 2] }], 'examples[0]: expected array of 0 and 1 (or booleans) for mask but received undefined of type undefined'],
  ['empty tokens', [{ tokens: [], mask: [] }], 'examples[0]: tokens is empty'],
  ['lengths differ', [{ tokens: [1, 2, 3], mask: [0, 1] }], 'examples[0]: tokens has 3 entries but mask has 2: give one mask entry per token'],
  ['a token past the vocabulary', [{ tokens: [1, 512], mask: [0, 1] }], 'examples[0]: expected token id between 0 and 511 for tokens[1] but received 512 of type number'],
  ['a fractional token', [{ tokens: [1, 1.5], mask: [0, 1] }], 'examples[0]: expected token id between 0 and 511 for tokens[1] but received 1.5 of type number'],
  ['a negative token', [{ tokens: [-1, 2], mask: [0, 1] }], 'examples[0]: expected token id between 0 and 511 for tokens[0] but received -1 of type number'],
  ['a string token', [{ tokens: ['1', 2], mask: [0, 1] }], 'examples[0]: expected token id between 0 and 511 for tokens[0] but received "1" of type string'],
  ['a mask of 2', [{ tokens: [1, 2], mask: [0, 2] }], 'examples[0]: expected 0, 1, true or false for mask[1] but received 2 of type number'],
  ['nothing learned', [{ tokens: [1, 2, 3], mask: [1, 0, 0] }], 'examples[0]: no token is learned: the mask is 0 at every token after the first (mask[i] = 1 marks token i as one to learn)'],
  ['a single token', [{ tokens: [1], mask: [1] }], 'examples[0]: no token is learned: the mask is 0 at every token after the first (mask[i] = 1 marks token i as one to learn)'],
  ['too many tokens', [{ tokens: new Array(2 ** 32 - 1), mask: new Array(2 ** 32 - 1) }], 'examples[0]: is 4294967295 tokens long, longer than the window of 256 tokens: raise the window option (the model was trained on 2048), or shorten or split the example'],
];

test('bad examples: INVALID_DATASET, naming the example and what is wrong', () => {
  for (const [what, examples, message] of cases) {
    const err = thrown(() => tokenizeExamples(model, examples, { window: 256, template: 'chatml' }));
    assert.is(err.code, 'INVALID_DATASET', what);
    assert.is(err.message, message, what);
  }
});

test('a template that renders a turn differently once more follow: INVALID_DATASET', () => {
  // llama.cpp's 'yandex' template ends the last assistant turn unlike the ones before it.
  const err = thrown(() => tokenizeExamples(model, [ok, { messages: conversation }], { window: 256, template: 'yandex' }));
  assert.is(err.code, 'INVALID_DATASET');
  assert.is(err.message, 'examples[1]: the chat template renders messages[2] differently once later messages follow, so the assistant\'s part of the text cannot be found: use another template (the template option) or give { tokens, mask } examples');
});

test('template and window problems keep their own codes', () => {
  const missing = thrown(() => tokenizeExamples(model, [{ messages: conversation }], { window: 256 }));
  assert.is(missing.code, 'TEMPLATE_MISSING');
  assert.is(thrown(() => tokenizeExamples(model, [{ messages: conversation }], { window: 256, template: 'no-such' })).code, 'TEMPLATE_UNSUPPORTED');
  const checks: Array<[unknown, string]> = [
    [{ window: 1 }, 'Expected integer between 2 and 1048576 for window but received 1 of type number'],
    [{}, 'Expected integer between 2 and 1048576 for window but received undefined of type undefined'],
    [{ window: 256, template: '' }, 'Expected non-empty string for template but received "" of type string'],
    [null, 'Expected object for options but received null'],
  ];
  for (const [options, message] of checks) {
    const err = thrown(() => tokenizeExamples(model, [ok], options as never));
    assert.is(err.code, 'INVALID_ARGUMENT');
    assert.is(err.message, message);
  }
});

test.run();
