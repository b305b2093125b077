// A routed call: its checks, its normal form, the task it belongs to, and the
// key the exact cache files it under.
import { createHash } from 'node:crypto';
import { checkMessages, type ChatMessage } from '../llama/chat.js';
import * as v from '../validate.js';
import type { ResolvedSettings } from './config.js';
import { checkStructure, structureHash, type ResponseFormat, type Structure } from './structured-request.js';
import { callPositions, toolCallText, type ToolChoice, type ToolSpec } from './tool-calls.js';

export type { ResponseFormat, Structure } from './structured-request.js';
export type { ToolCall, ToolChoice, ToolSpec, FinishReason } from './tool-calls.js';

export type Route = 'cache' | 'semantic-cache' | 'local' | 'remote';
/** 'auto' lets the policy choose; 'cache' answers only from a cache (CACHE_MISS otherwise). */
export type RouteChoice = 'auto' | 'local' | 'remote' | 'cache';

export interface SamplingRequest {
  /** The kind of call; readiness, caches and the dataset are kept per task. Default: derived from the system prompt. */
  task?: string;
  temperature?: number;
  maxTokens?: number;
  topP?: number;
  stop?: string | string[];
  seed?: number;
  /** Force a route for this call (default 'auto'). */
  route?: RouteChoice;
  /** false: neither read nor write the caches for this call. */
  cache?: boolean;
  signal?: AbortSignal;
  /** The shape the answer must have: JSON, or JSON valid for a schema. */
  responseFormat?: ResponseFormat;
}

export interface ChatRequest extends SamplingRequest {
  messages: ChatMessage[];
  /** Functions the model may call; an answer that calls them has `toolCalls`. */
  tools?: ToolSpec[];
  /** Whether (and which) tool to call; default 'auto' when tools are given. */
  toolChoice?: ToolChoice;
}

export interface CompleteRequest extends SamplingRequest {
  prompt: string;
}

/** The sampling parameters that change an answer, with defaults filled in. */
export interface Params {
  temperature: number;
  maxTokens: number;
  topP: number;
  stop: string[];
  seed?: number;
}

export interface NormalRequest extends Structure {
  kind: 'chat' | 'complete';
  task: string;
  messages?: ChatMessage[];
  prompt?: string;
  params: Params;
  route: RouteChoice;
  useCache: boolean;
  signal?: AbortSignal;
}

const ROUTES = new Set(['auto', 'local', 'remote', 'cache']);

export function normalize(kind: 'chat' | 'complete', request: unknown, settings: ResolvedSettings): NormalRequest {
  if (!v.isPlainObject(request)) v.fail('request object', 'request', request);
  const r = request as Record<string, unknown>;
  let messages: ChatMessage[] | undefined;
  let prompt: string | undefined;
  if (kind === 'chat') {
    // checkMessages copies the known fields only: extra ones must not leak into keys or logs.
    messages = checkMessages(r.messages);
  } else {
    prompt = v.string(r.prompt, 'prompt');
  }
  const route = r.route === undefined ? 'auto' : r.route;
  if (typeof route !== 'string' || !ROUTES.has(route)) v.fail("'auto', 'local', 'remote' or 'cache'", 'route', route);
  const seed = r.seed === undefined ? undefined : v.integer(r.seed, 'seed', 0, 0, 0xffffffff);
  const params: Params = {
    temperature: v.number(r.temperature, 'temperature', settings.temperature, 0, 2),
    maxTokens: v.integer(r.maxTokens, 'maxTokens', settings.maxTokens, 1, 1 << 20),
    topP: v.number(r.topP, 'topP', settings.topP, 0, 1),
    stop: v.stringArray(r.stop, 'stop'),
    ...(seed === undefined ? {} : { seed }),
  };
  const structure = checkStructure(r, kind);
  return {
    ...structure,
    kind,
    task: r.task === undefined ? deriveTask(messages, structure) : checkTask(r.task),
    messages,
    prompt,
    params,
    route: route as RouteChoice,
    useCache: v.boolean(r.cache, 'cache', true),
    signal: v.abortSignal(r.signal),
  };
}

/** A task name as calls give it; readiness(), datasetRows() and exportDataset() check theirs the same way. */
export function checkTask(task: unknown): string {
  if (typeof task !== 'string' || !/^[\w.:/@-]{1,100}$/.test(task)) {
    v.fail('task name of 1 to 100 letters, digits or . : / @ - _', 'task', task);
  }
  return task;
}

