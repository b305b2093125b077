// `npm run bench`: llama.cpp's llama-bench and llama-batched-bench, node-llama-cpp
// and our addon, on the same model files with the same threads, in one
// invocation; prints the comparison, writes bench/results/<name>.json and the
// parallel chart bench/results/<name>-parallel.svg; then the router's own costs
// (exact-hit path, semantic lookup, embedding a prompt). See bench/README.md.
import { existsSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parallelChart, writeChart, type ChartPanel } from './chart.js';
import { distillChart } from './distill-chart.js';
import { printDistill, runDistillBench, SHARE_GOAL, SHARE_WINDOW_CHART, SIMILARITY_GOAL, type DistillSectionResult } from './distill-section.js';
import { runChild } from './child.js';
import { findReferenceTools, runBatchedBench, runLlamaBench, runLlamaBenchAtDepth, toolDirs, type BatchedBenchPoint, type LlamaBenchResult } from './llama-tools.js';
import { contentionMonitor, cpuBusy, gitInfo, llamaCppSource, loadavg, machineInfo } from './machine.js';
import { parseModelList, repoRoot, resolveModels, type BenchModel, type ModelKey } from './models.js';
import { ensureNodeLlamaCpp, type NlcOptions, type NlcResult } from './node-llama-cpp.js';
import type { OursOptions, OursResult } from './ours.js';
import type { Stat } from './report.js';
import { parallelBatchSize, perSequenceContext, type ParallelOptions, type ParallelResult } from './parallel.js';
import {
  compare, comparisonTable, embedPromptTable, extrasTable, GOAL_RATIO, HIT_GOAL_P50_MS, noisy, NOISY_CV, PARALLEL_GOAL, parallelBelowGoal, parallelTable,
  routerHitTable, SEMANTIC_GOAL_P99_MS, semanticTable, servingTable, writeResults,
  type ComparisonRow, type ExtraRow, type ParallelRow, type ServingRow,
} from './report.js';
import { printServer, runServerBench, type ServerBenchOptions, type ServerBenchResult } from './server-section.js';
import { printStall, runStallBench } from './stall-section.js';
import { findNative, findPrebuilt, printPrebuilt, runPrebuiltBench, type PrebuiltResult } from './prebuilt-section.js';
import { platformPackageNames } from '../scripts/install-decision.mjs';
import { printTrain, runTrainBench, type TrainSectionResult } from './train-section.js';
import { HIT_REQUEST, runRouterBench, type RouterBenchOptions, type RouterBenchResult } from './router.js';

const DEFAULT_NPL: Record<ModelKey, number[]> = { stories: [1, 4, 16, 64], tinyllama: [1, 4, 16] };
const PARALLEL_SHAPE = { nPrompt: 128, nGen: 128 };
const LAG_SEQUENCES = 16;
const SKIPPABLE = ['parallel', 'embeddings', 'node-llama-cpp', 'router'] as const;
// 'models': llama-bench, node-llama-cpp and ours on each model (everything but the router).
// 'train', 'distill', 'server' and 'prebuilt' run only when asked for (--only train / ...): they take minutes.
const SECTIONS = ['models', 'router', 'stall', 'train', 'distill', 'server', 'prebuilt'] as const;
const DEFAULT_SECTIONS = ['models', 'router', 'stall'];
const ROUTER_SIZES = [10_000, 100_000];
// The distillation run: UNDERSTUDY_TRAIN_EVERY values (one run each) and the most calls a run sends.
const DISTILL_EVERY = [32];
const DISTILL_CALLS = 1500;
const DISTILL_AFTER = 200;
// Prompts embedded one per call and batches of 8, per model: TinyLlama takes ~0.5 s a prompt on 2 cores.
const ROUTER_EMBED: Record<ModelKey, { singles: number; batches: number }> = { stories: { singles: 300, batches: 40 }, tinyllama: { singles: 30, batches: 4 } };
// The server section's local generation: requests at once (= slots), tokens each, cells per slot, prompt length in words.
const SERVER_LOCAL = { sequences: 8, maxTokens: 64, perSequence: 512, promptWords: 24 };
const SERVER_HITS_IN_FLIGHT = 16;

