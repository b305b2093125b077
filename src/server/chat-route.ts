// POST /v1/chat/completions.
import type { FastifyInstance } from 'fastify';
import { answer } from './answer.js';
import type { ServerContext } from './context.js';
import { chatBodySchema } from './schemas.js';

export function chatRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/chat/completions', { schema: { body: chatBodySchema } }, (request, reply) => answer(ctx, 'chat', request, reply));
}
