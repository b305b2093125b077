// Chat messages: their check, and their formatting into a prompt with the
// model's own chat template (or one the caller names), through llama.cpp.
import { fromNative, invalidArgument } from '../errors.js';
import * as v from '../validate.js';
import type { NativeModel } from './binding.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

export interface ChatTemplateOptions {
  /**
   * A chat template to use instead of the model's own: a llama.cpp built-in
   * name ('chatml', 'llama3', 'gemma', 'mistral-v7', ...) or its Jinja text.
   */
  template?: string;
  /** End the prompt with the start of an assistant turn (default true). */
  addAssistant?: boolean;
}

/** Most messages one conversation may have. */
export const MAX_MESSAGES = 100_000;

/**
 * Checks every message and returns plain copies (each property read once). It
 * walks the indices, not forEach, which skips the holes of a sparse array: an
 * array may claim a huge length and hold one element, and its length is
 * bounded before anything is sized by it.
 */
export function checkMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) v.fail('non-empty array of messages', 'messages', messages);
  if (messages.length > MAX_MESSAGES) {
    throw invalidArgument(`Expected at most ${MAX_MESSAGES} messages but received an array of length ${messages.length}`);
  }
  const out: ChatMessage[] = [];
  for (let i = 0; i < messages.length; i++) {
    const m: unknown = messages[i];
    if (!v.isPlainObject(m)) v.fail('{ role, content } object', `messages[${i}]`, m);
    const role = v.nonEmptyString(m.role, `messages[${i}].role`);
    const content = v.string(m.content, `messages[${i}].content`);
    out.push({ role, content });
  }
  return out;
}

export function formatChat(model: NativeModel, messages: ChatMessage[], options: ChatTemplateOptions): string {
  const template = options.template === undefined ? null : v.nonEmptyString(options.template, 'template');
  const addAssistant = v.boolean(options.addAssistant, 'addAssistant', true);
  const plain = messages.map(({ role, content }) => ({ role, content }));
  try {
    return model.applyChatTemplate(plain, template, addAssistant);
  } catch (err) {
    throw fromNative(err);
  }
}
