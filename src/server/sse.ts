// Server-sent events for a streamed answer: the router's stream, iterated as
// it comes, as OpenAI chunks: the role first (chat), a delta per piece, the
// tool calls in one delta, the finish, usage if asked for, then [DONE]. An
// error after the headers went out cannot change the status: it goes as one
// `data: {"error": ...}` event, and the stream ends there.
import { Readable } from 'node:stream';
import type { RouterStream, RouterResult } from '../index.js';
import type { CallControl } from './call-control.js';
import { httpError } from './openai-errors.js';
import { Chunks } from './openai-response.js';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  // Proxies such as nginx would otherwise hold the events back.
  'x-accel-buffering': 'no',
} as const;

const event = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`;

export interface SseOptions {
  kind: 'chat' | 'complete';
  model: string;
  includeUsage: boolean;
  control: CallControl;
  redact: (text: string) => string;
}

async function* events(stream: RouterStream<RouterResult>, o: SseOptions): AsyncGenerator<string> {
  const chunks = new Chunks(o.kind, o.model);
  try {
    if (o.kind === 'chat') yield event(chunks.start());
    for await (const piece of stream) {
      if (piece) yield event(chunks.text(piece));
    }
    const result = await stream.result;
    if (result.toolCalls?.length) yield event(chunks.toolCalls(result.toolCalls));
    yield event(chunks.finish(result.finishReason));
    if (o.includeUsage) yield event(chunks.usage(result.usage));
    yield 'data: [DONE]\n\n';
  } catch (err) {
    yield event(httpError(o.control.error(err), o.redact).body);
  } finally {
    o.control.done();
  }
}

/** The response body of a streamed answer. Destroying it (the client left) ends the iteration, which aborts the call. */
export function sseBody(stream: RouterStream<RouterResult>, options: SseOptions): Readable {
  return Readable.from(events(stream, options), { objectMode: false });
}
