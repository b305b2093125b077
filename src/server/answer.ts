// The one way chat and completions answer: call the router with the
// request's abort signal, then send the whole answer, or (stream: true) the
// SSE body once the stream says where its answer comes from.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { answerHeaders, control, type ServerContext } from './context.js';
import { callHeaders, chatRequest, completeRequest, includeUsage } from './openai-request.js';
import { chatCompletion, textCompletion } from './openai-response.js';
import { SSE_HEADERS, sseBody } from './sse.js';

type Body = Record<string, any>;

export async function answer(ctx: ServerContext, kind: 'chat' | 'complete', request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const router = ctx.state.get();
  const body = request.body as Body;
  const call = control(ctx, reply);
  let streaming = false;
  try {
    const headers = callHeaders(request.headers);
    if (body.stream !== true) {
      const result = kind === 'chat'
        ? await router.chat({ ...chatRequest(body, headers, call.signal), stream: false })
        : await router.complete({ ...completeRequest(body, headers, call.signal), stream: false });
      answerHeaders(reply, result);
      return kind === 'chat' ? chatCompletion(result) : textCompletion(result);
    }
    const stream = kind === 'chat'
      ? router.chat({ ...chatRequest(body, headers, call.signal), stream: true })
      : router.complete({ ...completeRequest(body, headers, call.signal), stream: true });
    // Settles just before the first piece: a failure before it still gets a real status.
    const info = await stream.info;
    answerHeaders(reply, info);
    reply.headers(SSE_HEADERS);
    streaming = true;
    return reply.send(sseBody(stream, { kind, model: info.model, includeUsage: includeUsage(body), control: call, redact: ctx.redact }));
  } catch (err) {
    throw call.error(err);
  } finally {
    // A stream's body calls done() when it ends.
    if (!streaming) call.done();
  }
}
