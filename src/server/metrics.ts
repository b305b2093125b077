// GET /metrics: what the server and its router did, as Prometheus text.
// Each server has its own registry, so two servers in one process (tests, a
// bench) count apart; the process metrics (CPU, memory, event loop, GC) are the
// process's and come from one registry made once, because prom-client's
// collectors for them (a GC observer, an event-loop monitor) can never be
// stopped: one per server would leak.
//
// Router facts come from its events, HTTP facts from fastify's onResponse hook,
// and the rest (readiness, queue depth, requests in flight) is read when
// scraped. Label values come only from fixed sets, route patterns, status codes
// and checked task names: never a raw URL, a header as sent, or a key.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CallEvent, FailureEvent } from '../router/events.js';
import type { RoundReport, TrainingProgress } from '../router/learner.js';
import type { Route } from '../router/request.js';
import type { Router } from '../router/router.js';

const ROUTES: readonly Route[] = ['cache', 'semantic-cache', 'local', 'remote'];
// The router's own task syntax (checkTask): anything else is not a task it answered for.
const TASK = /^[\w.:/@-]{1,100}$/;
// A client that left before its answer was finished (nginx's convention).
const CLIENT_CLOSED = 499;
// Tasks come from clients (a header, metadata.task): distinct values past this
// many share the label 'other', so a client inventing tasks cannot grow the
// HTTP counter's series (and each scrape) without bound.
export const MAX_TASK_LABELS = 200;

let processRegistry: Registry | undefined;

function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export interface ServerMetrics {
  /** This server's own metrics (without the process metrics). */
  readonly registry: Registry;
  /** The whole /metrics text. */
  text(): Promise<string>;
}

export function installMetrics(app: FastifyInstance, getRouter: () => Router | undefined, server: { inFlight(): number }): ServerMetrics {
  const registry = new Registry();
  const registers = [registry];
  // Made now, not at the first scrape, so the event-loop and GC figures have something to show by then.
  processMetrics();
  const m = makeMetrics(registers);
  const tasks = new TaskLabels(MAX_TASK_LABELS);
  let router: Router | undefined;
  let detach: (() => void) | undefined;
  let answers = 0;
  let localAnswers = 0;

  /** Listens to the router once it exists: the server may start before it has loaded. */
  const attach = (): Router | undefined => {
    if (router) return router;
    const r = getRouter();
    if (!r) return undefined;
    router = r;
    detach = listen(r, registers, {
      call: (e) => {
        answers++;
        if (e.route === 'local') localAnswers++;
      },
    }, m);
    return r;
  };

  new Gauge({
    name: 'understudy_local_share', help: 'Share of answers the local model gave (local answers / answers)', registers,
    collect() {
      this.set(answers === 0 ? 0 : localAnswers / answers);
    },
  });
  new Gauge({
    name: 'understudy_requests_in_flight', help: 'HTTP requests being answered', registers,
    collect() {
      this.set(server.inFlight());
    },
  });
  new Gauge({
    name: 'understudy_queue_depth', help: "Local generations waiting for a free sequence", registers,
    collect() {
      // A capability: a backend without it (a remote-only router, a caller's own backend) has no queue to show.
      const depth: unknown = attach()?.local?.queueDepth?.();
      this.set(typeof depth === 'number' && Number.isFinite(depth) ? depth : 0);
    },
  });
  // One collect fills the three gauges of a task, so readiness is read once per task per scrape;
  // the gauge that collects is registered first, so the other two are filled when they are read.
  const readiness: Gauge = new Gauge({
    name: 'understudy_readiness', help: "A task's readiness: mean similarity of local to remote answers (absent before the first comparison)", labelNames: ['task'], registers,
    collect() {
      readiness.reset();
      comparisons.reset();
      ready.reset();
      const r = attach();
      if (!r) return;
      try {
        for (const { task } of r.datasetTasks()) {
          const state = r.readiness(task);
          if (state.readiness !== null) readiness.set({ task }, state.readiness);
          comparisons.set({ task }, state.comparisons);
          ready.set({ task }, state.ready ? 1 : 0);
        }
      } catch {
        // A closed router (shutting down) has no readiness to give: the scrape goes on without it.
      }
    },
  });
  const comparisons = new Gauge({ name: 'understudy_readiness_comparisons', help: "Comparisons behind a task's readiness", labelNames: ['task'], registers });
  const ready = new Gauge({ name: 'understudy_task_ready', help: 'Whether a task is served locally (1) or not (0)', labelNames: ['task'], registers });

  const record = (request: FastifyRequest, reply: FastifyReply, status: number, seconds: number) => {
    const endpoint = request.routeOptions.url ?? 'unmatched';
    const route = routeLabel(reply.getHeader('x-understudy-route'));
    const task = tasks.label(reply.getHeader('x-understudy-task'));
    m.requests.inc({ endpoint, route, task, status: String(status) });
    m.duration.observe({ endpoint, route }, seconds);
  };
  app.addHook('onRequest', (request, reply, done) => {
    attach();
    // 'finish' never comes for a response cut short, so onResponse does not run: count it here.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) record(request, reply, CLIENT_CLOSED, reply.elapsedTime / 1000);
    });
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    record(request, reply, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  // A router still loading is looked for until it is there, so that what it does before the
  // first request or scrape (a training round at start-up) is counted too.
  const poll = attach() ? undefined : setInterval(() => attach() && clearInterval(poll), 50).unref();
  app.addHook('onClose', (_instance, done) => {
    clearInterval(poll);
    detach?.();
    detach = undefined;
    done();
  });

  const text = async () => {
    attach();
    return (await registry.metrics()) + (await processMetrics().metrics());
  };
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return text();
  });
  return { registry, text };
}

