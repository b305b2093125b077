// The createRouter the package exports: the router's own, plus the
// distillation loop when it can run. Training needs three things the router
// has or not: trainLocal on, a local backend that can take adapters (a model
// file it can say it loaded and a way to swap adapters), and an embedder to
// compare answers. Without them no learner is attached, and router.train()
// says which is missing. The router never imports this layer: it is attached
// from here, through router.attachLearner.
import { createRouter as createBareRouter } from '../router/create-router.js';
import type { Router, RouterOptions } from '../router/router.js';
import * as v from '../validate.js';
import { Distiller } from './distiller.js';
import { distillSettings, type DistillOptions } from './options.js';

export interface TrainingRouterOptions extends RouterOptions {
  /** How rounds train and judge candidates (see DistillOptions). */
  training?: DistillOptions;
}

export async function createRouter(options?: TrainingRouterOptions): Promise<Router> {
  const { training, ...rest } = v.options(options, 'options');
  // Checked before anything is loaded, so a bad value costs nothing.
  distillSettings(training);
  const router = await createBareRouter(rest);
  const local = router.local;
  if (!router.settings.trainLocal || !local?.trainingSource || !local.useAdapter || !router.hasEmbedder) return router;
  try {
    let distiller: Distiller | undefined;
    router.attachLearner((hooks) => (distiller = new Distiller(hooks, training)));
    await distiller!.start();
  } catch (err) {
    await router.close().catch(() => undefined);
    throw err;
  }
  return router;
}
