// Training examples as the user gives them, turned into tokens and a loss mask:
// which tokens the adapter learns to predict and which are only context.
// Every bad example is refused here, before any native training call, with
// INVALID_DATASET naming it: `examples[7]: ...`.
import { UnderstudyError } from '../errors.js';
import * as v from '../validate.js';
import { formatChat, MAX_MESSAGES, type ChatMessage } from './chat.js';
import type { Model } from './model.js';

/** One example, as the user gives it. */
export type TrainingExample =
  /**
   * Formatted with the model's chat template (or options.template). Loss on
   * every assistant turn (learn: 'assistant', the default), or on the final
   * message only (learn: 'last'; it must be the assistant's): earlier answers
   * are then context, as when a logged conversation's history came from elsewhere.
   */
  | { messages: Array<{ role: string; content: string }>; learn?: 'assistant' | 'last' }
  /** Loss on the completion and the end-of-sequence token after it. */
  | { prompt: string; completion: string }
  /** mask[i] = 1: token i is learned (predicted from the tokens before it); mask[0] is ignored. */
  | { tokens: ArrayLike<number>; mask: ArrayLike<number | boolean> };

export interface TokenizedExample {
  tokens: Int32Array;
  /** Same length as tokens; mask[0] is always 0 (nothing comes before the first token). */
  mask: Uint8Array;
}

export interface TokenizeExamplesOptions {
  /** A chat template for { messages } examples: a llama.cpp built-in name or Jinja text. */
  template?: string;
  /** Tokens one training window holds; no example may be longer. */
  window: number;
}

/** Largest window accepted: far beyond any model's context, small enough that a window's arrays can be allocated. */
export const MAX_WINDOW = 1 << 20;

/** Tokenizes and checks every example; INVALID_DATASET names the example: `examples[7]: ...`. */
export function tokenizeExamples(model: Model, examples: unknown, options: TokenizeExamplesOptions): TokenizedExample[] {
  const o = v.options(options);
  if (o.window === undefined) v.fail(`integer between 2 and ${MAX_WINDOW}`, 'window', o.window);
  const window = v.integer(o.window, 'window', 0, 2, MAX_WINDOW);
  const template = o.template === undefined ? undefined : v.nonEmptyString(o.template, 'template');
  if (!Array.isArray(examples) || examples.length === 0) {
    throw datasetError(`Expected non-empty array of training examples for examples but received ${v.describeValue(examples)}`);
  }
  const tokenizer = new Tokenizer(model, template);
  const out: TokenizedExample[] = [];
  // By index: a sparse array fails at its first hole rather than being skipped.
  for (let i = 0; i < examples.length; i++) {
    const example = tokenizeOne(tokenizer, examples[i], i, window);
    checkLearnable(example, i, window, tokenizer.trained);
    out.push(example);
  }
  return out;
}

export function datasetError(message: string): UnderstudyError {
  return new UnderstudyError('INVALID_DATASET', message);
}

function bad(index: number, expected: string, name: string, value: unknown): never {
  throw datasetError(`examples[${index}]: expected ${expected} for ${name} but received ${v.describeValue(value)}`);
}

// The three shapes, told apart by their keys; other keys (such as the `task`
// that `understudy dataset export` writes) are ignored.
function tokenizeOne(tokenizer: Tokenizer, example: unknown, index: number, window: number): TokenizedExample {
  if (!v.isPlainObject(example)) {
    bad(index, '{ messages }, { prompt, completion } or { tokens, mask } object', `examples[${index}]`, example);
  }
  const messages: unknown = example.messages;
  const prompt: unknown = example.prompt;
  const completion: unknown = example.completion;
  const tokens: unknown = example.tokens;
  const mask: unknown = example.mask;
  // The first key present of each kind of example.
  const kinds = [
    messages !== undefined ? 'messages' : undefined,
    prompt !== undefined ? 'prompt' : completion !== undefined ? 'completion' : undefined,
    tokens !== undefined ? 'tokens' : mask !== undefined ? 'mask' : undefined,
  ].filter((k) => k !== undefined);
  const kindsHelp = 'give one of { messages }, { prompt, completion } or { tokens, mask }';
  if (kinds.length > 1) {
    throw datasetError(`examples[${index}]: has both ${kinds[0]} and ${kinds[1]}, which belong to different kinds of example: ${kindsHelp}`);
  }
  if (kinds.length === 0) {
    throw datasetError(`examples[${index}]: has none of messages, prompt and completion, or tokens and mask: ${kindsHelp}`);
  }
  if (messages !== undefined) {
    const learn: unknown = example.learn;
    if (learn !== undefined && learn !== 'assistant' && learn !== 'last') bad(index, '"assistant" or "last"', 'learn', learn);
    return tokenizer.conversation(checkConversation(messages, index, learn === 'last'), index, window, learn === 'last');
  }
  if (prompt !== undefined || completion !== undefined) {
    if (typeof prompt !== 'string') bad(index, 'string', 'prompt', prompt);
    if (typeof completion !== 'string') bad(index, 'string', 'completion', completion);
    return tokenizer.completion(prompt, completion, index);
  }
  return checkTokens(tokens, mask, index, window, tokenizer);
}

