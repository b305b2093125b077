// `understudy serve`'s HTTP server: the OpenAI API over a router, on fastify.
// It listens at once; while the router loads, /health says so (503) and the
// other routes answer 503 NOT_READY. This file puts the parts together: the
// hooks (auth, one log line per request), the error shape, the routes.
import Fastify, { type FastifyInstance } from 'fastify';
import { UnderstudyError } from '../errors.js';
import type { Router } from '../index.js';
import { makeRedactor } from '../router/redact.js';
import * as v from '../validate.js';
import { makeAuth, type Auth } from './auth.js';
import type { CallControl } from './call-control.js';
import { chatRoute } from './chat-route.js';
import { completionsRoute } from './completions-route.js';
import type { ServerContext } from './context.js';
import { embeddingsRoute } from './embeddings-route.js';
import { installErrorHandling } from './error-handler.js';
import { healthRoute } from './health-route.js';
import { listenOrClose } from './listen.js';
import { installMetrics } from './metrics.js';
import { modelsRoute } from './models-route.js';
import { RouterState } from './router-state.js';
import { httpError } from './openai-errors.js';

export interface ServerOptions {
  /** Default '127.0.0.1': loopback unless asked otherwise. */
  host?: string;
  /** Default 8080; 0 = a free port. */
  port?: number;
  /** With a key, every route but /health needs `Authorization: Bearer KEY` or `X-Api-Key: KEY`. */
  apiKey?: string;
  /** Largest request body in bytes (default 4 MiB); larger ones get 413. */
  bodyLimit?: number;
  /** Longest a whole answer may take (default 600000 ms); then the call is aborted: 504 TIMEOUT, or an error event on a stream. */
  requestTimeoutMs?: number;
  /** Takes one line per request (method, path, status, ms, route, task); never a key. */
  log?: (line: string) => void;
}

export interface UnderstudyServer {
  /** http://host:port */
  readonly url: string;
  readonly app: FastifyInstance;
  /** Stops taking requests, lets those in flight finish for up to graceMs (default 10000), aborts the rest. Does not close the router. */
  close(options?: { graceMs?: number }): Promise<void>;
}

const DEFAULT_BODY_LIMIT = 4 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 600_000;
const MAX_RECEIVE_MS = 60_000;

function checkOptions(options: ServerOptions | undefined) {
  const o = v.options(options);
  const apiKey = o.apiKey === undefined ? undefined : v.nonEmptyString(o.apiKey, 'apiKey');
  return {
    host: o.host === undefined ? '127.0.0.1' : v.nonEmptyString(o.host, 'host'),
    port: v.integer(o.port, 'port', 8080, 0, 65535),
    apiKey,
    bodyLimit: v.integer(o.bodyLimit, 'bodyLimit', DEFAULT_BODY_LIMIT, 1, 2 ** 31 - 1),
    requestTimeoutMs: v.integer(o.requestTimeoutMs, 'requestTimeoutMs', DEFAULT_TIMEOUT_MS, 1, 2 ** 31 - 1),
    log: v.fn<(line: string) => void>(o.log, 'log'),
  };
}

export async function startServer(router: Router | Promise<Router>, options?: ServerOptions): Promise<UnderstudyServer> {
  const o = checkOptions(options);
  const redact = makeRedactor([o.apiKey]);
  const ctx: ServerContext = {
    state: new RouterState(router, redact),
    calls: new Set<CallControl>(),
    timeoutMs: o.requestTimeoutMs,
    redact,
    startedAt: Math.floor(Date.now() / 1000),
    closing: false,
  };
  const app = Fastify({
    logger: false,
    bodyLimit: o.bodyLimit,
    // Node's own limit on receiving a request (headers and body): without it a
    // client trickling a body holds its socket for ever. The answer's own time
    // is CallControl's (requestTimeoutMs); the request itself needs far less.
    requestTimeout: Math.min(o.requestTimeoutMs, MAX_RECEIVE_MS),
    // Our own 503 while closing (installHooks), in OpenAI's shape rather than fastify's.
    return503OnClosing: false,
    // Types as sent: "5" is not a number, as at OpenAI. `verbose` gives the
    // failing value to the error message (validation.ts).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, verbose: true } },
  });
  installErrorHandling(app, redact, o.bodyLimit);
  const auth = makeAuth(o.apiKey);
  installHooks(app, ctx, auth, o.log);
  healthRoute(app, ctx, auth);
  chatRoute(app, ctx);
  completionsRoute(app, ctx);
  embeddingsRoute(app, ctx);
  modelsRoute(app, ctx);
  // /metrics (metrics.ts, helper OPS's): router facts from its events, HTTP facts from onResponse.
  installMetrics(app, () => ctx.state.current, { inFlight: () => ctx.calls.size });

  await listenOrClose(app, o.host, o.port);
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${host}:${port}`,
    app,
    close: (closeOptions) => closeServer(app, ctx, closeOptions),
  };
}

function installHooks(app: FastifyInstance, ctx: ServerContext, auth: Auth | undefined, log: ((line: string) => void) | undefined): void {
  // First: a request refused by auth gets its log line too.
  if (log) {
    app.addHook('onRequest', async (request, reply) => {
      // On the response's 'close', which comes once for every request, also
      // for one cut short (fastify's onResponse does not run for those).
      reply.raw.once('close', () => {
        // The path only: a query string may hold anything.
        const path = request.url.split('?')[0]!.slice(0, 200);
        const route = reply.getHeader('x-understudy-route') ?? '-';
        const task = reply.getHeader('x-understudy-task') ?? '-';
        // 499: the client left before the answer was finished (nginx's convention, as in metrics.ts).
        const status = reply.raw.writableFinished ? reply.statusCode : 499;
        try {
          log(ctx.redact(`${request.method} ${path} ${status} ${reply.elapsedTime.toFixed(1)}ms route=${String(route)} task=${String(task)}`));
        } catch {
          // A failing log sink must not fail the server.
        }
      });
    });
  }
  app.addHook('onRequest', async (_request, reply) => {
    if (!ctx.closing) return;
    const { status, body } = httpError(new UnderstudyError('CLOSED', 'the server is shutting down'));
    return reply.code(status).send(body);
  });
  if (auth) {
    app.addHook('onRequest', async (request, reply) => {
      if (request.url.split('?')[0] === '/health') return;
      try {
        auth(request);
      } catch (err) {
        const { status, body } = httpError(err);
        return reply.code(status).send(body);
      }
    });
  }
}

async function closeServer(app: FastifyInstance, ctx: ServerContext, options: { graceMs?: number } | undefined): Promise<void> {
  const graceMs = v.number(v.options(options).graceMs, 'graceMs', 10_000, 0, 2 ** 31 - 1);
  ctx.closing = true;
  const closed = app.close();
  // Fastify closes the keep-alive connections idle now; those of answers still
  // running go idle later and would hold close() until the grace ran out.
  const closeIdle = () => setImmediate(() => app.server.closeIdleConnections());
  for (const call of ctx.calls) void call.closed.then(closeIdle);
  // ...and so do those of requests already past the closing check that get their call from now on.
  ctx.onCall = (call) => void call.closed.then(closeIdle);
  const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
  await Promise.race([closed, wait(graceMs)]);
  // Grace is over: what is still running is aborted and answers with CLOSED (503, or an error event).
  for (const call of [...ctx.calls]) call.abort('shutdown');
  await Promise.race([closed, wait(1000)]);
  app.server.closeAllConnections();
  await closed;
}
