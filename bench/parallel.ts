// Our side of the parallel benchmark: N sequences generating at once on one
// context (continuous batching), measured the way llama-batched-bench measures
// S_TG; the event loop while 16 of them stream; and embeddings per second.
// run.ts runs this file as a child process per model.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadModel, type Completion, type Model } from '../src/index.js';
import { childMain, invokedDirectly } from './child.js';
import { measureEmbeddings, type EmbedResult } from './embeddings.js';
import { benchPrompt, lag, type Lag } from './ours.js';
import { summarize, type Stat } from './report.js';

export interface ParallelOptions {
  threads: number;
  reps: number;
  gpu: boolean;
  /** Prompt tokens per sequence (batched-bench's -npp). */
  nPrompt: number;
  /** Generated tokens per sequence (batched-bench's -ntg). */
  nGen: number;
  /** Numbers of parallel sequences (batched-bench's -npl). */
  npl: number[];
  /** The event loop is watched while this many sequences generate (when in npl). */
  lagSequences: number;
  embeddings: boolean;
}

/** Cells per sequence: prompt, generation, and a little slack, as for batched-bench's -c. */
export function perSequenceContext(o: Pick<ParallelOptions, 'nPrompt' | 'nGen'>): number {
  return o.nPrompt + o.nGen + 8;
}

/**
 * Batch (and micro-batch) size at `sequences`: room for every prompt at once, so
 * one step takes them all and each later step decodes exactly one token of every
 * sequence, as in batched-bench's generation loop. batched-bench gets the same -b/-ub.
 */
export function parallelBatchSize(sequences: number, o: Pick<ParallelOptions, 'nPrompt'>): number {
  return Math.max(512, sequences * o.nPrompt);
}

export interface ParallelPoint {
  sequences: number;
  contextSize: number;
  batchSize: number;
  /** Total generation throughput: sequences * nGen / generation phase (see bench/README.md). */
  tg: Stat;
  /** All prompts: sequences * nPrompt / (until the last prompt was evaluated). */
  pp: Stat;
  /** Generation phase (ms): from the last prompt's end to the last generation's end. */
  tgMs: Stat;
  /** Spread of the prompts' ends (ms): > 0 when prompts went in more than one step. */
  promptEndSpreadMs: number[];
  /** The whole batch, from the first call to the last result (ms). */
  wallMs: Stat;
}

export interface LagResult {
  sequences: number;
  /** During the measured complete() runs of that point. */
  complete: Lag;
  /** During one more run with ctx.generate() streamed to 16 `for await` loops. */
  streamed: Lag;
  /** Total generation t/s of that streamed run. */
  streamedTgTps: number;
  idle: Lag;
}

export interface ParallelResult {
  points: ParallelPoint[];
  lag: LagResult | null;
  embeddings: EmbedResult | null;
  loadMs: number;
  peakRssMb: number;
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`bench (parallel): ${what}`);
}

/**
 * Every call's times come relative to its own submission; the calls are made in
 * one synchronous loop (all submitted within well under a millisecond), so they
 * share one time axis to that precision.
 */
function phases(results: Completion[], sequences: number, o: ParallelOptions) {
  const promptEnds = results.map((r) => r.timings.queueMs + r.timings.promptMs);
  const lastPromptEnd = Math.max(...promptEnds);
  const end = Math.max(...results.map((r) => r.timings.totalMs));
  const tgMs = end - lastPromptEnd;
  return {
    tg: (sequences * o.nGen * 1000) / tgMs,
    pp: (sequences * o.nPrompt * 1000) / lastPromptEnd,
    tgMs,
    spread: lastPromptEnd - Math.min(...promptEnds),
  };
}

