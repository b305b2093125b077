// GET /v1/models: the models that may answer: the remote's, the local one,
// and the local one's promoted adapter when training is attached.
import type { FastifyInstance } from 'fastify';
import { UnderstudyError } from '../errors.js';
import type { Router } from '../index.js';
import type { ServerContext } from './context.js';
import { HttpRequestError } from './openai-errors.js';

function currentAdapter(router: Router): number | undefined {
  try {
    return router.adapters().find((a) => a.status === 'current')?.version;
  } catch (err) {
    // No learner attached: no adapters to list.
    if (err instanceof UnderstudyError && err.code === 'TRAINING_UNSUPPORTED') return undefined;
    throw err;
  }
}

function listed(router: Router, created: number) {
  const model = (id: string, owner: string) => ({ id, object: 'model', created, owned_by: owner });
  const data = [];
  if (router.remote) data.push(model(router.remote.model, 'remote'));
  if (router.local) {
    data.push(model(router.local.model, 'local'));
    const version = currentAdapter(router);
    if (version !== undefined) data.push(model(`${router.local.model}:adapter-${version}`, 'adapter'));
  }
  return data;
}

export function modelsRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/models', async () => ({ object: 'list', data: listed(ctx.state.get(), ctx.startedAt) }));
  // GET /v1/models/{id} (the client's models.retrieve); an id may hold slashes ("openai/gpt-4o").
  app.get('/v1/models/*', async (request) => {
    const id = (request.params as { '*': string })['*'];
    const found = listed(ctx.state.get(), ctx.startedAt).find((m) => m.id === id);
    if (!found) throw new HttpRequestError('NOT_FOUND', `The model ${JSON.stringify(id.slice(0, 200))} does not exist`, 'model');
    return found;
  });
}
