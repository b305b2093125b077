// GET /v1/models: the models that may answer: the remote's, the local one,
// and the local one's promoted adapter when training is attached.
import type { FastifyInstance } from 'fastify';
import { UnderstudyError } from '../errors.js';
import type { Router } from '../index.js';
import type { ServerContext } from './context.js';

function currentAdapter(router: Router): number | undefined {
  try {
    return router.adapters().find((a) => a.status === 'current')?.version;
  } catch (err) {
    // No learner attached: no adapters to list.
    if (err instanceof UnderstudyError && err.code === 'TRAINING_UNSUPPORTED') return undefined;
    throw err;
  }
}

export function modelsRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/models', async () => {
    const router = ctx.state.get();
    const model = (id: string, owner: string) => ({ id, object: 'model', created: ctx.startedAt, owned_by: owner });
    const data = [];
    if (router.remote) data.push(model(router.remote.model, 'remote'));
    if (router.local) {
      data.push(model(router.local.model, 'local'));
      const version = currentAdapter(router);
      if (version !== undefined) data.push(model(`${router.local.model}:adapter-${version}`, 'adapter'));
    }
    return { object: 'list', data };
  });
}
