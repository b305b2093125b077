// What the remote backend sends and reads, in OpenAI's shapes: the request
// body (sampling, response_format, tools, tool_choice, messages with their tool
// fields) and the answer (content or tool_calls, finish_reason, usage). Apart
// from remote-backend.ts, which is about attempts, retries and time limits.
import type { ChatMessage } from '../llama/chat.js';
import type { BackendAnswer, BackendCall, Usage } from './backend.js';
import type { ResponseFormat } from './structured-request.js';
import { cleanUsage } from './usage.js';
import { toolCallText, type FinishReason, type ToolCall, type ToolChoice, type ToolSpec } from './tool-calls.js';

/** The body of a completion request for `call` (without messages/prompt and stream). */
export function requestBody(call: BackendCall, model: string): Record<string, unknown> {
  const p = call.params;
  return {
    model,
    temperature: p.temperature,
    max_tokens: p.maxTokens,
    top_p: p.topP,
    ...(p.stop.length ? { stop: p.stop } : {}),
    ...(p.seed === undefined ? {} : { seed: p.seed }),
    ...(call.responseFormat ? { response_format: responseFormatBody(call.responseFormat) } : {}),
    ...(call.tools ? { tools: call.tools.map(toolBody) } : {}),
    ...(call.toolChoice ? { tool_choice: toolChoiceBody(call.toolChoice) } : {}),
  };
}

function responseFormatBody(format: ResponseFormat): Record<string, unknown> {
  if (format.type !== 'json_schema') return { type: format.type };
  return {
    type: 'json_schema',
    json_schema: {
      // OpenAI requires a name; the schema's own is kept when given.
      name: format.name ?? 'response',
      schema: format.schema,
      // Passed as the caller sent it: a remote decides what strict means to it.
      ...(format.strict === undefined ? {} : { strict: format.strict }),
    },
  };
}

export function toolBody(tool: ToolSpec): Record<string, unknown> {
  return {
    type: 'function',
    function: {
      name: tool.name,
      ...(tool.description === undefined ? {} : { description: tool.description }),
      ...(tool.parameters === undefined ? {} : { parameters: tool.parameters }),
      ...(tool.strict === undefined ? {} : { strict: tool.strict }),
    },
  };
}

function toolChoiceBody(choice: ToolChoice): unknown {
  return typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
}

/** The conversation in OpenAI's message shape. */
export function messagesBody(messages: readonly ChatMessage[]): Record<string, unknown>[] {
  return messages.map((m) => {
    if (m.role === 'tool') return { role: 'tool', content: m.content, ...(m.toolCallId ? { tool_call_id: m.toolCallId } : {}) };
    const calls = m.toolCalls?.length ? m.toolCalls : undefined;
    return {
      role: m.role,
      // OpenAI takes null content beside tool calls; an empty string is refused by some servers.
      content: calls && m.content === '' ? null : m.content,
      ...(m.name ? { name: m.name } : {}),
      ...(calls ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) } : {}),
    };
  });
}

/** A remote's finish_reason in our three words (a content filter's stop is a stop). */
export function finishReasonOf(raw: unknown, toolCalls: boolean): FinishReason {
  if (toolCalls || raw === 'tool_calls' || raw === 'function_call') return 'tool_calls';
  return raw === 'length' ? 'length' : 'stop';
}

/** The tool calls of an answer's message; undefined when it has none. Throws (a bad answer) when they are malformed. */
export function readToolCalls(raw: unknown): ToolCall[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) throw new Error('the answer\'s choices[0].message.tool_calls is not an array');
  if (raw.length === 0) return undefined;
  return raw.map((c: any, i: number) => {
    const fn = c?.function;
    if (typeof fn?.name !== 'string' || !fn.name) throw new Error(`the answer's tool_calls[${i}] has no function.name`);
    const args = typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {});
    return { id: typeof c.id === 'string' && c.id ? c.id : `call_${i}`, name: fn.name, arguments: args };
  });
}

/**
 * A non-streamed chat answer: content or tool calls (content may then be null;
 * text beside the calls is kept as `content`). Tool calls when the call allowed
 * none (`toolsAllowed` false: no tools, or tool_choice "none") are a bad answer.
 */
export function readChatAnswer(res: any, fallbackModel: string, toolsAllowed = true): BackendAnswer {
  const choice = res?.choices?.[0];
  const message = choice?.message;
  const toolCalls = readToolCalls(message?.tool_calls);
  if (toolCalls && !toolsAllowed) throw new Error('the answer calls tools although the call allowed none');
  const content: unknown = message?.content;
  if (!toolCalls && typeof content !== 'string') throw new Error('the answer has no choices[0].message.content');
  return {
    text: toolCalls ? toolCallText(toolCalls) : content as string,
    ...(toolCalls ? { toolCalls, ...(typeof content === 'string' && content ? { content } : {}) } : {}),
    usage: usageOf(res.usage),
    model: res.model || fallbackModel,
    finishReason: finishReasonOf(choice?.finish_reason, Boolean(toolCalls)),
  };
}

/** A non-streamed completion answer. */
export function readCompletionAnswer(res: any, fallbackModel: string): BackendAnswer {
  const choice = res?.choices?.[0];
  if (typeof choice?.text !== 'string') throw new Error('the answer has no choices[0].text');
  return { text: choice.text, usage: usageOf(res.usage), model: res.model || fallbackModel, finishReason: finishReasonOf(choice.finish_reason, false) };
}

/** The remote's usage in our shape, every count a finite non-negative integer (usage.ts says why). */
export function usageOf(raw: { prompt_tokens?: unknown; completion_tokens?: unknown; total_tokens?: unknown } | null | undefined): Usage {
  return cleanUsage({ promptTokens: raw?.prompt_tokens, completionTokens: raw?.completion_tokens, totalTokens: raw?.total_tokens });
}
