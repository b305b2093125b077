// `npm run bench`: llama.cpp's llama-bench and our addon, on the same model files
// with the same threads and batch sizes, in one invocation; prints the comparison
// and writes bench/results/<name>.json. See bench/README.md.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findReferenceTools, runLlamaBench, toolDirs, type LlamaBenchResult } from './llama-tools.js';
import { parseModelList, repoRoot, resolveModels, type BenchModel } from './models.js';
import { RESULT_PREFIX, type OursOptions, type OursResult } from './ours.js';
import { compare, comparisonTable, extrasTable, GOAL_RATIO, noisy, NOISY_CV, writeResults, type ComparisonRow, type ExtraRow } from './report.js';

const USAGE = `usage: npm run bench -- [options]
  --threads N     CPU threads for both sides (default: os.availableParallelism() = ${os.availableParallelism()})
  --reps N        measured repetitions per test, after one warm-up (default 5)
  --models LIST   comma-separated: stories,tinyllama (default both)
  --name NAME     results file bench/results/NAME.json (default cpu-<hostname>-<date>)
  --gpu           offload all layers: -ngl 99 for llama-bench, gpuLayers 'max' for ours
  --quick         smoke run: reps 2, stories only (unless --reps / --models say otherwise)`;

const log = (msg: string) => console.error(msg);

function positiveInt(s: string | undefined, flag: string, fallback: number): number {
  if (s === undefined) return fallback;
  if (!/^[1-9]\d*$/.test(s)) throw new Error(`--${flag} must be a positive integer, got "${s}"`);
  return Number(s);
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', ['--no-optional-locks', ...args], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function readJson(path: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Runs ours.ts in a child process, so each model's peak RSS is its own. */
function runOurs(model: BenchModel, o: OursOptions): Promise<OursResult> {
  const script = fileURLToPath(new URL('./ours.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--model', model.path, '--options', JSON.stringify(o)], {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  return new Promise((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code !== 0 || !line) return reject(new Error(`our side failed on ${model.label} (${code ?? signal}); its errors are above`));
      resolvePromise(JSON.parse(line.slice(RESULT_PREFIX.length)) as OursResult);
    });
  });
}