const USAGE = `usage: npm run bench -- [options]
  --threads N     CPU threads for every side (default: os.availableParallelism() = ${os.availableParallelism()})
  --reps N        measured repetitions per test, after one warm-up (default 5)
  --models LIST   comma-separated: stories,tinyllama (default both)
  --npl LIST      parallel sequences to measure, e.g. 1,4,16 (default ${DEFAULT_NPL.stories.join(',')} on stories260K, ${DEFAULT_NPL.tinyllama.join(',')} on tinyllama)
  --skip LIST     leave out some of: ${SKIPPABLE.join(', ')}
  --only LIST     run only these sections: ${SECTIONS.join(', ')} (models: everything but the router; stall: the semantic index's event-loop stalls at 50k entries; train: LoRA training tokens/s against our prompt processing; distill: the distillation loop on stories260K and a loopback teacher; server: our HTTP server against in-process calls and llama-server, on tinyllama unless --models says otherwise; prebuilt: the prebuilt CPU binary against a -march=native build and node-llama-cpp, on tinyllama unless --models says otherwise; train, distill, server and prebuilt run only when named)
  --prebuilt FILE the prebuilt binary for --only prebuilt (default: dist-packages/<platform package>/understudy.node, else build-portable/Release/understudy.node)
  --rounds N      turns each side takes in --only prebuilt (default 6; each runs --reps repetitions)
  --router-sizes LIST  semantic-index sizes, e.g. 10000 (default ${ROUTER_SIZES.join(',')}; --quick: ${ROUTER_SIZES[0]})
  --router-calls N     timed exact-cache hits (default 20000, after a tenth as many warm-up calls)
  --distill-every LIST  UNDERSTUDY_TRAIN_EVERY values for the distill section, one run each (default ${DISTILL_EVERY.join(',')})
  --distill-calls N     most calls a distill run sends (default ${DISTILL_CALLS})
  --distill-seeds LIST  one distill run per seed and trainEvery value (default 1): prompts, shadow checks and audits
  --distill-after N     calls a distill run goes on for once the goal is reached, to see the share hold (default ${DISTILL_AFTER})
  --name NAME     results file bench/results/NAME.json (default cpu-<hostname>-<date>)
  --gpu           offload all layers: -ngl 99 for llama.cpp's tools, gpuLayers 'max' for ours (node-llama-cpp is left out)
  --quick         smoke run: reps 2, stories only (unless --reps / --models say otherwise)`;

const log = (msg: string) => console.error(msg);

function positiveInt(s: string | undefined, flag: string, fallback: number): number {
  if (s === undefined) return fallback;
  if (!/^[1-9]\d*$/.test(s)) throw new Error(`--${flag} must be a positive integer, got "${s}"`);
  return Number(s);
}

