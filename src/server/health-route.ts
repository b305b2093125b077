// GET /health: open without a key, so load balancers and `understudy serve`'s
// own callers can wait for the router. 503 until it has loaded.
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from './context.js';

export function healthRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/health', async (_request, reply) => {
    const { state } = ctx;
    if (state.status === 'ready') return { status: 'ok' };
    reply.code(503);
    return state.status === 'loading' ? { status: 'loading' } : { status: 'failed', message: state.failure!.message };
  });
}
