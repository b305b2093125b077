// The router's public shapes: what createRouter() takes (RouterOptions) and
// what every answer carries (RouterResult). Apart from router.ts so that the
// parts that build results (call-path.ts) and routers (create-router.ts,
// src/train/attach.ts) need only these types, not the Router class.
import type { Backend, Usage } from './backend.js';
import type { Clock } from './clock.js';
import type { RouterSettings } from './config.js';
import type { EmbedFunction } from './embedder.js';
import type { Route } from './request.js';
import type { FinishReason, ToolCall } from './tool-calls.js';

export interface RouterOptions extends RouterSettings {
  /** A backend to use as the local model instead of loading `model`; false for none. */
  local?: Backend | false;
  /** A backend to use as the remote instead of the OpenAI-compatible one; false for none. */
  remote?: Backend | false;
  /** Embeds prompts and answers instead of the local or embedding model; false for none. */
  embedder?: EmbedFunction | false;
  /** Environment to read UNDERSTUDY_* settings from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * Takes every line the router writes (calls, failures, checks, readiness
   * changes, warnings, training), already redacted, one line without its
   * newline. Default: stderr, unless `quiet`.
   */
  log?: (line: string) => void;
  /** @internal Time for expiry, cooldowns and retry waits (tests pass their own). */
  clock?: Clock;
}

export interface RouterResult {
  /** The answer; when it calls tools, their canonical text (`{"name":..., "arguments":{...}}`, or an array of those). */
  text: string;
  /** The tool calls the answer makes (chat calls with tools only). */
  toolCalls?: ToolCall[];
  /** Text the model wrote beside its tool calls (a remote may send both); only with toolCalls. */
  content?: string;
  /** 'tool_calls' when toolCalls is set; 'length' when maxTokens (or the context) cut the answer off; else 'stop'. Answers cut off ('length') are not cached. */
  finishReason: FinishReason;
  route: Route;
  /** True when no backend was asked: a cache answered (or an identical call in flight). */
  cached: boolean;
  task: string;
  usage: Usage;
  latencyMs: number;
  /** Semantic-cache similarity for a semantic hit; otherwise the task's readiness, when known. */
  similarity?: number;
  /** The model whose answer this is. */
  model: string;
  /** Set when the chosen backend failed and the other answered. */
  fallbackFrom?: 'local' | 'remote';
  /** The adapter version that answered, on local answers when one is applied. */
  adapter?: number;
}
