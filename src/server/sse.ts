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
  const chunks = new Chunks(o.kind, o.model, o.includeUsage);
  try {
    // The role chunk goes with the first piece, or at the end: before tool calls
    // its content is null (OpenAI's), which is only known once the answer is.
    let started = o.kind !== 'chat';
    for await (const piece of stream) {
      if (!piece) continue;
      if (!started) yield event(chunks.start(''));
      started = true;
      yield event(chunks.text(piece));
    }
    const result = await stream.result;
    const calls = result.toolCalls?.length ? result.toolCalls : undefined;
    if (!started) yield event(chunks.start(calls ? null : ''));
    if (calls) {
      // Text the model wrote beside its calls (a remote may send both) goes first, as content.
      if (result.content) yield event(chunks.text(result.content));
      yield event(chunks.toolCalls(calls));
    }
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