function loadavg(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

/** Share of all cores busy over the next second (0-1): other work skews every figure. */
async function cpuBusy(): Promise<number> {
  const sum = () => os.cpus().reduce((a, c) => {
    const t = c.times;
    return { busy: a.busy + t.user + t.nice + t.sys + t.irq, total: a.total + t.user + t.nice + t.sys + t.irq + t.idle };
  }, { busy: 0, total: 0 });
  const a = sum();
  await new Promise((r) => setTimeout(r, 1000));
  const b = sum();
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string' }, reps: { type: 'string' }, models: { type: 'string' }, name: { type: 'string' },
      gpu: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void console.log(USAGE);
  const quick = values.quick ?? false;
  const gpu = values.gpu ?? false;
  const threads = positiveInt(values.threads, 'threads', os.availableParallelism());
  const reps = positiveInt(values.reps, 'reps', quick ? 2 : 5);
  const keys = parseModelList(values.models ?? (quick ? 'stories' : 'stories,tinyllama'));
  const date = new Date();
  const name = values.name ?? `${gpu ? 'gpu' : 'cpu'}-${os.hostname()}-${date.toISOString().slice(0, 10)}`;
  if (!/^[\w.-]+$/.test(name)) throw new Error(`--name may hold letters, digits, '.', '_' and '-' only, got "${name}"`);

  const tools = findReferenceTools();
  if (!tools) {
    log(`bench: llama-bench not found (looked in ${toolDirs().join(', ')}).\n` +
      `Build llama.cpp's reference tools from the vendored tree with \`npm run build:tools\` ` +
      `(or point UNDERSTUDY_TOOLS_DIR at a folder that holds them), then run this again.`);
    process.exit(1);
  }
  if (!existsSync(join(repoRoot, 'build', 'Release', 'understudy.node')) && !existsSync(join(repoRoot, 'prebuilds'))) {
    log('bench: warning: build/Release/understudy.node is missing; build the addon with `npm run build:native`');
  }
  const models = await resolveModels(keys, log);
  const shape = { nPrompt: 512, nGen: 128, batchSize: 512 };
  const oursOptions: OursOptions = { threads, reps, gpu, ...shape, contextSize: 1024 };
  const loadStart = loadavg();
  log(`bench: ${models.map((m) => m.label).join(', ')}; threads ${threads}, reps ${reps}${gpu ? ', GPU' : ''}; llama-bench: ${tools.llamaBench}`);
  const busyStart = await cpuBusy();
  if (busyStart > 0.15) {
    log(`bench: warning: the CPUs are ${(busyStart * 100).toFixed(0)}% busy with other work; figures will be noisy (stop it and run again)`);
  }

  const rows: ComparisonRow[] = [];
  const extras: ExtraRow[] = [];
  const results: { model: string; llamaBench: Omit<LlamaBenchResult, 'rows'> & { rows: unknown }; ours: OursResult; ratios: Record<string, number> }[] = [];
  for (const m of models) {
    log(`bench: ${m.label}: llama-bench ...`);
    const lb = await runLlamaBench(tools.llamaBench, m.path, { threads, reps, gpu, ...shape });
    log(`  llama-bench pp${shape.nPrompt}: ${lb.pp.mean.toFixed(2)} t/s, tg${shape.nGen}: ${lb.tg.mean.toFixed(2)} t/s (${lb.seconds.toFixed(0)} s)`);
    log(`bench: ${m.label}: ours ...`);
    const ours = await runOurs(m, oursOptions);
    const pp = compare(m.label, `pp${shape.nPrompt}`, lb.pp, ours.pp);
    const tg = compare(m.label, `tg${shape.nGen}`, lb.tg, ours.tg);
    rows.push(pp, tg);
    extras.push({
      model: m.label, ttftMs: ours.ttftMs, ttftJsMs: ours.ttftJsMs, promptTokens: ours.ttftPromptTokens,
      lagIdle: ours.lagIdle, lagGen: ours.lagGen, streamTg: ours.streamTg, loadMs: ours.loadMs, peakRssMb: ours.peakRssMb,
    });
    results.push({ model: m.label, llamaBench: lb, ours, ratios: { pp: pp.ratio, tg: tg.ratio } });
  }

  console.log(`\n${comparisonTable(rows)}\n`);
  console.log(`${extrasTable(extras)}\n`);
  const low = rows.filter((r) => r.ratio < GOAL_RATIO);
  console.log(low.length ? `below the ${GOAL_RATIO} goal: ${low.map((r) => `${r.model} ${r.test} (${r.ratio.toFixed(3)})`).join(', ')}`
    : `all ratios meet the ${GOAL_RATIO} goal`);
  if (rows.some(noisy)) console.log(`(noisy): runs spread by more than ${NOISY_CV * 100}% of the mean; rerun on an idle machine, with more --reps`);

  const source = readJson(join(repoRoot, 'vendor', 'llama.cpp', '.understudy-source.json'));
  const cpus = os.cpus();
  const out = join(repoRoot, 'bench', 'results', `${name}.json`);
  writeResults(out, {
    name, date: date.toISOString(), argv: process.argv.slice(2),
    machine: {
      hostname: os.hostname(), cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, availableParallelism: os.availableParallelism(),
      os: `${os.type()} ${os.release()}`, platform: process.platform, arch: process.arch, totalMemoryMb: Math.round(os.totalmem() / 2 ** 20),
      node: process.version, features: results[0]?.ours.system.features, devices: results[0]?.ours.system.devices,
      loadavgStart: loadStart, loadavgEnd: loadavg(), cpuBusyAtStart: Math.round(busyStart * 1000) / 1000,
    },
    git: { commit: git(['rev-parse', 'HEAD']), dirty: (git(['status', '--porcelain']) ?? '') !== '' },
    llamaCpp: { commit: source?.commit ?? null, source: source?.package ?? null, llamaBenchBuildCommit: results[0]?.llamaBench.info.build_commit ?? null },
    settings: {
      threads, reps, warmupRuns: 1, gpu, ...shape, oursContextSize: oursOptions.contextSize,
      models: models.map(({ key, label, path, fileSize, source: from, description }) => ({ key, label, path, fileSize, source: from, description })),
      tools,
    },
    table: rows.map((r) => ({ model: r.model, test: r.test, llamaCppTps: r.llama.mean, llamaCppStddev: r.llama.stddev, oursTps: r.ours.mean, oursStddev: r.ours.stddev, ratio: r.ratio, noisy: noisy(r) })),
    results,
  });
  console.log(`wrote ${out}`);
}

main().catch((err: unknown) => {
  log(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
