// `npm run bench -- --only prebuilt`: the prebuilt CPU binary (what `npm run
// package` puts in the linux-x64 package: ggml's CPU code once per CPU
// generation, the best one loaded at run time) against a -march=native source
// build of the same tree and against node-llama-cpp's prebuilt CPU binary, on
// pp512 and tg128, in the same run. Each side runs in a child of its own
// (bench/ours.ts or bench/node-llama-cpp.ts); the sides take turns, round after
// round, so a drift in the machine's speed falls on all of them alike. Then the
// prebuilt binary once more with its baseline variant forced (x64: SSE2, no
// AVX), as it runs on a CPU without AVX2.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuModuleDir } from '../src/llama/binding.js';
import { runChild } from './child.js';
import type { NlcOptions, NlcResult } from './node-llama-cpp.js';
import type { OursOptions, OursResult } from './ours.js';
import { repoRoot } from './models.js';
import { summarize, table, type Stat } from './report.js';

/** The issue's goals: prebuilt ≥ 0.97× a -march=native build, ≥ 1.0× node-llama-cpp's prebuilt binary. */
export const PREBUILT_VS_NATIVE_GOAL = 0.97;
export const PREBUILT_VS_NLC_GOAL = 1.0;

/** The baseline variant's shape: short, since it runs without any vector extension past SSE2. */
export const BASELINE_SHAPE = { nPrompt: 64, nGen: 32 };

export interface PrebuiltSide {
  label: string;
  binary: string | null;
  cpuVariant: string | null;
  features: string[];
  pp: Stat;
  tg: Stat;
}

export interface PrebuiltResult {
  model: string;
  rounds: number;
  sides: PrebuiltSide[];
  /** Medians of the per-round ratios (see pairedRatio). */
  ratios: {
    ppVsNative: number; tgVsNative: number; ppVsNodeLlamaCpp: number | null; tgVsNodeLlamaCpp: number | null;
    /** node-llama-cpp against our source build: the comparison the issue started from. */
    nodeLlamaCppPpVsNative: number | null; nodeLlamaCppTgVsNative: number | null;
  };
  roundMeans: Record<string, { pp: number[]; tg: number[] }>;
  baseline: PrebuiltSide | null;
}

/** The prebuilt binary to measure: --prebuilt, else the package `npm run package` wrote, else its build folder. */
export function findPrebuilt(explicit: string | undefined, packageName: string): string | null {
  const candidates = explicit ? [explicit] : [
    join(repoRoot, 'dist-packages', packageName, 'understudy.node'),
    join(repoRoot, 'build-portable', 'Release', 'understudy.node'),
  ];
  // A package or build folder left from before CPU variants is passed over for one with them.
  return candidates.find((p) => existsSync(p) && (explicit !== undefined || cpuModuleDir(p) !== null)) ?? null;
}

/** The source build in build/, which must be a -march=native one (GGML_NATIVE on) to be the reference. */
export function findNative(): { path: string } | { error: string } {
  const path = join(repoRoot, 'build', 'Release', 'understudy.node');
  if (!existsSync(path)) return { error: `no source build at ${path}: run npm run build:native` };
  const cache = readFileSync(join(repoRoot, 'build', 'CMakeCache.txt'), 'utf8');
  if (!/^GGML_NATIVE:BOOL=ON$/m.test(cache)) return { error: 'build/ is not a -march=native build (GGML_NATIVE is off): run npm run build:native' };
  return { path };
}

/** All runs of a side, and the mean of each round's runs (for the paired ratios). */
interface Samples { pp: number[]; tg: number[]; roundPp: number[]; roundTg: number[]; result?: OursResult }

const newSamples = (): Samples => ({ pp: [], tg: [], roundPp: [], roundTg: [] });
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The ratio a / b as the median of the rounds' ratios: this VM's speed drifts
 * by up to 10% within minutes, and a pair of runs in the same round shares
 * most of that drift, where means over the whole run do not.
 */
function pairedRatio(a: number[], b: number[]): number {
  return median(a.map((x, i) => x / b[i]!));
}