// What makes a conversation worth training on: assistant turns to learn, the
// last of them the end of it (a trailing user turn would be context for nothing).
// With learn: 'last' the final message is the one turn learned, so it must be the assistant's.
function checkConversation(messages: unknown, index: number, lastOnly: boolean): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) bad(index, 'non-empty array of messages', 'messages', messages);
  if (messages.length > MAX_MESSAGES) {
    throw datasetError(`examples[${index}]: has ${messages.length} messages, more than the ${MAX_MESSAGES} a conversation may have`);
  }
  const out: ChatMessage[] = [];
  for (let m = 0; m < messages.length; m++) {
    const message: unknown = messages[m];
    if (!v.isPlainObject(message)) bad(index, '{ role, content } object', `messages[${m}]`, message);
    const role: unknown = message.role;
    const content: unknown = message.content;
    if (typeof role !== 'string' || role.length === 0) bad(index, 'non-empty string', `messages[${m}].role`, role);
    if (typeof content !== 'string') bad(index, 'string', `messages[${m}].content`, content);
    out.push({ role, content });
  }
  const last = out[out.length - 1]!;
  if (!out.some((m) => m.role === 'assistant')) {
    throw datasetError(`examples[${index}]: has no assistant message, so nothing to learn: end the conversation with { role: "assistant", content: <the answer> }`);
  }
  if (last.role !== 'assistant' && lastOnly) {
    throw datasetError(`examples[${index}]: with learn: "last" the final message is the one learned, but it has role ${v.showValue(last.role)}: end the conversation with { role: "assistant", content: <the answer> }`);
  }
  if (last.role !== 'assistant') {
    throw datasetError(`examples[${index}]: the last message has role ${v.showValue(last.role)}: end the conversation with the assistant's answer, the turn to learn`);
  }
  if (last.content.length === 0) {
    throw datasetError(`examples[${index}]: the last assistant message is empty: give the answer to learn as its content`);
  }
  return out;
}

function checkTokens(tokens: unknown, mask: unknown, index: number, window: number, tokenizer: Tokenizer): TokenizedExample {
  const { vocabSize } = tokenizer;
  const t = arrayLike(tokens, index, 'tokens', 'array of token ids');
  const m = arrayLike(mask, index, 'mask', 'array of 0 and 1 (or booleans)');
  if (t.length === 0) throw datasetError(`examples[${index}]: tokens is empty`);
  if (t.length !== m.length) {
    throw datasetError(`examples[${index}]: tokens has ${t.length} entries but mask has ${m.length}: give one mask entry per token`);
  }
  // Bounded before the loops below, so a sparse array claiming a huge length costs nothing.
  if (t.length > window) throw tooLong(index, t.length, window, tokenizer.trained);
  const out = { tokens: new Int32Array(t.length), mask: new Uint8Array(t.length) };
  for (let i = 0; i < t.length; i++) {
    const id: unknown = t[i];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
      bad(index, `token id between 0 and ${vocabSize - 1}`, `tokens[${i}]`, id);
    }
    const bit: unknown = m[i];
    if (bit !== 0 && bit !== 1 && bit !== true && bit !== false) bad(index, '0, 1, true or false', `mask[${i}]`, bit);
    out.tokens[i] = id;
    // mask[0] stays 0: the first token has nothing before it to be predicted from.
    // An all-ones mask, the natural way to say "learn everything", is then accepted as it is meant.
    if (i > 0) out.mask[i] = bit === 1 || bit === true ? 1 : 0;
  }
  return out;
}

function arrayLike(value: unknown, index: number, name: string, expected: string): ArrayLike<unknown> {
  if (Array.isArray(value)) return value;
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return value as unknown as ArrayLike<unknown>;
  bad(index, expected, name, value);
}

