// OpenAI request bodies (already checked against schemas.ts) as router
// requests. What the router checks itself (task names, tool names, schemas)
// is left to it: its INVALID_ARGUMENT comes back as a 400 naming the parameter.
import type { ChatMessage, ChatRequest, CompleteRequest, ResponseFormat, RouteChoice, ToolChoice, ToolSpec } from '../index.js';
import { HttpRequestError } from './openai-errors.js';

/** What the headers add to a call: a forced route and the task. */
export interface CallHeaders {
  route?: RouteChoice;
  task?: string;
}

const ROUTES: readonly string[] = ['auto', 'local', 'remote', 'cache'];

/** X-Understudy-Route and X-Understudy-Task, checked. */
export function callHeaders(headers: Record<string, string | string[] | undefined>): CallHeaders {
  const one = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const route = one('x-understudy-route');
  if (route !== undefined && !ROUTES.includes(route)) {
    throw new HttpRequestError('INVALID_ARGUMENT',
      `Expected 'auto', 'local', 'remote' or 'cache' for X-Understudy-Route but received ${JSON.stringify(route.slice(0, 60))}`, 'X-Understudy-Route');
  }
  const task = one('x-understudy-task');
  return { ...(route ? { route: route as RouteChoice } : {}), ...(task !== undefined ? { task } : {}) };
}

type Body = Record<string, any>;

/** Sampling fields both endpoints share; null is the same as left out. */
function sampling(body: Body, headers: CallHeaders, signal: AbortSignal) {
  if (typeof body.n === 'number' && body.n > 1) {
    throw new HttpRequestError('INVALID_ARGUMENT', `Expected 1 for n (one choice per request is supported) but received ${body.n} of type number`, 'n');
  }
  // Log probabilities are not computed: refused rather than silently left out of the answer.
  // Chat sends `logprobs: true` (+ top_logprobs), the completions endpoint an integer.
  if (body.logprobs === true || typeof body.logprobs === 'number') {
    throw new HttpRequestError('INVALID_ARGUMENT',
      `Expected ${typeof body.logprobs === 'number' ? 'null' : 'false'} for logprobs (log probabilities are not supported) but received ${body.logprobs} of type ${typeof body.logprobs}`, 'logprobs');
  }
  if (typeof body.top_logprobs === 'number' && body.top_logprobs > 0) {
    throw new HttpRequestError('INVALID_ARGUMENT',
      `Expected 0 for top_logprobs (log probabilities are not supported) but received ${body.top_logprobs} of type number`, 'top_logprobs');
  }
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  const task = headers.task ?? body.metadata?.task;
  return {
    ...(task != null ? { task } : {}),
    ...(headers.route ? { route: headers.route } : {}),
    ...(maxTokens != null ? { maxTokens } : {}),
    ...(body.temperature != null ? { temperature: body.temperature } : {}),
    ...(body.top_p != null ? { topP: body.top_p } : {}),
    ...(body.stop != null ? { stop: body.stop } : {}),
    ...(body.seed != null ? { seed: body.seed } : {}),
    signal,
  };
}

function responseFormat(value: Body | null | undefined): ResponseFormat | undefined {
  if (value == null) return undefined;
  if (value.type !== 'json_schema') return { type: value.type };
  const s = value.json_schema;
  return {
    type: 'json_schema',
    schema: s.schema,
    ...(typeof s.name === 'string' ? { name: s.name } : {}),
    ...(typeof s.strict === 'boolean' ? { strict: s.strict } : {}),
  };
}

function tools(value: Body[] | null | undefined): ToolSpec[] | undefined {
  if (value == null) return undefined;
  return value.map(({ function: f }) => ({
    name: f.name,
    ...(typeof f.description === 'string' ? { description: f.description } : {}),
    ...(f.parameters != null ? { parameters: f.parameters } : {}),
    ...(typeof f.strict === 'boolean' ? { strict: f.strict } : {}),
  }));
}

function toolChoice(value: unknown): ToolChoice | undefined {
  if (value == null) return undefined;
  if (typeof value === 'string') return value as ToolChoice;
  return { name: (value as Body).function.name };
}

/** Content as a string: text parts joined by newlines (as OpenAI-compatible servers do); null (an assistant turn that only called tools) is ''. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p: Body) => p.text).join('\n');
  return '';
}

function message(m: Body): ChatMessage {
  const out: ChatMessage = { role: m.role === 'developer' ? 'system' : m.role, content: contentText(m.content) };
  if (Array.isArray(m.tool_calls) && m.tool_calls.length) {
    out.toolCalls = m.tool_calls.map((c: Body) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
  }
  if (typeof m.tool_call_id === 'string') out.toolCallId = m.tool_call_id;
  if (typeof m.name === 'string') out.name = m.name;
  return out;
}

export function chatRequest(body: Body, headers: CallHeaders, signal: AbortSignal): ChatRequest {
  const structure: Pick<ChatRequest, 'responseFormat' | 'tools' | 'toolChoice'> = {};
  const format = responseFormat(body.response_format);
  if (format) structure.responseFormat = format;
  const offered = tools(body.tools);
  if (offered) structure.tools = offered;
  const choice = toolChoice(body.tool_choice);
  // A call that must be a tool call cannot be answered without tools (OpenAI refuses it too);
  // 'auto' and 'none' without tools mean plain text and pass.
  if (choice && choice !== 'auto' && choice !== 'none' && !offered?.length) {
    throw new HttpRequestError('INVALID_ARGUMENT', "Expected tools with tool_choice (a required or named tool call needs tools) but received no tools", 'tool_choice');
  }
  if (choice && offered) structure.toolChoice = choice;
  return { messages: (body.messages as Body[]).map(message), ...sampling(body, headers, signal), ...structure };
}

export function completeRequest(body: Body, headers: CallHeaders, signal: AbortSignal): CompleteRequest {
  if (body.echo === true) throw new HttpRequestError('INVALID_ARGUMENT', 'Expected false for echo (echo is not supported) but received true of type boolean', 'echo');
  const prompt = Array.isArray(body.prompt) ? body.prompt[0] : body.prompt;
  const format = responseFormat(body.response_format);
  return { prompt, ...sampling(body, headers, signal), ...(format ? { responseFormat: format } : {}) };
}

/** Whether the caller asked for a final usage chunk. */
export function includeUsage(body: Body): boolean {
  return body.stream_options?.include_usage === true;
}
