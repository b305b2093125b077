// POST /v1/completions: prompt continuation, no chat template.
import type { FastifyInstance } from 'fastify';
import { answer } from './answer.js';
import type { ServerContext } from './context.js';
import { completionBodySchema } from './schemas.js';

export function completionsRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/completions', { schema: { body: completionBodySchema } }, (request, reply) => answer(ctx, 'complete', request, reply));
}