function checkLearnable(example: TokenizedExample, index: number, window: number, trained: number | null): void {
  if (example.tokens.length > window) throw tooLong(index, example.tokens.length, window, trained);
  if (!example.mask.includes(1)) {
    throw datasetError(`examples[${index}]: no token is learned: the mask is 0 at every token after the first (mask[i] = 1 marks token i as one to learn)`);
  }
}

function tooLong(index: number, length: number, window: number, trained: number | null): UnderstudyError {
  const room = trained !== null && trained > window ? ` (the model was trained on ${trained})` : '';
  return datasetError(`examples[${index}]: is ${length} tokens long, longer than the window of ${window} tokens: raise the window option${room}, or shorten or split the example`);
}

/** Length of the longest common prefix of two token sequences. */
function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

// The model's tokenizer as training needs it. Texts are tokenized without the
// tokenizer's own special tokens, and BOS is put first by hand where the model
// adds one: a chat template may already write it, and a doubled BOS is not
// what the model saw in training.
class Tokenizer {
  readonly vocabSize: number;
  /** The context the model was trained on, where its file says. */
  readonly trained: number | null;
  readonly #model: Model;
  readonly #template: string | undefined;
  readonly #bos: number | null;
  readonly #eos: number | null;

  constructor(model: Model, template: string | undefined) {
    const { vocab } = model.info;
    this.#model = model;
    this.#template = template;
    this.vocabSize = vocab.size;
    this.trained = model.info.trainContextSize;
    this.#bos = vocab.addBos ? vocab.special.bos : null;
    // A model without EOS ends a completion with its end-of-turn token, if it has one.
    this.#eos = vocab.special.eos ?? vocab.special.eot;
  }

  // The learned part starts where the tokens of prompt + completion stop
  // matching those of the prompt alone. Tokenizing the completion on its own
  // would be wrong: SentencePiece vocabularies give a text a leading space
  // token, and a word split across the boundary tokenizes differently joined.
  completion(prompt: string, completion: string, index: number): TokenizedExample {
    const full = this.#tokenize(prompt + completion, false);
    const boundary = commonPrefix(this.#tokenize(prompt, false), full);
    if (boundary === full.length) {
      throw datasetError(`examples[${index}]: the completion ${v.showValue(completion)} adds no token to the prompt: give a completion to learn`);
    }
    if (this.#eos !== null) full.push(this.#eos);
    const mask = new Uint8Array(full.length);
    mask.fill(1, Math.max(boundary, 1));
    return { tokens: Int32Array.from(full), mask };
  }

  // Loss on each assistant turn's content and its end-of-turn marker, as the
  // template renders them: the text between the conversation rendered up to
  // that turn's header (with addAssistant) and rendered through the turn. The
  // spans are mapped to tokens by the common-prefix rule above.
  conversation(messages: ChatMessage[], index: number, window: number, lastOnly = false): TokenizedExample {
    const render = (count: number, addAssistant: boolean): string =>
      formatChat(this.#model._native(), messages.slice(0, count), { template: this.#template, addAssistant });
    const text = render(messages.length, false);
    const full = this.#tokenize(text, true);
    // Bounded before the per-turn renderings, whose cost grows with turns × length.
    if (full.length > window) throw tooLong(index, full.length, window, this.trained);
    const mask = new Uint8Array(full.length);
    for (let m = lastOnly ? messages.length - 1 : 0; m < messages.length; m++) {
      if (messages[m]!.role !== 'assistant') continue;
      const before = render(m, true);
      const through = m === messages.length - 1 ? text : render(m + 1, false);
      if (!through.startsWith(before) || !text.startsWith(through)) {
        throw datasetError(`examples[${index}]: the chat template renders messages[${m}] differently once later messages follow, so the assistant's part of the text cannot be found: use another template (the template option) or give { tokens, mask } examples`);
      }
      const start = commonPrefix(this.#tokenize(before, true), full);
      const end = through === text ? full.length : commonPrefix(this.#tokenize(through, true), full);
      if (end > start) mask.fill(1, Math.max(start, 1), end);
    }
    return { tokens: Int32Array.from(full), mask };
  }

  // A chat template writes special tokens as text (`<|im_end|>`), so rendered
  // conversations are tokenized with special-token parsing, as llama.cpp's own
  // chat paths do; plain prompts and completions are not.
  #tokenize(text: string, special: boolean): number[] {
    const tokens = this.#model.tokenize(text, { addSpecial: false, parseSpecial: special });
    if (this.#bos !== null && tokens[0] !== this.#bos) tokens.unshift(this.#bos);
    return tokens;
  }
}
