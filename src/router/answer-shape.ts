// What the router makes of a backend's answer before it keeps or returns it,
// and how a kept answer reads back. Kept apart from call-path.ts, which is
// about the order of the caches and backends.
//
// - Usage: every count a finite non-negative integer (usage.ts).
// - Tool calls: a RemoteBackend reports them itself (OpenAI's tool_calls), so
//   its answer is taken as it says: plain text that happens to parse as
//   {"name": ...} stays text. Only a backend that cannot report calls (the
//   local model, a caller's own) has its text parsed into calls.
// - Cache entries carry the calls exactly as they went out live (names and
//   argument strings, and any text the model wrote beside them), so a hit is
//   the answer the live call gave, not a guess from the canonical text.
import { UnderstudyError } from '../errors.js';
import type { Backend, BackendAnswer } from './backend.js';
import type { NormalRequest } from './request.js';
import { RemoteBackend } from './remote-backend.js';
import { parseToolCalls, toolCallId, toolCallText, toolsActive, type ToolCall } from './tool-calls.js';
import { cleanUsage } from './usage.js';

/** What #finish needs of an answer, from a backend or a cache. */
export type Answered = Pick<BackendAnswer, 'text' | 'usage' | 'model' | 'toolCalls' | 'finishReason' | 'content'>;

/**
 * A backend's answer as the router takes it: sound usage, tool calls made
 * explicit (see the top of this file) and the canonical text of a tool-call
 * answer. Tool calls from the remote when none were allowed are a bad response.
 */
export function accepted(request: NormalRequest, answer: BackendAnswer, backend: Backend): BackendAnswer {
  const out: BackendAnswer = { ...answer, usage: cleanUsage(answer.usage) };
  const reported = Array.isArray(answer.toolCalls) && answer.toolCalls.length > 0 ? answer.toolCalls : undefined;
  if (!toolsActive(request.tools, request.toolChoice)) {
    if (reported && backend instanceof RemoteBackend) {
      throw new UnderstudyError('REMOTE_BAD_RESPONSE', `the remote answered with tool calls although ${request.tools?.length ? 'tool_choice was "none"' : 'no tools were offered'}`);
    }
    // A caller's own backend reporting calls that were not offered: not an answer this request can take.
    delete out.toolCalls;
    delete out.content;
    return out;
  }
  const calls = reported ?? (backend instanceof RemoteBackend ? undefined : parseToolCalls(answer.text, request.tools));
  if (!calls) {
    delete out.toolCalls;
    delete out.content;
    return out;
  }
  return { ...out, toolCalls: calls, text: toolCallText(calls), finishReason: 'tool_calls' };
}

/** The tool-call part of a cache entry: the calls' names and exact arguments, and any text beside them. */
export interface StoredCalls {
  calls: { name: string; arguments: string }[];
  content?: string;
}

/** What the cache stores beside the canonical text: '' for a text answer, else the calls as JSON. */
export function storedCalls(answer: Answered, redact: (text: string) => string): string {
  if (!answer.toolCalls?.length) return '';
  const stored: StoredCalls = { calls: answer.toolCalls.map((c) => ({ name: c.name, arguments: redact(c.arguments) })) };
  if (answer.content) stored.content = redact(answer.content);
  return JSON.stringify(stored);
}

/**
 * A cache entry as an answer to `request`. `calls` is what storedCalls wrote
 * ('' = text); null is an entry from before that column, read back as it was
 * then (its canonical text parsed). Ids are fresh: an id names one answer's call.
 */
export function fromEntry(request: NormalRequest, entry: { answer: string; usage: BackendAnswer['usage']; model: string; calls: string | null }): Answered {
  // Cleaned again: an entry written before usage was (usage.ts) may hold any number.
  const base = { text: entry.answer, usage: cleanUsage(entry.usage), model: entry.model, finishReason: 'stop' as const };
  if (!toolsActive(request.tools, request.toolChoice)) return base;
  let toolCalls: ToolCall[] | undefined;
  let content: string | undefined;
  if (entry.calls === null) {
    toolCalls = parseToolCalls(entry.answer, request.tools);
  } else if (entry.calls !== '') {
    try {
      const stored = JSON.parse(entry.calls) as StoredCalls;
      toolCalls = stored.calls.map((c) => ({ id: toolCallId(), name: c.name, arguments: c.arguments }));
      content = stored.content;
    } catch {
      // A damaged entry reads as the text it also holds.
    }
  }
  return toolCalls?.length ? { ...base, toolCalls, finishReason: 'tool_calls', ...(content ? { content } : {}) } : base;
}

/** An identical call's result, shared: the same answer with call ids of its own. */
export function fromResult(first: Answered): Answered {
  return {
    text: first.text, usage: first.usage, model: first.model, finishReason: first.finishReason ?? 'stop',
    ...(first.toolCalls?.length ? { toolCalls: first.toolCalls.map((c) => ({ ...c, id: toolCallId() })) } : {}),
    ...(first.content ? { content: first.content } : {}),
  };
}
