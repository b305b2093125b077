// POST /v1/embeddings: router.embed() in OpenAI's list shape. `base64` is the
// vector's float32 bytes (little-endian), which is what the official client
// asks for when its caller does not say, and decodes itself.
import type { FastifyInstance } from 'fastify';
import { control, type ServerContext } from './context.js';
import { HttpRequestError } from './openai-errors.js';
import { embeddingBodySchema } from './schemas.js';

function base64(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
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
      throw call.error(err);
    } finally {
      call.done();
    }
  });
}
