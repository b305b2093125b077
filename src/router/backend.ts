// The one small interface every answering backend has: the local model, the
// remote API and the mock for users' own tests.
import type { ChatMessage } from '../llama/chat.js';
import type { Params } from './request.js';
import type { ResponseFormat } from './structured-request.js';
import type { FinishReason, ToolCall, ToolChoice, ToolSpec } from './tool-calls.js';
import { errorText } from '../validate.js';
import type { UnderstudyError } from '../errors.js';

export interface BackendCall {
  kind: 'chat' | 'complete';
  task: string;
  messages?: ChatMessage[];
  prompt?: string;
  params: Params;
  /** The shape the answer must have (absent: free text). */
  responseFormat?: ResponseFormat;
  /** Functions the model may call (chat calls only). */
  tools?: ToolSpec[];
  toolChoice?: ToolChoice;
  signal?: AbortSignal;
  /** Called with each piece of text as it arrives, for streaming callers. */
  onText?: (text: string) => void;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface BackendAnswer {
  /** The answer; for tool calls, their canonical text (tool-calls.ts). */
  text: string;
  /** The calls the answer makes, when it makes any. */
  toolCalls?: ToolCall[];
  /** Text the model wrote beside its tool calls (a remote may send both); only with toolCalls. */
  content?: string;
  usage: Usage;
  /** The model that answered. */
  model: string;
  /** Why the answer ended; a backend that does not say is read as 'stop'. */
  finishReason?: FinishReason;
  /**
   * The adapter file that answered (null: none), from a backend that takes
   * adapters. Only the backend knows it exactly: a call sent while a swap is
   * pending may run with the old adapter or the new one.
   */
  adapter?: string | null;
}

export interface Health {
  ok: boolean;
  latencyMs: number;
  detail: string;
}

export interface Backend {
  readonly kind: 'local' | 'remote' | 'mock';
  /** The model this backend answers with. */
  readonly model: string;
  answer(call: BackendCall): Promise<BackendAnswer>;
  /**
   * Whether the call fits this backend's limits (context size); a router sends
   * a call that does not fit elsewhere. Backends without limits leave it out.
   */
  fits?(call: BackendCall): boolean;
  /** Unit-length embeddings, for backends that can make them. */
  embed?(texts: string[]): Promise<Float32Array[]>;
  health(): Promise<Health>;
  close(): Promise<void>;
  // Optional capabilities: the router asks for these by name, never by class.
  /** Milliseconds until a resting backend may be tried again; 0 when it may be now. */
  coolingFor?(): number;
  /** Registers the one listener told about every retry (for the router's log). */
  onRetry?(listener: (info: RetryInfo) => void): void;
  /**
   * Makes `file` (a LoRA adapter; null = none) the adapter every later answer
   * uses; answers already running finish with the old one.
   */
  useAdapter?(file: string | null): Promise<void>;
  /** The model a trainer should train adapters for, as this backend runs it. */
  trainingSource?(): TrainingSource;
  /** Calls waiting for the backend to start on them (the local model: generations waiting for a free sequence). */
  queueDepth?(): number;
}

export interface RetryInfo {
  attempt: number;
  delayMs: number;
  error: UnderstudyError;
}

export interface TrainingSource {
  /** The model file, absolute. */
  path: string;
  /** The chat template name applied to chat calls; undefined = the model's own. */
  chatTemplate?: string;
  /** Tokens per sequence. */
  contextSize: number;
}

/** Runs a health probe and times it; a thrown error is an unhealthy result, not a failure. */
export async function timedHealth(probe: () => Promise<string>): Promise<Health> {
  const started = performance.now();
  try {
    const detail = await probe();
    return { ok: true, latencyMs: performance.now() - started, detail };
  } catch (err) {
    return { ok: false, latencyMs: performance.now() - started, detail: errorText(err) };
  }
}
