// `npm run bench -- --only server`: what HTTP costs. (a) Exact-cache hits
// through our server against the same hits in-process (router.chat() on a
// warm cache); (b) local generation, N sequences at once, through our server,
// in-process through the router, and through llama.cpp's llama-server built
// from the same tree, with the same model, slots, context per slot, threads,
// batch, prompts and token counts. Each server runs in a process of its own
// and is driven from this one over keep-alive HTTP. See bench/README.md, "Server".
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RESULT_PREFIX } from './child.js';
import { toolDirs } from './llama-tools.js';
import { watchPid } from './machine.js';
import { rng } from './ours.js';
import { repoRoot } from './models.js';
import { summarize, type Stat } from './report.js';
import { HIT_REQUEST } from './router.js';
import { SERVE_PREFIX, type HitsChildOptions, type HitsChildResult, type LocalChildOptions, type LocalChildResult, type RoundResult } from './server-child.js';
import { BenchClient, drive, waitHealthy, type LoadResult } from './server-client.js';

/** Goal of issue 11: HTTP adds less than this to an exact hit's p99 (ms). */
export const ADDED_P99_GOAL_MS = 1;
/** Goal: our server's generation throughput at least this share of llama-server's. */
export const SERVER_TG_GOAL = 0.95;

export interface ServerBenchOptions {
  threads: number;
  gpu: boolean;
  /** Measured rounds of local generation, after one warm-up round. */
  reps: number;
  hits: HitsChildOptions;
  /** null: the local part is left out (no model or no llama-server). */
  local: { model: string; label: string; sequences: number; perSequence: number; maxTokens: number; promptWords: number } | null;
}

export interface HitSide { sequential: LoadResult; concurrent: LoadResult }

export interface LocalSide {
  /** Generated tokens per second of each measured round: all completion tokens / the round's wall time. */
  tps: Stat;
  rounds: RoundResult[];
  args?: string[];
}

export interface ServerBenchResult {
  hits: {
    inProcess: HitSide;
    http: HitSide;
    /** HTTP minus in-process, one request at a time (ms). */
    addedMs: { p50: number; p99: number };
    /** HTTP over in-process requests per second, N in flight. */
    throughputRatio: number;
    /** For scale: the same requests to a bare fastify route answering a fixed body (HTTP and JSON alone). */
    bareHttp: HitSide;
  };
  local: null | {
    label: string;
    settings: Omit<NonNullable<ServerBenchOptions['local']>, 'model'> & { threads: number; batchSize: number; request: Record<string, unknown> };
    llamaServer: LocalSide | null;
    oursHttp: LocalSide;
    oursInProcess: LocalSide;
    ratios: { httpVsLlamaServer: number | null; httpVsInProcess: number; inProcessVsLlamaServer: number | null };
    note?: string;
  };
  llamaServer: string | null;
  seconds: number;
}

