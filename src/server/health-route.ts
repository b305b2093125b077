// GET /health: open without a key, so load balancers and `understudy serve`'s
// own callers can wait for the router. 503 until it has loaded (with
// Retry-After while it loads). Why a load failed may name paths and hosts: with
// a key set, only a request that presents it is told; others get the status.
import type { FastifyInstance } from 'fastify';
import type { Auth } from './auth.js';
import type { ServerContext } from './context.js';
import { LOADING_RETRY_AFTER_SECONDS } from './openai-errors.js';

export function healthRoute(app: FastifyInstance, ctx: ServerContext, auth: Auth | undefined): void {
  app.get('/health', async (request, reply) => {
    const { state } = ctx;
    if (state.status === 'ready') return { status: 'ok' };
    reply.code(503);
    if (state.status === 'loading') {
      reply.header('retry-after', String(LOADING_RETRY_AFTER_SECONDS));
      return { status: 'loading' };
    }
    return authorized(auth, request) ? { status: 'failed', message: state.failure!.message } : { status: 'failed' };
  });
}

function authorized(auth: Auth | undefined, request: Parameters<Auth>[0]): boolean {
  if (!auth) return true;
  try {
    auth(request);
    return true;
  } catch {
    return false;
  }
}