/**
 * Calls with the same system prompt are the same kind of call, unless they ask
 * for answers of different shapes. Some clients (Jac's byLLM) send one system
 * prompt for every function, and tell their functions apart only by the
 * schema of the return and the tools offered: those are hashed in too, so
 * each function gets its own readiness. A call without a schema or active
 * tools keeps the name it always had, so tasks already on disk stay theirs.
 */
export function deriveTask(messages: ChatMessage[] | undefined, structure: Structure = {}): string {
  const system = messages?.filter((m) => m.role === 'system').map((m) => m.content).join('\n');
  const base = system ? `system-${createHash('sha256').update(system).digest('hex').slice(0, 12)}` : 'default';
  const shape = shapeText(structure);
  if (shape === null) return base;
  return `${base}-${createHash('sha256').update(shape).digest('hex').slice(0, 12)}`;
}

/**
 * What tells calls of one system prompt apart: the json_schema's name and
 * schema, and the active tools' names and parameters (sorted by name), as
 * canonical JSON (object keys sorted, so the order a client writes them in
 * does not matter). Descriptions are left out: they are prose that a client
 * may reword without changing the function. null when there is none.
 */
function shapeText(s: Structure): string | null {
  const format = s.responseFormat?.type === 'json_schema' ? s.responseFormat : undefined;
  const tools = s.tools && s.toolChoice !== 'none' ? s.tools : undefined;
  if (!format && !tools) return null;
  const shape = {
    schema: format ? { name: format.name ?? null, schema: format.schema } : null,
    tools: tools ? [...tools].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((t) => ({ name: t.name, parameters: t.parameters ?? null })) : null,
  };
  return canonicalJson(shape);
}

/** JSON with every object's keys sorted: one text for one value. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/**
 * The exact-cache key: everything that changes the answer (task, input, model,
 * sampling), in a fixed order, hashed.
 */
export function cacheKey(request: NormalRequest, model: string): string {
  const p = request.params;
  const positions = request.kind === 'chat' ? callPositions(request.messages!) : undefined;
  const input = request.kind === 'chat' ? request.messages!.map((m) => messageKey(m, positions!)) : request.prompt;
  const fields: unknown[] = [1, request.kind, request.task, model, input, p.temperature, p.maxTokens, p.topP, p.stop, p.seed ?? null];
  // Only when asked for, so the keys of plain calls stay those already on disk.
  const structure = structureHash(request);
  if (structure) fields.push(structure);
  return createHash('sha256').update(JSON.stringify(fields)).digest('base64url');
}

/**
 * A message as the cache key sees it: role and content, and its tool fields
 * when it has any, a call (and the result that answers it) by its position in
 * the conversation rather than its random id (callPositions).
 */
function messageKey(m: ChatMessage, positions: Map<string, number>): unknown[] {
  if (m.toolCalls === undefined && m.toolCallId === undefined && m.name === undefined) return [m.role, m.content];
  const answers = m.toolCallId === undefined ? null : positions.get(m.toolCallId) ?? m.toolCallId;
  return [m.role, m.content, m.toolCalls?.map((c) => [positions.get(c.id) ?? null, c.name, c.arguments]) ?? null, answers, m.name ?? null];
}

/** Sampling settings a semantic hit must share with the entry it finds. */
export function paramsSignature(request: NormalRequest, model: string): string {
  const p = request.params;
  // The system prompt is not embedded (see embeddingText), so it must match exactly.
  const system = request.messages?.filter((m) => m.role === 'system').map((m) => m.content) ?? [];
  const systemHash = system.length ? createHash('sha256').update(JSON.stringify(system)).digest('base64url') : null;
  const signature: unknown[] = [request.kind, model, systemHash, p.temperature, p.maxTokens, p.topP, p.stop, p.seed ?? null];
  const structure = structureHash(request);
  if (structure) signature.push(structure);
  return JSON.stringify(signature);
}

/**
 * The text a semantic lookup embeds: what the user said. The system prompt is
 * left out because the task already stands for it, and it would dilute the
 * difference between two inputs.
 */
export function embeddingText(request: NormalRequest): string {
  if (request.kind === 'complete') return request.prompt!;
  // A tool call is what the assistant said: two calls with other arguments are other conversations.
  return request.messages!.filter((m) => m.role !== 'system')
    .map((m) => `${m.role}: ${m.content}${m.toolCalls?.length ? toolCallText(m.toolCalls) : ''}`).join('\n');
}

/** Whether an answer to this request may be cached and reused. */
export function cacheable(request: NormalRequest, settings: ResolvedSettings): boolean {
  if (!settings.enableCache || !request.useCache) return false;
  return request.params.temperature === 0 || settings.cacheSampled;
}
