// The llama-bench measurements through our addon and TS API, plus what only we
// can measure: time to first token, event-loop lag while generating, peak RSS.
// run.ts runs this file as a child process per model (so peak RSS is that
// model's own), reading one `BENCH-RESULT {json}` line from its stdout.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { cpuCode, loadModel, systemInfo, type Context, type Model } from '../src/index.js';
import { seededRandom } from '../test/seeded-random.js';
import { childMain, invokedDirectly } from './child.js';
import { summarize, type Stat } from './report.js';

export interface OursOptions {
  threads: number;
  reps: number;
  gpu: boolean;
  nPrompt: number;
  nGen: number;
  batchSize: number;
  contextSize: number;
  /** pp and tg only: no streamed tg, no time to first token (the prebuilt section). */
  ppTgOnly?: boolean;
}

export interface OursResult {
  pp: Stat;
  tg: Stat;
  /** tg through ctx.generate() with the text streamed to a `for await` loop. */
  streamTg: Stat;
  ttftMs: Stat;
  /** From the generate() call to the first text chunk in JS. */
  ttftJsMs: Stat;
  ttftPromptTokens: number;
  lagIdle: { p50: number; p99: number; max: number };
  lagGen: { p50: number; p99: number; max: number };
  loadMs: number;
  rssBeforeLoadMb: number;
  peakRssMb: number;
  context: ReturnType<Context['info']>;
  model: { architecture: string; parameters: number | null; vocabSize: number; layers: number | null; gpuLayers: number };
  system: ReturnType<typeof systemInfo>;
  /** The CPU code the addon ran: a prebuilt binary's variant, or a source build's own. */
  cpu: ReturnType<typeof cpuCode>;
  /** The pp prompt's token ids (its first is tg's one-token prompt), for node-llama-cpp to use the same. */
  prompt: number[];
}

export type Lag = { p50: number; p99: number; max: number };

export const TTFT_PROMPT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';

/** Deterministic PRNG (mulberry32, test/seeded-random.ts): the same prompt every run; the bench's files import it from here as rng. */
export const rng = seededRandom;

/** `n` valid token ids: BOS first when the model adds one, then random non-special tokens. */
export function benchPrompt(model: Model, n: number, seed = 42): number[] {
  const { vocab } = model.info;
  const special = new Set(Object.values(vocab.special).filter((t): t is number => t !== null));
  const tokens: number[] = [];
  if (vocab.addBos && vocab.special.bos !== null) tokens.push(vocab.special.bos);
  const next = rng(seed);
  while (tokens.length < n) {
    const t = Math.floor(next() * vocab.size);
    // Control tokens render to nothing without `special`: leave them out too.
    if (special.has(t) || model.tokenPiece(t).length === 0) continue;
    tokens.push(t);
  }
  return tokens;
}

export function lag(h: IntervalHistogram): Lag {
  return { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`bench (ours): ${what}`);
}

export async function measureOurs(path: string, o: OursOptions, log: (msg: string) => void = () => {}): Promise<OursResult> {
  const rssBeforeLoadMb = process.resourceUsage().maxRSS / 1024;
  const t0 = performance.now();
  const model = await loadModel(path, { gpuLayers: o.gpu ? 'max' : 0 });
  const loadMs = performance.now() - t0;
  try {
    const ctx = await model.createContext({ contextSize: o.contextSize, batchSize: o.batchSize, threads: o.threads, batchThreads: o.threads });
    const runs = o.reps + 1; // the first is the warm-up and is not counted

    // pp: a prompt of nPrompt tokens, evaluated from scratch, one token sampled.
    const prompt = benchPrompt(model, o.nPrompt);
    const pp: number[] = [];
    for (let i = 0; i < runs; i++) {
      ctx.clearCache();
      const r = await ctx.complete(prompt, { maxTokens: 1, temperature: 0 });
      check(r.reusedPromptTokens === 0 && r.usage.promptTokens === o.nPrompt, `pp evaluated ${r.usage.promptTokens - r.reusedPromptTokens} tokens, not ${o.nPrompt}`);
      if (i > 0) pp.push((o.nPrompt * 1000) / r.timings.promptMs);
    }
    log(`  ours pp${o.nPrompt}: ${summarize(pp).mean.toFixed(2)} t/s`);

    // tg: one prompt token (BOS), then nGen + 1 tokens: nGen decodes (see Completion.timings).
    const start = prompt.slice(0, 1);
    const genOpts = { maxTokens: o.nGen + 1, temperature: 0, ignoreEos: true };
    const tg: number[] = [];
    for (let i = 0; i < runs; i++) {
      ctx.clearCache();
      const r = await ctx.complete(start, genOpts);
      check(r.usage.completionTokens === o.nGen + 1, `tg generated ${r.usage.completionTokens} tokens, not ${o.nGen + 1} (${r.stopReason})`);
      if (i > 0) tg.push((o.nGen * 1000) / r.timings.generationMs);
    }
    log(`  ours tg${o.nGen}: ${summarize(tg).mean.toFixed(2)} t/s`);

    // The event loop, idle, then while streaming tg runs to a for-await loop.
    const idle = monitorEventLoopDelay({ resolution: 1 });
    idle.enable();
    await new Promise((r) => setTimeout(r, 500));
    idle.disable();
    const busy = monitorEventLoopDelay({ resolution: 1 });
    const streamTg: number[] = [];
    for (let i = 0; i < (o.ppTgOnly ? 0 : runs); i++) {
      ctx.clearCache();
      if (i > 0) busy.enable();
      const gen = ctx.generate(start, genOpts);
      for await (const chunk of gen) void chunk;
      const r = await gen.result;
      busy.disable();
      if (i > 0) streamTg.push((o.nGen * 1000) / r.timings.generationMs);
    }

    // Time to first token for a short text prompt, evaluated from scratch.
    const ttft: number[] = [];
    const ttftJs: number[] = [];
    let ttftPromptTokens = 0;
    for (let i = 0; i < (o.ppTgOnly ? 0 : runs); i++) {
      ctx.clearCache();
      const t = performance.now();
      const gen = ctx.generate(TTFT_PROMPT, { maxTokens: 4, temperature: 0, ignoreEos: true });
      let first: number | undefined;
      for await (const chunk of gen) if (first === undefined && chunk.length > 0) first = performance.now() - t;
      const r = await gen.result;
      ttftPromptTokens = r.usage.promptTokens;
      if (i > 0) {
        ttft.push(r.timings.firstTokenMs);
        if (first !== undefined) ttftJs.push(first);
      }
    }
    const context = ctx.info();
    ctx.dispose();
    const info = model.info;
    return {
      pp: summarize(pp), tg: summarize(tg), streamTg: summarize(streamTg),
      ttftMs: summarize(ttft), ttftJsMs: summarize(ttftJs), ttftPromptTokens,
      lagIdle: lag(idle), lagGen: lag(busy),
      loadMs, rssBeforeLoadMb, peakRssMb: process.resourceUsage().maxRSS / 1024,
      context,
      model: { architecture: info.architecture, parameters: info.parameters, vocabSize: info.vocab.size, layers: info.layers, gpuLayers: info.gpuLayers },
      system: systemInfo(),
      cpu: cpuCode(),
      prompt,
    };
  } finally {
    model.dispose();
  }
}

// Child mode: `node --import tsx bench/ours.ts --model FILE --options JSON`.
if (invokedDirectly(import.meta.url)) childMain('ours.ts', measureOurs);
