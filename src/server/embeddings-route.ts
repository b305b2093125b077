// POST /v1/embeddings: router.embed() in OpenAI's list shape. `base64` is the
// vector's float32 bytes (little-endian), which is what the official client
// asks for when its caller does not say, and decodes itself.
import type { FastifyInstance } from 'fastify';
import { control, type ServerContext } from './context.js';
import { UnderstudyError } from '../errors.js';
import { HttpRequestError } from './openai-errors.js';
import { embeddingBodySchema } from './schemas.js';

function base64(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
}

/**
 * A router error in the terms of this endpoint: the router names its argument
 * `texts`, the client sent `input`; and a router with no embedder will not get
 * one by waiting, so NO_BACKEND is 501 (clients retry a 503).
 */
function asEmbeddingError(err: unknown): unknown {
  if (!(err instanceof UnderstudyError) || err instanceof HttpRequestError) return err;
  if (err.code === 'NO_BACKEND') return new HttpRequestError('NO_BACKEND', err.message, null, 501);
  if (err.code !== 'INVALID_ARGUMENT') return err;
  const message = err.message.replace(/\bfor texts\b/g, 'for input').replace(/\btexts\[/g, 'input[');
  const param = /^Expected .+? for (input(?:\[\d+\])?) but received /.exec(message)?.[1] ?? 'input';
  return new HttpRequestError('INVALID_ARGUMENT', message, param);
}

export function embeddingsRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/embeddings', { schema: { body: embeddingBodySchema } }, async (request, reply) => {
    const router = ctx.state.get();
    const body = request.body as { input: string | string[]; encoding_format?: string | null; dimensions?: number | null };
    const texts = typeof body.input === 'string' ? [body.input] : body.input;
    const call = control(ctx, reply);
    try {
      const { vectors, model, promptTokens } = await router.embed(texts, { signal: call.signal });
      const size = vectors[0]?.length ?? 0;
      if (body.dimensions != null && body.dimensions !== size) {
        throw new HttpRequestError('INVALID_ARGUMENT',
          `Expected ${size} for dimensions (the embedding model's size; shortening is not supported) but received ${body.dimensions} of type number`, 'dimensions');
      }
      const encode = body.encoding_format === 'base64' ? base64 : (v: Float32Array) => Array.from(v);
      return {
        object: 'list',
        data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: encode(v) })),
        model,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      };
    } catch (err) {
      throw call.error(asEmbeddingError(err));
    } finally {
      call.done();
    }
  });
}
