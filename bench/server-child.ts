// The server section's child process (bench/server-section.ts starts it):
// a router, measured in-process, and/or our HTTP server over it, which the
// parent drives from its own process as a client would.
//
//   --mode hits   a router with a mock remote; exact-cache hits timed through
//                 router.chat() (one at a time, then N in flight); prints the
//                 result, then serves the same router until SIGTERM.
//   --mode local  a router over the local model alone; N completions at once,
//                 timed in-process; prints the result and exits.
//   --mode serve  a router over the local model alone, served until SIGTERM.
//   --mode bare   for scale: a bare fastify app whose one POST route answers a
//                 fixed body as large as a hit's, served until SIGTERM.
//
// Lines on stdout: `BENCH-RESULT {json}` (child.ts's prefix) and `BENCH-SERVE <url>`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { createRouter, MockBackend, type Router, type RouterOptions } from '../src/index.js';
import { startServer } from '../src/server/app.js';
import { invokedDirectly, RESULT_PREFIX } from './child.js';
import { HIT_REQUEST } from './router.js';
import { drive, type LoadResult } from './server-client.js';

export const SERVE_PREFIX = 'BENCH-SERVE ';

export interface HitsChildOptions { calls: number; warmup: number; inFlight: number }
export interface HitsChildResult { sequential: LoadResult; concurrent: LoadResult }

export interface LocalChildOptions {
  model: string;
  threads: number;
  gpu: boolean;
  sequences: number;
  /** KV cells per sequence. */
  perSequence: number;
  maxTokens: number;
  /** Per round (the first is the warm-up), one prompt per sequence. */
  rounds: string[][];
}

export interface RoundResult { wallMs: number; completionTokens: number; promptTokens: number; short: number }
export interface LocalChildResult { rounds: RoundResult[]; loadMs: number }

/** The local router of both local modes: the model alone, caches off, nothing in the background. */
export function localRouterOptions(o: LocalChildOptions, cacheDir: string): RouterOptions {
  return {
    model: o.model, cacheDir, quiet: true, env: {}, useApi: false, trainLocal: false, enableCache: false, embedder: false,
    shadowRate: 0, auditRate: 0, sequences: o.sequences, contextSize: o.perSequence, threads: o.threads,
    device: o.gpu ? 'cuda' : 'cpu',
  };
}

async function hits(o: HitsChildOptions, dir: string): Promise<Router> {
  const router = await createRouter({ remote: new MockBackend(), local: false, embedder: false, quiet: true, cacheDir: dir, env: {} });
  const first = await router.chat(HIT_REQUEST);
  if (first.route !== 'remote') throw new Error(`bench (server): first call went to ${first.route}, not remote`);
  let misses = 0;
  const call = async () => {
    if ((await router.chat(HIT_REQUEST)).route !== 'cache') misses++;
  };
  const sequential = await drive(o.calls, o.warmup, 1, call);
  const concurrent = await drive(o.calls, o.warmup, o.inFlight, call);
  if (misses > 0) throw new Error(`bench (server): ${misses} in-process calls were not exact-cache hits`);
  const result: HitsChildResult = { sequential, concurrent };
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
  return router;
}

async function local(o: LocalChildOptions, router: Router): Promise<LocalChildResult> {
  const rounds: RoundResult[] = [];
  for (const prompts of o.rounds) {
    const t0 = performance.now();
    const results = await Promise.all(prompts.map((prompt) =>
      router.complete({ prompt, maxTokens: o.maxTokens, temperature: 0, route: 'local', cache: false, task: 'bench' })));
    const wallMs = performance.now() - t0;
    for (const r of results) if (r.route !== 'local') throw new Error(`bench (server): an in-process call went to ${r.route}`);
    rounds.push({
      wallMs,
      completionTokens: results.reduce((a, r) => a + r.usage.completionTokens, 0),
      promptTokens: results.reduce((a, r) => a + r.usage.promptTokens, 0),
      short: results.filter((r) => r.usage.completionTokens < o.maxTokens).length,
    });
  }
  return { rounds, loadMs: 0 };
}

/** Serves `router` on a free loopback port until SIGTERM, then closes both. */
async function serve(router: Router, cleanup: () => void): Promise<void> {
  const server = await startServer(router, { port: 0 });
  process.on('SIGTERM', () => {
    void (async () => {
      await server.close({ graceMs: 1000 });
      await router.close();
      cleanup();
      process.exit(0);
    })();
  });
  process.stdout.write(`${SERVE_PREFIX}${server.url}\n`);
}

/** What HTTP costs with no router behind it: fastify parsing the JSON body and sending a JSON answer. */
async function bare(): Promise<void> {
  const app = Fastify({ logger: false });
  const answer = {
    id: 'chatcmpl-0000000000000000', object: 'chat.completion', created: 0, model: 'mock',
    choices: [{ index: 0, message: { role: 'assistant', content: `Echo: ${HIT_REQUEST.messages[1]!.content}`, refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 22, completion_tokens: 14, total_tokens: 36 },
  };
  app.post('/v1/chat/completions', async (_request, reply) => {
    reply.header('x-understudy-route', 'cache');
    return answer;
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
  process.stdout.write(`${SERVE_PREFIX}${url}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { mode: { type: 'string' }, options: { type: 'string' } } });
  if (!values.mode || !values.options) {
    console.error('usage: node --import tsx bench/server-child.ts --mode hits|local|serve|bare --options JSON (server-section.ts does this)');
    process.exit(2);
  }
  if (values.mode === 'bare') return bare();
  const dir = mkdtempSync(join(tmpdir(), 'understudy-bench-server-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const options = JSON.parse(values.options);
  if (values.mode === 'hits') return serve(await hits(options as HitsChildOptions, dir), cleanup);
  const o = options as LocalChildOptions;
  const t0 = performance.now();
  const router = await createRouter(localRouterOptions(o, dir));
  const loadMs = performance.now() - t0;
  if (values.mode === 'serve') return serve(router, cleanup);
  const result = { ...(await local(o, router)), loadMs };
  await router.close();
  cleanup();
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`, () => process.exit(0));
}

if (invokedDirectly(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.stack ?? err.message : String(err));
    process.exit(1);
  });
}