export async function runPrebuiltBench(o: {
  model: { label: string; path: string };
  prebuilt: string;
  native: string;
  nlcEntry: string | null;
  rounds: number;
  ours: OursOptions;
  log: (msg: string) => void;
}): Promise<PrebuiltResult> {
  const opts: OursOptions = { ...o.ours, ppTgOnly: true };
  const native = newSamples();
  const prebuilt = newSamples();
  const nlc = newSamples();
  let prompt: number[] | null = null;
  const runOurs = async (into: Samples, binary: string, what: string, env: Record<string, string> = {}, options = opts) => {
    const r = await runChild<OursResult>('ours.ts', o.model.path, options, what, { UNDERSTUDY_BINDING: binary, ...env });
    into.pp.push(...r.pp.samples);
    into.tg.push(...r.tg.samples);
    into.roundPp.push(mean(r.pp.samples));
    into.roundTg.push(mean(r.tg.samples));
    into.result = r;
    prompt ??= r.prompt;
    return r;
  };
  const steps: Array<[string, () => Promise<unknown>]> = [
    ['native', () => runOurs(native, o.native, 'the -march=native build')],
    ['prebuilt', () => runOurs(prebuilt, o.prebuilt, 'the prebuilt binary')],
  ];
  if (o.nlcEntry) {
    const entry = o.nlcEntry;
    steps.push(['node-llama-cpp', async () => {
      const n: NlcOptions = { entry, threads: opts.threads, reps: opts.reps, nPrompt: opts.nPrompt, nGen: opts.nGen,
        batchSize: opts.batchSize, contextSize: opts.contextSize, prompt: prompt! };
      const r = await runChild<NlcResult>('node-llama-cpp.ts', o.model.path, n, 'node-llama-cpp');
      nlc.pp.push(...r.pp.samples);
      nlc.tg.push(...r.tg.samples);
      nlc.roundPp.push(mean(r.pp.samples));
      nlc.roundTg.push(mean(r.tg.samples));
    }]);
  }
  for (let round = 0; round < o.rounds; round++) {
    // Turns rotate: round 0 native first, round 1 prebuilt first, ...
    for (let i = 0; i < steps.length; i++) {
      const [label, run] = steps[(i + round) % steps.length]!;
      o.log(`bench: prebuilt, round ${round + 1}/${o.rounds}: ${label} ...`);
      await run();
    }
  }
  const nativeResult = native.result!;
  const prebuiltResult = prebuilt.result!;
  if (nativeResult.cpu.variant !== 'built in') throw new Error(`the native side ran a CPU variant (${nativeResult.cpu.variant}), not the source build's own code`);
  if (!prebuiltResult.cpu.module || prebuiltResult.cpu.variant === 'built in') {
    throw new Error(`${o.prebuilt} is not a build with CPU variants: rebuild it with npm run package`);
  }
  const side = (label: string, binary: string | null, s: Samples): PrebuiltSide => ({
    label, binary, cpuVariant: s.result?.cpu.variant ?? null, features: s.result?.cpu.features ?? [], pp: summarize(s.pp), tg: summarize(s.tg),
  });
  const sides = [side('source build, -march=native', o.native, native), side('prebuilt package binary', o.prebuilt, prebuilt)];
  if (o.nlcEntry) sides.push(side('node-llama-cpp prebuilt (CPU)', null, nlc));

  o.log('bench: prebuilt: the baseline variant (x64) forced, as on a CPU without AVX2 ...');
  const baselineSamples = newSamples();
  let baseline: PrebuiltSide | null = null;
  try {
    // One measured run of a short shape: SSE2 alone takes minutes for pp512 on a 1B
    // model. It shows the code runs, and roughly how slowly; it is no ratio.
    await runOurs(baselineSamples, o.prebuilt, 'the prebuilt binary with UNDERSTUDY_CPU_VARIANT=x64', { UNDERSTUDY_CPU_VARIANT: 'x64' },
      { ...opts, reps: 1, nPrompt: BASELINE_SHAPE.nPrompt, nGen: BASELINE_SHAPE.nGen });
    baseline = side(`prebuilt, x64 variant forced (pp${BASELINE_SHAPE.nPrompt}, tg${BASELINE_SHAPE.nGen})`, o.prebuilt, baselineSamples);
  } catch (err) {
    o.log(`bench: warning: the x64 variant did not run: ${(err as Error).message}`);
  }
  const withNlc = o.nlcEntry !== null;
  return {
    model: o.model.label,
    rounds: o.rounds,
    sides,
    ratios: {
      ppVsNative: pairedRatio(prebuilt.roundPp, native.roundPp), tgVsNative: pairedRatio(prebuilt.roundTg, native.roundTg),
      ppVsNodeLlamaCpp: withNlc ? pairedRatio(prebuilt.roundPp, nlc.roundPp) : null,
      tgVsNodeLlamaCpp: withNlc ? pairedRatio(prebuilt.roundTg, nlc.roundTg) : null,
      nodeLlamaCppPpVsNative: withNlc ? pairedRatio(nlc.roundPp, native.roundPp) : null,
      nodeLlamaCppTgVsNative: withNlc ? pairedRatio(nlc.roundTg, native.roundTg) : null,
    },
    roundMeans: {
      native: { pp: native.roundPp, tg: native.roundTg },
      prebuilt: { pp: prebuilt.roundPp, tg: prebuilt.roundTg },
      ...(withNlc ? { nodeLlamaCpp: { pp: nlc.roundPp, tg: nlc.roundTg } } : {}),
    },
    baseline,
  };
}

export function printPrebuilt(r: PrebuiltResult, nPrompt: number, nGen: number): void {
  const fmt = (s: Stat) => `${s.mean.toFixed(2)} ± ${s.stddev.toFixed(2)}`;
  const rows = [...r.sides, ...(r.baseline ? [r.baseline] : [])].map((s) => [s.label, s.cpuVariant ?? '-', fmt(s.pp), fmt(s.tg)]);
  console.log(`\nprebuilt CPU binary on ${r.model}: t/s (mean ± sd of all runs), ${r.rounds} rounds taken in turn; ratios: median of the rounds' ratios`);
  console.log(table(['binary', 'CPU code', `pp${nPrompt}`, `tg${nGen}`], rows, [false, false, true, true]));
  const verdict = (x: number, goal: number) => `${x.toFixed(3)}${x >= goal ? '' : `  (below the ${goal} goal)`}`;
  console.log(`prebuilt / native:         pp ${verdict(r.ratios.ppVsNative, PREBUILT_VS_NATIVE_GOAL)}, tg ${verdict(r.ratios.tgVsNative, PREBUILT_VS_NATIVE_GOAL)}`);
  if (r.ratios.ppVsNodeLlamaCpp !== null && r.ratios.tgVsNodeLlamaCpp !== null) {
    console.log(`prebuilt / node-llama-cpp: pp ${verdict(r.ratios.ppVsNodeLlamaCpp, PREBUILT_VS_NLC_GOAL)}, tg ${verdict(r.ratios.tgVsNodeLlamaCpp, PREBUILT_VS_NLC_GOAL)}`);
    console.log(`node-llama-cpp / native:   pp ${r.ratios.nodeLlamaCppPpVsNative!.toFixed(3)}, tg ${r.ratios.nodeLlamaCppTgVsNative!.toFixed(3)} (no goal: for reference)`);
  }
}