async function measurePoint(model: Model, sequences: number, o: ParallelOptions, log: (msg: string) => void): Promise<{ point: ParallelPoint; lag?: Omit<LagResult, 'idle'> }> {
  const contextSize = sequences * perSequenceContext(o);
  const batchSize = parallelBatchSize(sequences, o);
  const ctx = await model.createContext({ contextSize, sequences, batchSize, threads: o.threads, batchThreads: o.threads });
  try {
    const prompts = Array.from({ length: sequences }, (_, i) => benchPrompt(model, o.nPrompt, 1000 + i));
    const opts = { maxTokens: o.nGen + 1, temperature: 0, ignoreEos: true };
    const watch = sequences === o.lagSequences;
    const h = monitorEventLoopDelay({ resolution: 1 });
    const tg: number[] = [], pp: number[] = [], tgMs: number[] = [], spread: number[] = [], wall: number[] = [];
    for (let i = 0; i < o.reps + 1; i++) { // the first run is the warm-up
      ctx.clearCache();
      if (watch && i > 0) h.enable();
      const t0 = performance.now();
      const results = await Promise.all(prompts.map((p) => ctx.complete(p, opts)));
      const wallMs = performance.now() - t0;
      h.disable();
      for (const r of results) {
        check(r.usage.completionTokens === o.nGen + 1 && r.reusedPromptTokens === 0,
          `${sequences} sequences: a call generated ${r.usage.completionTokens} tokens (${r.stopReason}), reused ${r.reusedPromptTokens}`);
      }
      if (i === 0) continue;
      const p = phases(results, sequences, o);
      tg.push(p.tg); pp.push(p.pp); tgMs.push(p.tgMs); spread.push(p.spread); wall.push(wallMs);
    }
    const point: ParallelPoint = {
      sequences, contextSize, batchSize, tg: summarize(tg), pp: summarize(pp), tgMs: summarize(tgMs),
      promptEndSpreadMs: spread, wallMs: summarize(wall),
    };
    log(`  ours N = ${sequences}: ${point.tg.mean.toFixed(2)} t/s generation (${point.tgMs.mean.toFixed(0)} ms), prompts ${point.pp.mean.toFixed(2)} t/s`);
    if (!watch) return { point };

    // The same batch once more, each generation streamed to its own for-await loop.
    ctx.clearCache();
    const hs = monitorEventLoopDelay({ resolution: 1 });
    hs.enable();
    const gens = prompts.map((p) => ctx.generate(p, opts));
    await Promise.all(gens.map(async (g) => {
      for await (const chunk of g) void chunk;
    }));
    const results = await Promise.all(gens.map((g) => g.result));
    hs.disable();
    return { point, lag: { sequences, complete: lag(h), streamed: lag(hs), streamedTgTps: phases(results, sequences, o).tg } };
  } finally {
    ctx.dispose();
  }
}

export async function measureParallel(path: string, o: ParallelOptions, log: (msg: string) => void = () => {}): Promise<ParallelResult> {
  const t0 = performance.now();
  const model = await loadModel(path, { gpuLayers: o.gpu ? 'max' : 0 });
  const loadMs = performance.now() - t0;
  try {
    const idle = monitorEventLoopDelay({ resolution: 1 });
    idle.enable();
    await new Promise((r) => setTimeout(r, 500));
    idle.disable();
    const points: ParallelPoint[] = [];
    let lagResult: LagResult | null = null;
    for (const n of o.npl) {
      const r = await measurePoint(model, n, o, log);
      points.push(r.point);
      if (r.lag) {
        lagResult = { ...r.lag, idle: lag(idle) };
        log(`  ours event-loop lag, ${n} sequences: p50 ${lagResult.complete.p50.toFixed(2)} / p99 ${lagResult.complete.p99.toFixed(2)} ms; streamed p50 ${lagResult.streamed.p50.toFixed(2)} / p99 ${lagResult.streamed.p99.toFixed(2)} ms`);
      }
    }
    const embeddings = o.embeddings ? await measureEmbeddings(model, o, log) : null;
    return { points, lag: lagResult, embeddings, loadMs, peakRssMb: process.resourceUsage().maxRSS / 1024 };
  } finally {
    model.dispose();
  }
}

// Child mode: `node --import tsx bench/parallel.ts --model FILE --options JSON`.
if (invokedDirectly(import.meta.url)) childMain('parallel.ts', measureParallel);
