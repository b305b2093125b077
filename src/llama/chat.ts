// Chat messages: their check, and their formatting into a prompt with the
// model's own chat template (or one the caller names), through llama.cpp.
import { fromNative } from '../errors.js';
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

export function checkMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) v.fail('non-empty array of messages', 'messages', messages);
  messages.forEach((m, i) => {
    if (!v.isPlainObject(m)) v.fail('{ role, content } object', `messages[${i}]`, m);
    v.nonEmptyString(m.role, `messages[${i}].role`);
    v.string(m.content, `messages[${i}].content`);
  });
  return messages as ChatMessage[];
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
