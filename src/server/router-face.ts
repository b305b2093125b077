// What the server uses of the router, in one place: the request and result
// shapes of structured output and tools, the stream's `info`, and embed().
// (notes/server-api.md §1.) Kept apart so the routes read as if the router
// had them all, and so one file changes if its face does.
import type { ChatRequest, CompleteRequest, Route, Router, RouterResult, RouterStream } from '../index.js';

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name?: string; schema: Record<string, unknown>; strict?: boolean };
export interface ToolSpec { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean }
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };
export interface ToolCall { id: string; name: string; arguments: string }
export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface ServerMessage {
  role: string;
  content: string;
  toolCalls?: ToolCall[];
  toolCallId?: string;
  name?: string;
}

export interface Structure {
  responseFormat?: ResponseFormat;
  tools?: ToolSpec[];
  toolChoice?: ToolChoice;
}

export type ServerChatRequest = Omit<ChatRequest, 'messages'> & Structure & { messages: ServerMessage[] };
export type ServerCompleteRequest = CompleteRequest & Pick<Structure, 'responseFormat'>;

export type ServedResult = RouterResult & { toolCalls?: ToolCall[]; finishReason?: FinishReason };

export interface StreamInfo { route: Route; task: string; model: string }

type Streamed = RouterStream<RouterResult> & { info?: Promise<StreamInfo> };

export function chatCall(router: Router, request: ServerChatRequest): Promise<ServedResult> {
  return router.chat({ ...(request as ChatRequest), stream: false });
}

export function completeCall(router: Router, request: ServerCompleteRequest): Promise<ServedResult> {
  return router.complete({ ...request, stream: false });
}

export function chatStream(router: Router, request: ServerChatRequest): Streamed {
  return router.chat({ ...(request as ChatRequest), stream: true });
}

export function completeStream(router: Router, request: ServerCompleteRequest): Streamed {
  return router.complete({ ...request, stream: true });
}

/** Settles when the answer's first piece is about to come (or with the result when none comes). */
export function streamInfo(stream: Streamed): Promise<StreamInfo> {
  if (stream.info) return stream.info;
  return stream.result.then((r) => ({ route: r.route, task: r.task, model: r.model }));
}

export function streamResult(stream: Streamed): Promise<ServedResult> {
  return stream.result;
}

export interface EmbedResult { vectors: Float32Array[]; model: string; promptTokens: number }

type Embedding = {
  embed?: (texts: string[], options?: { signal?: AbortSignal }) => Promise<EmbedResult>;
  embeddingModel?: string;
};

/** router.embed, when this router has it. */
export function embedder(router: Router): Embedding['embed'] {
  const r = router as unknown as Embedding;
  return typeof r.embed === 'function' ? r.embed.bind(router) : undefined;
}