function intList(s: string, flag: string): number[] {
  const xs = s.split(',').map((x) => positiveInt(x.trim(), flag, 0));
  return [...new Set(xs)].sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string' }, reps: { type: 'string' }, models: { type: 'string' }, name: { type: 'string' },
      npl: { type: 'string' }, skip: { type: 'string' }, only: { type: 'string' }, 'router-sizes': { type: 'string' }, 'router-calls': { type: 'string' },
      'distill-every': { type: 'string' }, 'distill-calls': { type: 'string' }, 'distill-seeds': { type: 'string' }, 'distill-after': { type: 'string' },
      prebuilt: { type: 'string' }, rounds: { type: 'string' },
      gpu: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void console.log(USAGE);
  const quick = values.quick ?? false;
  const gpu = values.gpu ?? false;
  const threads = positiveInt(values.threads, 'threads', os.availableParallelism());
  const reps = positiveInt(values.reps, 'reps', quick ? 2 : 5);
  const npl = values.npl === undefined ? undefined : intList(values.npl, 'npl');
  const skip = new Set((values.skip ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  for (const s of skip) if (!(SKIPPABLE as readonly string[]).includes(s)) throw new Error(`--skip: unknown "${s}" (known: ${SKIPPABLE.join(', ')})`);
  const only = new Set((values.only ?? DEFAULT_SECTIONS.join(',')).split(',').map((s) => s.trim()).filter(Boolean));
  for (const s of only) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only: unknown "${s}" (known: ${SECTIONS.join(', ')})`);
  // The distill section always uses stories260K: alone, it needs no other model.
  const distillOnly = only.size === 1 && only.has('distill');
  const serverOnly = only.size === 1 && only.has('server');
  const prebuiltOnly = only.size === 1 && only.has('prebuilt');
  const keys = parseModelList(values.models ?? (quick || distillOnly ? 'stories' : serverOnly || prebuiltOnly ? 'tinyllama' : 'stories,tinyllama'));
  const runModels = only.has('models');
  const runRouter = only.has('router') && !skip.has('router');
  const runStall = only.has('stall');
  const runTrain = only.has('train');
  const runDistill = only.has('distill');
  const runServer = only.has('server');
  const runPrebuilt = only.has('prebuilt') && !gpu;
  if (only.has('prebuilt') && gpu) log('bench: --only prebuilt compares CPU binaries: left out with --gpu');
  const rounds = positiveInt(values.rounds, 'rounds', 6);
  const distillEvery = values['distill-every'] === undefined ? DISTILL_EVERY : intList(values['distill-every'], 'distill-every');
  const distillCalls = positiveInt(values['distill-calls'], 'distill-calls', DISTILL_CALLS);
  const distillSeeds = values['distill-seeds'] === undefined ? [1] : intList(values['distill-seeds'], 'distill-seeds');
  const distillAfter = values['distill-after'] === '0' ? 0 : positiveInt(values['distill-after'], 'distill-after', DISTILL_AFTER);
  const routerSizes = values['router-sizes'] === undefined ? (quick ? ROUTER_SIZES.slice(0, 1) : ROUTER_SIZES) : intList(values['router-sizes'], 'router-sizes');
  const routerCalls = positiveInt(values['router-calls'], 'router-calls', 20_000);
  const date = new Date();
  // A run of the router (or of training) alone gets its own file, so it does not overwrite the day's full run.
  // The distill section writes <name>-distill.json and .svg itself.
  const suffix = runModels || distillOnly ? '' : only.size === 1 && runTrain ? '-train' : serverOnly ? '-server' : prebuiltOnly ? '-prebuilt' : '-router';
  const name = values.name ?? `${gpu ? 'gpu' : 'cpu'}-${os.hostname()}-${date.toISOString().slice(0, 10)}${suffix}`;
  if (!/^[\w.-]+$/.test(name)) throw new Error(`--name may hold letters, digits, '.', '_' and '-' only, got "${name}"`);

  const tools = runModels ? findReferenceTools() : null;
  if (runModels && !tools) {
    log(`bench: llama-bench not found (looked in ${toolDirs().join(', ')}).\n` +
      `Build llama.cpp's reference tools from the vendored tree with \`npm run build:tools\` ` +
      `(or point UNDERSTUDY_TOOLS_DIR at a folder that holds them), then run this again.`);
    process.exit(1);
  }
  if (!existsSync(join(repoRoot, 'build', 'Release', 'understudy.node')) && !existsSync(join(repoRoot, 'prebuilds'))) {
    log('bench: warning: build/Release/understudy.node is missing; build the addon with `npm run build:native`');
  }
  const parallel = runModels && !skip.has('parallel') && tools?.batchedBench !== undefined;
  if (runModels && !skip.has('parallel') && !parallel) log(`bench: llama-batched-bench not found in ${tools?.dir}: the parallel comparison is left out (npm run build:tools)`);
  let nlcEntry: string | undefined;
  let nlcNote: string | null = !runModels && !runPrebuilt ? 'not run (--only)' : skip.has('node-llama-cpp') ? 'skipped (--skip)' : gpu ? 'left out with --gpu (only its CPU binaries are installed)' : null;
  if (nlcNote === null) {
    const r = ensureNodeLlamaCpp(log);
    if ('entry' in r) nlcEntry = r.entry;
    else log(`bench: warning: node-llama-cpp left out: ${(nlcNote = r.error)}`);
  }

  const models = await resolveModels(keys, log);
  const shape = { nPrompt: 512, nGen: 128, batchSize: 512 };
  const oursOptions: OursOptions = { threads, reps, gpu, ...shape, contextSize: 1024 };
  const nplOf = (key: ModelKey) => npl ?? DEFAULT_NPL[key];
  const loadStart = loadavg();
  log(`bench: ${models.map((m) => m.label).join(', ')}; threads ${threads}, reps ${reps}${gpu ? ', GPU' : ''}; tools: ${tools?.dir ?? '-'}; sections: ${[...only].join(', ')}`);
  if (parallel) log(`bench: parallel sequences: ${models.map((m) => `${m.label} ${nplOf(m.key as ModelKey).join(',')}`).join('; ')}${npl ? '' : ' (defaults; --npl to change)'}`);
  const busyStart = await cpuBusy();
  if (busyStart > 0.15) {
    log(`bench: warning: the CPUs are ${(busyStart * 100).toFixed(0)}% busy with other work; figures will be noisy (stop it and run again)`);
  }

  const monitor = contentionMonitor();
  const phase = (label: string) => {
    log(`bench: ${label} ...`);
    monitor.phase(label);
  };
  const rows: ComparisonRow[] = [];
  const extras: ExtraRow[] = [];
  const prows: ParallelRow[] = [];
  const singles: string[] = [];
  const serving: ServingRow[] = [];
  const panels: ChartPanel[] = [];
  const results: Record<string, unknown>[] = [];
  for (const m of runModels ? models : []) {
    phase(`${m.label}: llama-bench`);
    const lb: LlamaBenchResult = await runLlamaBench(tools!.llamaBench, m.path, { threads, reps, gpu, ...shape });
    log(`  llama-bench pp${shape.nPrompt}: ${lb.pp.mean.toFixed(2)} t/s, tg${shape.nGen}: ${lb.tg.mean.toFixed(2)} t/s (${lb.seconds.toFixed(0)} s)`);
    phase(`${m.label}: ours`);
    const { prompt, ...ours } = await runChild<OursResult>('ours.ts', m.path, oursOptions, `our side on ${m.label}`);
    let nlc: NlcResult | null = null;
    if (nlcEntry) {
      phase(`${m.label}: node-llama-cpp`);
      const o: NlcOptions = { entry: nlcEntry, threads, reps, ...shape, contextSize: oursOptions.contextSize, prompt };
      nlc = await runChild<NlcResult>('node-llama-cpp.ts', m.path, o, `node-llama-cpp on ${m.label}`);
    }
    const pp = compare(m.label, `pp${shape.nPrompt}`, lb.pp, ours.pp, nlc?.pp);
    const tg = compare(m.label, `tg${shape.nGen}`, lb.tg, ours.tg, nlc?.tg);
    rows.push(pp, tg);
    extras.push({
      model: m.label, ttftMs: ours.ttftMs, ttftJsMs: ours.ttftJsMs, promptTokens: ours.ttftPromptTokens,
      lagIdle: ours.lagIdle, lagGen: ours.lagGen, streamTg: ours.streamTg, loadMs: ours.loadMs, peakRssMb: ours.peakRssMb,
    });

    let batched: BatchedBenchPoint[] = [];
    let par: ParallelResult | null = null;
    let single: { tg: Stat; args: string[] } | null = null;
    const seqs = nplOf(m.key as ModelKey);
    if (parallel && tools.batchedBench) {
      const perSequence = perSequenceContext(PARALLEL_SHAPE);
      for (const n of seqs) {
        phase(`${m.label}: llama-batched-bench, N = ${n}`);
        const b = await runBatchedBench(tools.batchedBench, m.path, n, { threads, reps, gpu, ...PARALLEL_SHAPE, perSequence, batchSize: parallelBatchSize(n, PARALLEL_SHAPE) });
        log(`  llama-batched-bench N = ${n}: S_TG ${b.tg.mean.toFixed(2)} t/s, S_PP ${b.pp.mean.toFixed(2)} t/s`);
        batched.push(b);
      }
      if (seqs.includes(1)) {
        phase(`${m.label}: llama-bench tg${PARALLEL_SHAPE.nGen} @ d${PARALLEL_SHAPE.nPrompt}`);
        single = await runLlamaBenchAtDepth(tools!.llamaBench, m.path, { threads, reps, gpu, ...PARALLEL_SHAPE, batchSize: 512, depth: PARALLEL_SHAPE.nPrompt });
        log(`  llama-bench tg${PARALLEL_SHAPE.nGen} @ d${PARALLEL_SHAPE.nPrompt}: ${single.tg.mean.toFixed(2)} t/s`);
      }
    }
    if (parallel || !skip.has('embeddings')) {
      phase(`${m.label}: ours, parallel${skip.has('embeddings') ? '' : ' and embeddings'}`);
      const o: ParallelOptions = {
        threads, reps, gpu, ...PARALLEL_SHAPE, npl: parallel ? seqs : [],
        lagSequences: seqs.includes(LAG_SEQUENCES) ? LAG_SEQUENCES : Math.max(...seqs), embeddings: !skip.has('embeddings'),
      };
      par = await runChild<ParallelResult>('parallel.ts', m.path, o, `our parallel side on ${m.label}`);
      serving.push({ model: m.label, lag: par.lag, embeddings: par.embeddings });
    }
    const parallelRows = batched.map((b, i) => ({ model: m.label, sequences: b.sequences, llamaTg: b.tg, oursTg: par!.points[i]!.tg, llamaPp: b.pp, oursPp: par!.points[i]!.pp }));
    prows.push(...parallelRows);
    const one = parallelRows.find((r) => r.sequences === 1);
    if (single && one) {
      singles.push(`${m.label}: llama-bench tg${PARALLEL_SHAPE.nGen} @ d${PARALLEL_SHAPE.nPrompt} ${single.tg.mean.toFixed(2)} ± ${single.tg.stddev.toFixed(2)} t/s, ` +
        `ours (1 sequence) ${one.oursTg.mean.toFixed(2)}: ratio ${(one.oursTg.mean / single.tg.mean).toFixed(3)}`);
    }
    if (parallelRows.length > 0) {
      panels.push({
        title: m.label, x: seqs,
        series: [
          { label: 'ours', color: '#1f77b4', values: parallelRows.map((r) => r.oursTg.mean) },
          { label: 'llama-batched-bench', color: '#d62728', values: parallelRows.map((r) => r.llamaTg.mean) },
        ],
      });
    }
    results.push({
      model: m.label, llamaBench: lb, ours, nodeLlamaCpp: nlc, batchedBench: batched, llamaBenchAtDepth: single, parallel: par,
      ratios: {
        pp: pp.ratio, tg: tg.ratio,
        ...(nlc ? { ppVsNodeLlamaCpp: ours.pp.mean / nlc.pp.mean, tgVsNodeLlamaCpp: ours.tg.mean / nlc.tg.mean } : {}),
        parallelTg: Object.fromEntries(parallelRows.map((r) => [r.sequences, r.oursTg.mean / r.llamaTg.mean])),
        ...(single && one ? { oneSequenceVsLlamaBenchAtDepth: one.oursTg.mean / single.tg.mean } : {}),
      },
    });
  }

  let router: RouterBenchResult | null = null;
  const routerOptions: RouterBenchOptions = {
    threads, gpu, hits: { calls: routerCalls, warmup: Math.ceil(routerCalls / 10) }, sizes: routerSizes,
    semantic: { dim: 384, clusters: 100, queries: 2000, recallSample: 200 },
    embed: models.map((m) => ({ label: m.label, path: m.path, ...ROUTER_EMBED[m.key as ModelKey] })), minTokens: 30,
  };
  if (runRouter) router = await runRouterBench(routerOptions, phase);
  const stall = runStall ? runStallBench(50_000, log) : null;
  // Training keeps its weights on the CPU ({ trainable: true }): --gpu does not apply to it.
  const train: TrainSectionResult | null = runTrain ? await runTrainBench(models, { threads, reps, quick }, phase, log) : null;
  // Its workload and training options are fitted to stories260K (see bench/distill-section.ts), whatever --models says.
  const distill: DistillSectionResult | null = runDistill
    ? await runDistillBench({ modelPath: (await resolveModels(['stories'], log))[0]!.path, trainEvery: distillEvery, maxCalls: distillCalls, afterCalls: distillAfter, seeds: distillSeeds }, phase, log)
    : null;
  // Its local part runs on the first --models model (tinyllama unless named).
  const serverOptions: ServerBenchOptions = {
    threads, gpu, reps, hits: { calls: routerCalls, warmup: Math.ceil(routerCalls / 10), inFlight: SERVER_HITS_IN_FLIGHT },
    local: { model: models[0]!.path, label: models[0]!.label, ...SERVER_LOCAL },
  };
  const server: ServerBenchResult | null = runServer ? await runServerBench(serverOptions, phase, log) : null;
  let prebuilt: PrebuiltResult | null = null;
  if (runPrebuilt) {
    const binary = findPrebuilt(values.prebuilt, platformPackageNames()[0]!);
    const native = findNative();
    if (!binary) throw new Error('--only prebuilt: no prebuilt binary: run `npm run package` first (or name one with --prebuilt FILE)');
    if ('error' in native) throw new Error(`--only prebuilt: ${native.error}`);
    phase('prebuilt');
    prebuilt = await runPrebuiltBench({ model: models[0]!, prebuilt: binary, native: native.path, nlcEntry: nlcEntry ?? null, rounds, ours: oursOptions, log });
  }

  if (rows.length > 0) {
    console.log(`\n${comparisonTable(rows)}\n`);
    console.log(`${extrasTable(extras)}\n`);
    const low = rows.filter((r) => r.ratio < GOAL_RATIO);
    console.log(low.length ? `below the ${GOAL_RATIO} goal: ${low.map((r) => `${r.model} ${r.test} (${r.ratio.toFixed(3)})`).join(', ')}`
      : `all ratios meet the ${GOAL_RATIO} goal`);
    if (rows.some(noisy)) console.log(`(noisy): runs spread by more than ${NOISY_CV * 100}% of the mean; rerun on an idle machine, with more --reps`);
  }
  if (nlcNote && runModels) console.log(`node-llama-cpp: ${nlcNote}`);
  if (prows.length > 0) {
    console.log(`\nparallel generation, ${PARALLEL_SHAPE.nPrompt}-token prompt + ${PARALLEL_SHAPE.nGen} tokens per sequence; sequences: ` +
      `${models.map((m) => `${m.label} ${nplOf(m.key as ModelKey).join(',')}`).join('; ')}${npl ? '' : ' (defaults; --npl to change)'}`);
    console.log(`\n${parallelTable(prows)}\n`);
    if (singles.length > 0) console.log(`1 sequence, against llama-bench (which keeps a thread pool, as ours does; batched-bench starts threads per decode):\n  ${singles.join('\n  ')}`);
    const plow = parallelBelowGoal(prows);
    console.log(plow.length ? `below the ${PARALLEL_GOAL} parallel goal: ${plow.map((r) => `${r.model} ${r.sequences} seq (${(r.oursTg.mean / r.llamaTg.mean).toFixed(3)})`).join(', ')}`
      : `parallel generation meets the ${PARALLEL_GOAL} goal at 4 and 16 sequences`);
  }
  if (serving.length > 0) console.log(`\n${servingTable(serving)}\n`);
  if (router) printRouter(router, models);
  if (stall) printStall(stall);
  if (train) printTrain(train);
  if (distill) printDistill(distill);
  if (server) printServer(server, serverOptions);
  if (prebuilt) printPrebuilt(prebuilt, shape.nPrompt, shape.nGen);
  const contention = monitor.stop();
  const contended = Object.entries(contention).filter(([, c]) => c.contended > 0.05 * c.samples);
  if (contended.length > 0) {
    console.log(`warning: other programs competed for the CPUs during: ${contended.map(([k, c]) => `${k} (${((100 * c.contended) / c.samples).toFixed(0)}% of samples, up to ${c.maxOtherCores} cores)`).join('; ')}. Those figures are not to be trusted: rerun on an idle machine.`);
  }

  const first = results[0] as { ours: OursResult; llamaBench: LlamaBenchResult } | undefined;
  const source = llamaCppSource();
  const machine = () => machineInfo({
    features: first?.ours.system.features, devices: first?.ours.system.devices,
    loadavgStart: loadStart, loadavgEnd: loadavg(), cpuBusyAtStart: Math.round(busyStart * 1000) / 1000, contention,
  });
  let distillFiles: { json: string; svg: string } | null = null;
  if (distill) {
    distillFiles = { json: join(repoRoot, 'bench', 'results', `${name}-distill.json`), svg: join(repoRoot, 'bench', 'results', `${name}-distill.svg`) };
    writeChart(distillFiles.svg, distillChart(`Distillation: local share and held-out similarity against teacher calls (${name})`,
      `stories260K, ${distill.settings.tasks.length} tasks, loopback teacher, calls one at a time (paused during rounds); caches off; embedder: character trigrams`,
      distill.runs, { share: SHARE_GOAL, similarity: SIMILARITY_GOAL, window: SHARE_WINDOW_CHART }));
    writeResults(distillFiles.json, { name, date: date.toISOString(), argv: process.argv.slice(2), machine: machine(), git: gitInfo(), ...distill });
    console.log(`wrote ${distillFiles.svg}\nwrote ${distillFiles.json}`);
    if (distillOnly) return;
  }
  const out = join(repoRoot, 'bench', 'results', `${name}.json`);
  if (panels.length > 0) {
    const svg = join(repoRoot, 'bench', 'results', `${name}-parallel.svg`);
    writeChart(svg, parallelChart(`Parallel generation: ours vs llama-batched-bench (${name})`,
      `total generation tokens/s; ${PARALLEL_SHAPE.nPrompt}-token prompt + ${PARALLEL_SHAPE.nGen} tokens per sequence; ${threads} threads${gpu ? ', GPU' : ''}; mean of ${reps} runs`, panels));
    console.log(`wrote ${svg}`);
  }
  writeResults(out, {
    name, date: date.toISOString(), argv: process.argv.slice(2),
    machine: machine(),
    git: gitInfo(),
    llamaCpp: { commit: source?.commit ?? null, source: source?.package ?? null, llamaBenchBuildCommit: first?.llamaBench.info.build_commit ?? null },
    settings: {
      threads, reps, warmupRuns: 1, gpu, ...shape, oursContextSize: oursOptions.contextSize,
      parallel: parallel ? { ...PARALLEL_SHAPE, perSequenceContext: perSequenceContext(PARALLEL_SHAPE), npl: Object.fromEntries(models.map((m) => [m.label, nplOf(m.key as ModelKey)])), lagSequences: LAG_SEQUENCES } : null,
      nodeLlamaCpp: nlcEntry ? { entry: nlcEntry } : { leftOut: nlcNote },
      models: models.map(({ key, label, path, fileSize, source: from, description }) => ({ key, label, path, fileSize, source: from, description })),
      tools,
    },
    table: rows.map((r) => ({
      model: r.model, test: r.test, llamaCppTps: r.llama.mean, llamaCppStddev: r.llama.stddev, oursTps: r.ours.mean, oursStddev: r.ours.stddev,
      ratio: r.ratio, noisy: noisy(r), nodeLlamaCppTps: r.nlc?.mean ?? null, nodeLlamaCppStddev: r.nlc?.stddev ?? null,
      ratioVsNodeLlamaCpp: r.nlc ? r.ours.mean / r.nlc.mean : null,
    })),
    parallelTable: prows.map((r) => ({
      model: r.model, sequences: r.sequences, llamaCppTgTps: r.llamaTg.mean, llamaCppTgStddev: r.llamaTg.stddev,
      oursTgTps: r.oursTg.mean, oursTgStddev: r.oursTg.stddev, ratio: r.oursTg.mean / r.llamaTg.mean, llamaCppPpTps: r.llamaPp.mean, oursPpTps: r.oursPp.mean,
    })),
    serving,
    router: router ? { settings: { ...routerOptions, hitRequest: HIT_REQUEST }, ...router } : null,
    stall,
    train,
    server: server ? { settings: serverOptions, ...server } : null,
    prebuilt: prebuilt ? { settings: { rounds, ...oursOptions }, ...prebuilt } : null,
    // The distill section's figures are in their own file (every call's record makes it large).
    distill: distillFiles,
    results,
  });
  console.log(`wrote ${out}`);
}