/** llama-server in the tool directories run.ts searches, as cmake lays it out or flat. */
export function findLlamaServer(): string | undefined {
  const exe = process.platform === 'win32' ? 'llama-server.exe' : 'llama-server';
  for (const dir of toolDirs()) {
    for (const p of [join(dir, exe), join(dir, 'server', exe), join(dir, 'bin', exe)]) {
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

interface Running { proc: ChildProcess; waitFor(prefix: string): Promise<string>; alive(): boolean; stop(): Promise<void>; stderrTail(): string }

/** Starts a process whose stdout lines we wait on; stderr is passed through (ours) or kept (llama-server's chatter). */
function start(cmd: string, args: string[], keepStderr: boolean): Running {
  const proc = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', keepStderr ? 'pipe' : 'inherit'] });
  const unwatch = watchPid(proc.pid);
  let exited = false;
  let buffer = '';
  let stderr = '';
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buffer += d;
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    lines.push(...parts);
    wake();
  });
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
  const closed = new Promise<void>((r) => proc.on('close', () => {
    exited = true;
    unwatch();
    wake();
    r();
  }));
  return {
    proc,
    alive: () => !exited,
    stderrTail: () => stderr.slice(-3000),
    async waitFor(prefix) {
      for (;;) {
        const line = lines.find((l) => l.startsWith(prefix));
        if (line !== undefined) return line.slice(prefix.length);
        if (exited) throw new Error(`${cmd} exited before it printed ${prefix.trim()}`);
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    async stop() {
      if (!exited) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await closed;
      clearTimeout(timer);
    },
  };
}

function child(mode: string, options: unknown): Running {
  const path = fileURLToPath(new URL('./server-child.ts', import.meta.url));
  return start(process.execPath, ['--import', 'tsx', path, '--mode', mode, '--options', JSON.stringify(options)], false);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

// ---- (a) exact-cache hits ---------------------------------------------------

/** The hit call as an OpenAI request: the same messages, task and max tokens. */
const HIT_BODY = { model: 'bench', messages: HIT_REQUEST.messages, max_tokens: HIT_REQUEST.maxTokens, metadata: { task: HIT_REQUEST.task } };

/** Sequential then concurrent calls of `call` (which counts its own failures). */
async function load(o: HitsChildOptions, call: () => Promise<unknown>): Promise<HitSide> {
  return { sequential: await drive(o.calls, o.warmup, 1, call), concurrent: await drive(o.calls, o.warmup, o.inFlight, call) };
}

async function measureBare(o: HitsChildOptions): Promise<HitSide> {
  const c = child('bare', {});
  try {
    const client = new BenchClient(await c.waitFor(SERVE_PREFIX), o.inFlight);
    try {
      return await load(o, async () => {
        const r = await client.request('POST', '/v1/chat/completions', HIT_BODY);
        if (r.status !== 200) throw new Error(`bench (server): the bare route answered ${r.status}`);
      });
    } finally {
      client.close();
    }
  } finally {
    await c.stop();
  }
}

async function measureHits(o: HitsChildOptions, log: (m: string) => void): Promise<ServerBenchResult['hits']> {
  const bareHttp = await measureBare(o);
  const c = child('hits', o);
  try {
    const inProcess = JSON.parse(await c.waitFor(RESULT_PREFIX)) as HitsChildResult;
    const url = await c.waitFor(SERVE_PREFIX);
    const client = new BenchClient(url, o.inFlight);
    try {
      // The server's request may differ from HIT_REQUEST in what the router
      // hashes (defaults it fills in): the first call fills the cache if need be.
      const first = await client.request('POST', '/v1/chat/completions', HIT_BODY);
      if (first.status !== 200) throw new Error(`bench (server): the hit request got ${first.status}: ${JSON.stringify(first.body).slice(0, 300)}`);
      let misses = 0;
      const call = async () => {
        const r = await client.request('POST', '/v1/chat/completions', HIT_BODY);
        if (r.status !== 200 || r.headers['x-understudy-route'] !== 'cache') misses++;
      };
      const http = await load(o, call);
      const { sequential, concurrent } = http;
      if (misses > 0) throw new Error(`bench (server): ${misses} HTTP calls were not exact-cache hits`);
      const addedMs = { p50: sequential.ms.p50 - inProcess.sequential.ms.p50, p99: sequential.ms.p99 - inProcess.sequential.ms.p99 };
      log(`  exact hits, one at a time: in-process p50 ${(inProcess.sequential.ms.p50 * 1000).toFixed(0)} µs / p99 ${(inProcess.sequential.ms.p99 * 1000).toFixed(0)} µs; ` +
        `HTTP p50 ${(sequential.ms.p50 * 1000).toFixed(0)} µs / p99 ${(sequential.ms.p99 * 1000).toFixed(0)} µs`);
      log(`  exact hits, ${o.inFlight} in flight: in-process ${inProcess.concurrent.perSecond.toFixed(0)}/s, HTTP ${concurrent.perSecond.toFixed(0)}/s; ` +
        `bare fastify: p50 ${(bareHttp.sequential.ms.p50 * 1000).toFixed(0)} µs, ${bareHttp.concurrent.perSecond.toFixed(0)}/s`);
      return { inProcess, http, addedMs, throughputRatio: concurrent.perSecond / inProcess.concurrent.perSecond, bareHttp };
    } finally {
      client.close();
    }
  } finally {
    await c.stop();
  }
}

// ---- (b) local generation ---------------------------------------------------

const WORDS = ('the a one little big old red blue green small happy sad dog cat bird tree house river hill road town girl boy ' +
  'king queen ship star moon sun rain snow wind fire stone book song dream day night morning garden forest sea friend ' +
  'walked found saw made wanted played lived looked jumped ran sang told gave took asked').split(' ');

/** Distinct prompts, one per sequence and round (a different seed each), the same for every side. */
export function serverPrompts(rounds: number, sequences: number, words: number): string[][] {
  return Array.from({ length: rounds }, (_, r) => Array.from({ length: sequences }, (_, i) => {
    const next = rng(7000 + r * 1000 + i);
    const w = Array.from({ length: words }, () => WORDS[Math.floor(next() * WORDS.length)]!);
    return `Story ${r}.${i}: ${w.join(' ')}`;
  }));
}

/**
 * The completion request both servers get, the same bytes: greedy (our
 * temperature 0; llama-server's top_k 1 as well), a fixed length (llama-server:
 * ignore_eos; ours has no such switch and stops at an end-of-text token, which
 * the section checks for), no prompt cache on llama-server's side. Each server
 * ignores the fields it does not know.
 */
function completionBody(prompt: string, maxTokens: number): Record<string, unknown> {
  return { model: 'bench', prompt, max_tokens: maxTokens, temperature: 0, top_k: 1, ignore_eos: true, cache_prompt: false };
}

async function httpRounds(client: BenchClient, rounds: string[][], maxTokens: number, ours: boolean): Promise<RoundResult[]> {
  const headers: Record<string, string> = ours ? { 'x-understudy-route': 'local', 'x-understudy-task': 'bench' } : {};
  const out: RoundResult[] = [];
  for (const prompts of rounds) {
    const t0 = performance.now();
    const answers = await Promise.all(prompts.map((p) => client.request('POST', '/v1/completions', completionBody(p, maxTokens), headers)));
    const wallMs = performance.now() - t0;
    for (const a of answers) {
      if (a.status !== 200) throw new Error(`bench (server): a completion got ${a.status}: ${JSON.stringify(a.body).slice(0, 300)}`);
      if (ours && a.headers['x-understudy-route'] !== 'local') throw new Error(`bench (server): a completion went to ${String(a.headers['x-understudy-route'])}, not local`);
    }
    const usage = answers.map((a) => a.body.usage as { prompt_tokens: number; completion_tokens: number });
    out.push({
      wallMs,
      completionTokens: usage.reduce((s, u) => s + u.completion_tokens, 0),
      promptTokens: usage.reduce((s, u) => s + u.prompt_tokens, 0),
      short: usage.filter((u) => u.completion_tokens < maxTokens).length,
    });
  }
  return out;
}

function side(rounds: RoundResult[], args?: string[]): LocalSide {
  const measured = rounds.slice(1); // the first is the warm-up
  return { tps: summarize(measured.map((r) => (r.completionTokens * 1000) / r.wallMs)), rounds, ...(args ? { args } : {}) };
}

const BATCH = 512;

async function measureLocal(o: ServerBenchOptions, llamaServer: string | undefined, phase: (label: string) => void, log: (m: string) => void): Promise<NonNullable<ServerBenchResult['local']>> {
  const l = o.local!;
  const rounds = serverPrompts(o.reps + 1, l.sequences, l.promptWords);
  const childOptions: LocalChildOptions = { model: l.model, threads: o.threads, gpu: o.gpu, sequences: l.sequences, perSequence: l.perSequence, maxTokens: l.maxTokens, rounds };
  const show = (name: string, s: LocalSide) => log(`  ${name}: ${s.tps.mean.toFixed(2)} ± ${s.tps.stddev.toFixed(2)} generated t/s` +
    `${s.rounds.some((r) => r.short > 0) ? ` (${s.rounds.reduce((a, r) => a + r.short, 0)} answers stopped early)` : ''}`);

  let ls: LocalSide | null = null;
  if (llamaServer) {
    phase(`server: llama-server, ${l.sequences} sequences`);
    const port = await freePort();
    // Our side's context, slot for slot: -c is sequences x cells per sequence, one KV stream
    // per slot (as ours), batch and micro-batch 512 (our context's), no RAM prompt cache, no web page.
    const args = [
      '-m', l.model, '-t', String(o.threads), '-tb', String(o.threads), '-c', String(l.sequences * l.perSequence), '-np', String(l.sequences),
      '--no-kv-unified', '-b', String(BATCH), '-ub', String(BATCH), '-ngl', o.gpu ? '99' : '0', '-fa', 'auto',
      '--cache-ram', '0', '--no-cache-idle-slots', '--no-webui', '--host', '127.0.0.1', '--port', String(port),
    ];
    const srv = start(llamaServer, args, true);
    const client = new BenchClient(`http://127.0.0.1:${port}`, l.sequences);
    try {
      await waitHealthy(client, '/health', 120_000, srv.alive);
      ls = side(await httpRounds(client, rounds, l.maxTokens, false), args);
      show('llama-server', ls);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nllama-server's log ends:\n${srv.stderrTail()}`);
    } finally {
      client.close();
      await srv.stop();
    }
  }

  phase(`server: ours over HTTP, ${l.sequences} sequences`);
  const ours = child('serve', childOptions);
  let oursHttp: LocalSide;
  try {
    const client = new BenchClient(await ours.waitFor(SERVE_PREFIX), l.sequences);
    try {
      oursHttp = side(await httpRounds(client, rounds, l.maxTokens, true));
      show('ours, HTTP', oursHttp);
    } finally {
      client.close();
    }
  } finally {
    await ours.stop();
  }

  phase(`server: ours in-process, ${l.sequences} sequences`);
  const inproc = child('local', childOptions);
  let oursInProcess: LocalSide;
  try {
    oursInProcess = side((JSON.parse(await inproc.waitFor(RESULT_PREFIX)) as LocalChildResult).rounds);
    show('ours, in-process', oursInProcess);
  } finally {
    await inproc.stop();
  }

  const short = [oursHttp, oursInProcess].some((s) => s.rounds.some((r) => r.short > 0));
  const { model, ...shown } = l;
  void model;
  return {
    label: l.label,
    settings: { ...shown, threads: o.threads, batchSize: BATCH, request: completionBody('<prompt>', l.maxTokens) },
    llamaServer: ls, oursHttp, oursInProcess,
    ratios: {
      httpVsLlamaServer: ls ? oursHttp.tps.mean / ls.tps.mean : null,
      httpVsInProcess: oursHttp.tps.mean / oursInProcess.tps.mean,
      inProcessVsLlamaServer: ls ? oursInProcess.tps.mean / ls.tps.mean : null,
    },
    ...(short ? { note: 'some of our answers stopped at an end-of-text token before max_tokens: tokens/s counts the tokens generated' } : {}),
  };
}

export async function runServerBench(o: ServerBenchOptions, phase: (label: string) => void, log: (m: string) => void): Promise<ServerBenchResult> {
  const t0 = performance.now();
  const llamaServer = findLlamaServer();
  if (o.local && !llamaServer) log(`bench: llama-server not found (looked in ${toolDirs().join(', ')}): the local part runs without it (npm run build:tools)`);
  phase('server: exact-cache hits, in-process and over HTTP');
  const hits = await measureHits(o.hits, log);
  const local = o.local ? await measureLocal(o, llamaServer, phase, log) : null;
  return { hits, local, llamaServer: llamaServer ?? null, seconds: (performance.now() - t0) / 1000 };
}

const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;

export function printServer(r: ServerBenchResult, o: ServerBenchOptions): void {
  const h = r.hits;
  console.log(`\nserver: exact-cache hits (router.chat() on a warm cache, mock remote) in-process and through POST /v1/chat/completions over keep-alive HTTP (client in another process); ` +
    `${o.hits.calls} calls each after ${o.hits.warmup} warm-up\n`);
  console.log('| | in-process | HTTP | HTTP − in-process | bare fastify route (scale) |\n| --- | ---: | ---: | ---: | ---: |');
  const s = h.inProcess.sequential, hs = h.http.sequential, bs = h.bareHttp.sequential;
  console.log(`| one at a time: p50 | ${us(s.ms.p50)} | ${us(hs.ms.p50)} | ${us(h.addedMs.p50)} | ${us(bs.ms.p50)} |`);
  console.log(`| one at a time: p99 | ${us(s.ms.p99)} | ${us(hs.ms.p99)} | ${us(h.addedMs.p99)} | ${us(bs.ms.p99)} |`);
  console.log(`| one at a time: requests/s | ${s.perSecond.toFixed(0)} | ${hs.perSecond.toFixed(0)} | ratio ${(hs.perSecond / s.perSecond).toFixed(3)} | ${bs.perSecond.toFixed(0)} |`);
  const c = h.inProcess.concurrent, hc = h.http.concurrent, bc = h.bareHttp.concurrent;
  console.log(`| ${c.inFlight} in flight: requests/s | ${c.perSecond.toFixed(0)} | ${hc.perSecond.toFixed(0)} | ratio ${h.throughputRatio.toFixed(3)} | ${bc.perSecond.toFixed(0)} |`);
  console.log(`| ${c.inFlight} in flight: p50 / p99 | ${us(c.ms.p50)} / ${us(c.ms.p99)} | ${us(hc.ms.p50)} / ${us(hc.ms.p99)} | | ${us(bc.ms.p50)} / ${us(bc.ms.p99)} |`);
  console.log(`\nadded latency p99 ${us(h.addedMs.p99)}: ${h.addedMs.p99 < ADDED_P99_GOAL_MS ? 'meets' : 'misses'} the ${ADDED_P99_GOAL_MS} ms goal`);
  const l = r.local;
  if (!l) return;
  const st = l.settings;
  console.log(`\nserver: local generation on ${l.label}, ${st.sequences} requests at once, ${st.maxTokens} tokens each, ${st.perSequence} cells per sequence, ` +
    `${st.threads} threads, batch ${st.batchSize}, greedy; generated tokens / wall time of each round, mean ± sd of ${o.reps} rounds after one warm-up\n`);
  console.log('| side | generated t/s | prompt tokens / round | vs llama-server | vs in-process |\n| --- | ---: | ---: | ---: | ---: |');
  const row = (name: string, x: LocalSide | null, vsLs: number | null, vsIn: number | null) => {
    if (!x) return console.log(`| ${name} | — | — | | |`);
    console.log(`| ${name} | ${x.tps.mean.toFixed(2)} ± ${x.tps.stddev.toFixed(2)} | ${x.rounds[1]?.promptTokens ?? '—'} | ${vsLs === null ? '—' : vsLs.toFixed(3)} | ${vsIn === null ? '—' : vsIn.toFixed(3)} |`);
  };
  row('llama-server (HTTP)', l.llamaServer, l.llamaServer ? 1 : null, null);
  row('ours (HTTP)', l.oursHttp, l.ratios.httpVsLlamaServer, l.ratios.httpVsInProcess);
  row('ours (in-process router)', l.oursInProcess, l.ratios.inProcessVsLlamaServer, 1);
  if (l.note) console.log(`\nnote: ${l.note}`);
  if (l.ratios.httpVsLlamaServer !== null) {
    console.log(`\nours over HTTP / llama-server: ${l.ratios.httpVsLlamaServer.toFixed(3)}: ${l.ratios.httpVsLlamaServer >= SERVER_TG_GOAL ? 'meets' : 'misses'} the ${SERVER_TG_GOAL} goal`);
  }
  console.log(`server section: ${r.seconds.toFixed(0)} s`);
}
