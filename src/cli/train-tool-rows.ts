// OpenAI fine-tuning lines with tools (what `understudy dataset export` writes
// for a tool call: line-level `tools`, assistant `tool_calls` with null
// content, role "tool" results) as the trainer's plain { role, content }
// conversations. They are rendered as serving renders them for the local model
// (local-prompt.ts localMessages: the tools in the system turn, calls as their
// canonical text, results as user turns), so `understudy train` learns on the
// prompt the router will serve. Lines without tool fields pass unchanged.
import { UnderstudyError } from '../errors.js';
import type { ChatMessage } from '../llama/chat.js';
import { localMessages } from '../router/local-prompt.js';
import { toolCallText, type ToolCall, type ToolChoice, type ToolSpec } from '../router/tool-calls.js';
import * as v from '../validate.js';

type Line = Record<string, unknown>;

/** Whether a line uses any of OpenAI's tool fields (or null/array content, which they come with). */
function hasToolFields(line: Line): boolean {
  if (line.tools !== undefined || line.tool_choice !== undefined) return true;
  return Array.isArray(line.messages) && line.messages.some((m) => v.isPlainObject(m)
    && (m.tool_calls !== undefined || m.tool_call_id !== undefined || m.role === 'tool' || m.content === null || Array.isArray(m.content)));
}

/**
 * `value` as a training example: an OpenAI tool line rendered for the local
 * model, anything else as it is (the trainer judges it). `where` names the
 * line in errors ("FILE line N").
 */
export function toolRowExample(value: unknown, where: string): unknown {
  if (!v.isPlainObject(value) || !Array.isArray(value.messages) || !hasToolFields(value)) return value;
  const bad = (what: string, got: unknown) =>
    new UnderstudyError('INVALID_DATASET', `${where}: expected ${what} but received ${v.describeValue(got)}`);
  const tools = value.tools === undefined ? undefined : readTools(value.tools, bad);
  const toolChoice = readChoice(value.tool_choice, bad);
  const messages = value.messages.map((m, i) => readMessage(m, i, bad));
  const last = messages.at(-1);
  const history = last?.role === 'assistant' ? messages.slice(0, -1) : messages;
  const rendered = localMessages({ messages: history, ...(tools ? { tools } : {}), ...(toolChoice ? { toolChoice } : {}) });
  if (last?.role === 'assistant') {
    // The answer to learn is what serving reads back: a tool call's canonical
    // text alone (as the router logs it), or the text.
    rendered.push({ role: 'assistant', content: last.toolCalls?.length ? toolCallText(last.toolCalls) : last.content });
  }
  return { messages: rendered, ...(value.learn === undefined ? {} : { learn: value.learn }) };
}

type Bad = (what: string, got: unknown) => UnderstudyError;

function readTools(raw: unknown, bad: Bad): ToolSpec[] {
  if (!Array.isArray(raw)) throw bad('an array of tools for tools', raw);
  return raw.map((t, i) => {
    // OpenAI's { type: 'function', function: {...} }, or the router's own { name, ... }.
    const f = v.isPlainObject(t) && v.isPlainObject(t.function) ? t.function : t;
    if (!v.isPlainObject(f) || typeof f.name !== 'string' || f.name === '') throw bad(`{ type: "function", function: { name } } for tools[${i}]`, t);
    return {
      name: f.name,
      ...(typeof f.description === 'string' ? { description: f.description } : {}),
      ...(v.isPlainObject(f.parameters) ? { parameters: f.parameters } : {}),
    };
  });
}

function readChoice(raw: unknown, bad: Bad): ToolChoice | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (raw === 'auto' || raw === 'none' || raw === 'required') return raw;
  const name = v.isPlainObject(raw) && v.isPlainObject(raw.function) ? raw.function.name : undefined;
  if (typeof name === 'string' && name) return { name };
  throw bad('"auto", "none", "required" or { type: "function", function: { name } } for tool_choice', raw);
}

function readMessage(m: unknown, i: number, bad: Bad): ChatMessage {
  if (!v.isPlainObject(m)) throw bad(`a { role, content } object for messages[${i}]`, m);
  if (typeof m.role !== 'string' || m.role === '') throw bad(`a non-empty string for messages[${i}].role`, m.role);
  const out: ChatMessage = { role: m.role, content: contentText(m.content, `messages[${i}].content`, bad) };
  if (m.tool_calls !== undefined && m.tool_calls !== null) {
    if (!Array.isArray(m.tool_calls)) throw bad(`an array for messages[${i}].tool_calls`, m.tool_calls);
    out.toolCalls = m.tool_calls.map((c, j) => readCall(c, `messages[${i}].tool_calls[${j}]`, bad));
  }
  if (typeof m.tool_call_id === 'string') out.toolCallId = m.tool_call_id;
  if (typeof m.name === 'string') out.name = m.name;
  return out;
}

function readCall(c: unknown, path: string, bad: Bad): ToolCall {
  const f = v.isPlainObject(c) ? c.function : undefined;
  if (!v.isPlainObject(c) || !v.isPlainObject(f) || typeof f.name !== 'string' || f.name === '') {
    throw bad(`{ id, type: "function", function: { name, arguments } } for ${path}`, c);
  }
  const args = typeof f.arguments === 'string' ? f.arguments : JSON.stringify(f.arguments ?? {});
  return { id: typeof c.id === 'string' ? c.id : '', name: f.name, arguments: args };
}

/** Content as text: a string, null (beside tool calls) as '', text parts joined by newlines (as the server does). */
function contentText(raw: unknown, path: string, bad: Bad): string {
  if (typeof raw === 'string') return raw;
  if (raw === null || raw === undefined) return '';
  if (Array.isArray(raw) && raw.every((p) => v.isPlainObject(p) && typeof p.text === 'string')) return raw.map((p) => p.text as string).join('\n');
  throw bad(`a string, null or an array of { type: "text", text } parts for ${path}`, raw);
}
