// Tool calls: their shapes, and the one canonical text that stands for a
// tool-call answer wherever the router keeps text (the answer cache, the
// dataset, readiness comparisons, training). One call is
// `{"name":"fn","arguments":{...}}`; several are a JSON array of those. The
// local model is trained to write that text and serving parses it back, so
// both sides must agree on it: this file is the only place that spells it.
import { randomBytes } from 'node:crypto';
import type { MessageToolCall } from '../llama/chat.js';
import { parseStructured } from './similarity.js';
import { argumentsFit } from './tool-arguments.js';

/** A tool call as answers carry it: `arguments` is JSON text, as OpenAI sends it. */
export type ToolCall = MessageToolCall;

/** A function the model may call. `parameters` is the JSON schema of its arguments (an object). */
export interface ToolSpec {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
  strict?: boolean;
}

/** 'auto': the model chooses; 'none': no call; 'required': some call; { name }: that tool. */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** Why an answer ended. */
export type FinishReason = 'stop' | 'length' | 'tool_calls';

/** A call's arguments as a value: the parsed JSON when it parses, else the text as it came. */
function argumentsValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The canonical text of tool calls (see the top of this file). */
export function toolCallText(calls: readonly ToolCall[]): string {
  const items = calls.map((c) => ({ name: c.name, arguments: argumentsValue(c.arguments) }));
  return JSON.stringify(items.length === 1 ? items[0] : items);
}

/** A fresh call id, in OpenAI's style. */
export function toolCallId(): string {
  return `call_${randomBytes(12).toString('base64url')}`;
}

/**
 * The tool calls `text` holds: a canonical call or array of calls (bare or in
 * a ```json fence), every one naming a tool of `tools` with an explicit
 * `arguments` object valid for that tool's parameters schema. Anything else
 * (a call of an unknown tool, no `arguments`, arguments the schema refuses) is
 * not a tool call: undefined, and the answer stays text. Each call gets a fresh id.
 */
export function parseToolCalls(text: string, tools: readonly ToolSpec[] | undefined): ToolCall[] | undefined {
  if (!tools || tools.length === 0) return undefined;
  const value = parseStructured(text.trim());
  if (value === undefined) return undefined;
  const items: unknown[] = Array.isArray(value) ? value : [value];
  if (items.length === 0) return undefined;
  const byName = new Map(tools.map((t) => [t.name, t]));
  const calls: ToolCall[] = [];
  for (const item of items) {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return undefined;
    const { name, arguments: args, ...rest } = item as Record<string, unknown>;
    const tool = typeof name === 'string' ? byName.get(name) : undefined;
    if (!tool || Object.keys(rest).length > 0) return undefined;
    // {"name": "x"} alone is as likely an answer about x as a call of it: a call says its arguments.
    if (typeof args !== 'object' || args === null || Array.isArray(args)) return undefined;
    if (!argumentsFit(tool.parameters, args)) return undefined;
    calls.push({ id: toolCallId(), name: tool.name, arguments: JSON.stringify(args) });
  }
  return calls;
}

/**
 * Each tool call's position in a conversation (0, 1, ... across its assistant
 * turns), by id. Ids are random per answer (OpenAI's, or ours), so the cache
 * key and the local prompt name a call by its position instead: a conversation
 * replayed with other ids keys and reads the same, and training prompts carry
 * no random text.
 */
export function callPositions(messages: readonly { toolCalls?: readonly ToolCall[] }[]): Map<string, number> {
  const positions = new Map<string, number>();
  let n = 0;
  for (const m of messages) {
    for (const c of m.toolCalls ?? []) {
      if (!positions.has(c.id)) positions.set(c.id, n);
      n++;
    }
  }
  return positions;
}

/** Whether a call with these tools may answer with tool calls. */
export function toolsActive(tools: readonly ToolSpec[] | undefined, choice: ToolChoice | undefined): boolean {
  return tools !== undefined && tools.length > 0 && choice !== 'none';
}
