// Chat messages: their check, and their formatting into a prompt with the
// model's own chat template (or one the caller names), through llama.cpp.
import { fromNative, invalidArgument } from '../errors.js';
import * as v from '../validate.js';
import type { NativeModel } from './binding.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  content: string;
  /** The calls an assistant turn made (its content is then usually ''). */
  toolCalls?: MessageToolCall[];
  /** On a 'tool' turn: the id of the call whose result this is. */
  toolCallId?: string;
  /** The speaker's name; on a 'tool' turn, the tool's. */
  name?: string;
}

/** A tool call inside a message, as OpenAI shapes it: arguments are JSON text. */
export interface MessageToolCall {
  id: string;
  name: string;
  arguments: string;
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
    const message: ChatMessage = { role, content };
    if (m.toolCalls !== undefined) message.toolCalls = checkToolCalls(m.toolCalls, `messages[${i}].toolCalls`);
    if (m.toolCallId !== undefined) message.toolCallId = v.nonEmptyString(m.toolCallId, `messages[${i}].toolCallId`);
    if (m.name !== undefined) message.name = v.nonEmptyString(m.name, `messages[${i}].name`);
    out.push(message);
  }
  return out;
}

/** Most tool calls one message may carry. */
const MAX_TOOL_CALLS = 1000;

function checkToolCalls(calls: unknown, name: string): MessageToolCall[] {
  if (!Array.isArray(calls)) v.fail('array of { id, name, arguments } tool calls', name, calls);
  if (calls.length > MAX_TOOL_CALLS) {
    throw invalidArgument(`Expected at most ${MAX_TOOL_CALLS} tool calls for ${name} but received an array of length ${calls.length}`);
  }
  const out: MessageToolCall[] = [];
  for (let j = 0; j < calls.length; j++) {
    const c: unknown = calls[j];
    if (!v.isPlainObject(c)) v.fail('{ id, name, arguments } tool call', `${name}[${j}]`, c);
    out.push({
      id: v.nonEmptyString(c.id, `${name}[${j}].id`),
      name: v.nonEmptyString(c.name, `${name}[${j}].name`),
      arguments: v.string(c.arguments, `${name}[${j}].arguments`),
    });
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
