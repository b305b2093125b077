// Router answers in OpenAI's response shapes: chat.completion,
// chat.completion.chunk, text_completion, and the usage object.
import { randomBytes } from 'node:crypto';
import type { FinishReason, RouterResult, ToolCall, Usage } from '../index.js';

export const newId = (prefix: 'chatcmpl' | 'cmpl') => `${prefix}-${randomBytes(12).toString('base64url')}`;

export const created = () => Math.floor(Date.now() / 1000);

export function usage(u: Usage) {
  return { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.totalTokens };
}

export function openaiToolCalls(calls: ToolCall[]) {
  return calls.map((c, index) => ({ index, id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));
}

export function chatCompletion(result: RouterResult) {
  const calls = result.toolCalls?.length ? result.toolCalls : undefined;
  const message = calls
    ? { role: 'assistant', content: result.content ?? null, refusal: null, tool_calls: openaiToolCalls(calls).map(({ index: _, ...c }) => c) }
    : { role: 'assistant', content: result.text, refusal: null };
  return {
    id: newId('chatcmpl'),
    object: 'chat.completion',
    created: created(),
    model: result.model,
    system_fingerprint: null,
    choices: [{ index: 0, message, logprobs: null, finish_reason: result.finishReason }],
    usage: usage(result.usage),
  };
}

export function textCompletion(result: RouterResult) {
  return {
    id: newId('cmpl'),
    object: 'text_completion',
    created: created(),
    model: result.model,
    choices: [{ index: 0, text: result.text, logprobs: null, finish_reason: result.finishReason }],
    usage: usage(result.usage),
  };
}

/** The chunks of one streamed answer, for chat or completions: the same id, time and model in each. */
export class Chunks {
  readonly #kind: 'chat' | 'complete';
  readonly #base: { id: string; object: string; created: number; model: string; system_fingerprint: null };
  readonly #includeUsage: boolean;

  constructor(kind: 'chat' | 'complete', model: string, includeUsage = false) {
    this.#kind = kind;
    this.#includeUsage = includeUsage;
    this.#base = {
      id: newId(kind === 'chat' ? 'chatcmpl' : 'cmpl'),
      object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
      created: created(),
      model,
      system_fingerprint: null,
    };
  }

  /** The first chunk (chat only): the assistant's role, no text yet ('' before text, null before tool calls, as OpenAI sends). */
  start(content: '' | null = '') {
    return this.#chunk({ index: 0, delta: { role: 'assistant', content }, logprobs: null, finish_reason: null });
  }

  text(piece: string) {
    return this.#kind === 'chat'
      ? this.#chunk({ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null })
      : this.#chunk({ index: 0, text: piece, logprobs: null, finish_reason: null });
  }

  /** All of an answer's tool calls, in one delta. */
  toolCalls(calls: ToolCall[]) {
    return this.#chunk({ index: 0, delta: { tool_calls: openaiToolCalls(calls) }, logprobs: null, finish_reason: null });
  }

  finish(reason: FinishReason) {
    return this.#kind === 'chat'
      ? this.#chunk({ index: 0, delta: {}, logprobs: null, finish_reason: reason })
      : this.#chunk({ index: 0, text: '', logprobs: null, finish_reason: reason });
  }

  usage(u: Usage) {
    return { ...this.#base, choices: [], usage: usage(u) };
  }

  #chunk(choice: Record<string, unknown>) {
    // With include_usage, OpenAI gives every chunk a usage field: null until the last one.
    return { ...this.#base, choices: [choice], ...(this.#includeUsage ? { usage: null } : {}) };
  }
}