function makeMetrics(registers: Registry[]) {
  const answers = new Counter({ name: 'understudy_answers_total', help: 'Answers by where they came from', labelNames: ['route'], registers });
  for (const route of ROUTES) answers.inc({ route }, 0);
  const cacheHits = new Counter({ name: 'understudy_cache_hits_total', help: 'Answers from the exact or the semantic cache', labelNames: ['kind'], registers });
  cacheHits.inc({ kind: 'exact' }, 0);
  cacheHits.inc({ kind: 'semantic' }, 0);
  return {
    requests: new Counter({ name: 'understudy_http_requests_total', help: 'HTTP requests by endpoint, route, task and status', labelNames: ['endpoint', 'route', 'task', 'status'], registers }),
    duration: new Histogram({
      name: 'understudy_http_request_duration_seconds', help: 'HTTP request duration, to the last byte', labelNames: ['endpoint', 'route'], registers,
      // From a cache hit (well under a millisecond) to a long local generation.
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    }),
    tokens: new Counter({ name: 'understudy_tokens_total', help: 'Tokens of answered calls: in (prompt) and out (completion)', labelNames: ['direction', 'route'], registers }),
    answers,
    cacheHits,
    saved: new Counter({ name: 'understudy_remote_calls_saved_total', help: 'Answers a router with a remote gave without calling it (caches, local model)', registers }),
    failures: new Counter({ name: 'understudy_failures_total', help: 'Router calls that failed, by error code', labelNames: ['code'], registers }),
  };
}

/** Subscribes to the router's events; returns what unsubscribes them. */
function listen(router: Router, registers: Registry[], hooks: { call(e: CallEvent): void }, m: ReturnType<typeof makeMetrics>): () => void {
  const onCall = (e: CallEvent) => {
    hooks.call(e);
    const route = routeLabel(e.route);
    m.answers.inc({ route });
    if (e.route === 'cache') m.cacheHits.inc({ kind: 'exact' });
    if (e.route === 'semantic-cache') m.cacheHits.inc({ kind: 'semantic' });
    // A local answer after the remote failed saved nothing: the remote was called.
    if (router.remote && e.route !== 'remote' && e.fallbackFrom !== 'remote') m.saved.inc();
    // prom-client's inc() throws on a negative or non-finite amount; a count we cannot trust is left out.
    const tokens = (n: unknown) => (typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : 0);
    m.tokens.inc({ direction: 'in', route }, tokens(e.usage?.promptTokens));
    m.tokens.inc({ direction: 'out', route }, tokens(e.usage?.completionTokens));
  };
  const onFailure = (e: FailureEvent) => m.failures.inc({ code: /^[A-Z_]{1,40}$/.test(e.code) ? e.code : 'OTHER' });
  router.on('call', onCall);
  router.on('failure', onFailure);
  const off = () => {
    router.off('call', onCall);
    router.off('failure', onFailure);
  };
  if (!hasLearner(router)) return off;
  const rounds = new Counter({ name: 'understudy_training_rounds_total', help: 'Training rounds by decision: promoted, kept, skipped (not enough data), failed, aborted', labelNames: ['decision'], registers });
  for (const decision of ['promoted', 'kept', 'skipped', 'failed', 'aborted']) rounds.inc({ decision }, 0);
  const onRound = (r: RoundReport) => rounds.inc({ decision: r.promoted ? 'promoted' : r.steps === 0 ? 'skipped' : 'kept' });
  // A round that fails or is aborted reports no RoundReport, only its last phase.
  const onTraining = (p: TrainingProgress) => {
    if (p.phase === 'failed' || p.phase === 'aborted') rounds.inc({ decision: p.phase });
  };
  router.on('round', onRound);
  router.on('training', onTraining);
  return () => {
    off();
    router.off('round', onRound);
    router.off('training', onTraining);
  };
}

function hasLearner(router: Router): boolean {
  try {
    router.adapters();
    return true;
  } catch {
    return false;
  }
}

function routeLabel(value: unknown): string {
  return typeof value === 'string' && (ROUTES as readonly string[]).includes(value) ? value : '';
}

/** Task label values: checked task names, the first `max` distinct ones by name, 'other' after them. */
class TaskLabels {
  readonly #seen = new Set<string>();
  constructor(readonly max: number) {}

  label(value: unknown): string {
    if (typeof value !== 'string' || !TASK.test(value)) return '';
    if (this.#seen.has(value)) return value;
    if (this.#seen.size >= this.max) return 'other';
    this.#seen.add(value);
    return value;
  }
}
