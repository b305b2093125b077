// The one way chat and completions answer: call the router with the
// request's abort signal, then send the whole answer, or (stream: true) the
// SSE body once the stream says where its answer comes from.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { UnderstudyError } from '../errors.js';
import type { Router } from '../index.js';
import { answerHeaders, control, type ServerContext } from './context.js';
import { HttpRequestError } from './openai-errors.js';
import { callHeaders, chatRequest, completeRequest, includeUsage } from './openai-request.js';
import { chatCompletion, textCompletion } from './openai-response.js';
import { SSE_HEADERS, sseBody } from './sse.js';

type Body = Record<string, any>;

/**
 * A remote resting after failures says how long it rests: a client that honours
 * Retry-After comes back when the remote may be tried again, not at once.
 */
function retryAfterCooldown(err: unknown, router: Router): unknown {
  if (!(err instanceof UnderstudyError) || err.code !== 'REMOTE_UNAVAILABLE' || err instanceof HttpRequestError) return err;
  let ms = 0;
  try {
    ms = router.remote?.coolingFor?.() ?? 0;
  } catch {
    // A caller's backend whose coolingFor throws: no hint.
  }
  if (!(ms > 0)) return err;
  return new HttpRequestError('REMOTE_UNAVAILABLE', err.message, null, undefined, Math.ceil(ms / 1000));
}

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
    throw retryAfterCooldown(call.error(err), router);
  } finally {
    // A stream's body calls done() when it ends.
    if (!streaming) call.done();
  }
}