function printRouter(r: RouterBenchResult, models: BenchModel[]): void {
  const hit = r.hits.hit.ms.p50;
  console.log(`\nrouter: ${r.hits.calls} sequential exact-cache hits through router.chat() (mock remote, no embedder), after ${r.hits.warmup} warm-up calls\n`);
  console.log(`${routerHitTable(r.hits)}\n`);
  console.log(`exact hit p50 ${(hit * 1000).toFixed(1)} µs: ${hit <= HIT_GOAL_P50_MS ? 'meets' : 'misses'} the ${HIT_GOAL_P50_MS * 1000} µs goal`);
  if (r.semantic.length > 0) {
    const s = r.semantic[0]!;
    console.log(`\nsemantic index: SemanticIndex.nearest(), embedding excluded; random ${s.dim}-dim unit vectors (a typical sentence-embedding size) ` +
      `around ${s.clusters} cluster centres; ${s.queries} queries, half near-duplicates of stored entries, half fresh points of the clusters; recall on ${s.recallSample} of each\n`);
    console.log(`${semanticTable(r.semantic)}\n`);
    const slow = r.semantic.filter((x) => x.nearestMs.all.p99 > SEMANTIC_GOAL_P99_MS);
    console.log(slow.length ? `semantic lookup misses the ${SEMANTIC_GOAL_P99_MS} ms p99 goal at ${slow.map((x) => x.size).join(', ')} entries`
      : `semantic lookup meets the ${SEMANTIC_GOAL_P99_MS} ms p99 goal`);
  }
  if (r.embed.length > 0) {
    console.log(`\nembedding a prompt (apart from the lookup): createContext({ embeddings: true, contextSize: 512, sequences: 8 }), ~30-token prompts; ${models.map((m) => m.label).join(', ')}\n`);
    console.log(`${embedPromptTable(r.embed)}\n`);
  }
  console.log(`router section: ${r.seconds.toFixed(0)} s`);
}

main().catch((err: unknown) => {
  log(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
