// llama.cpp's reference tools (llama-bench, llama-batched-bench, llama-quantize),
// built from the same vendored tree as our addon: finding them and running
// llama-bench with the settings our side uses.
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { watchPid } from './machine.js';
import { repoRoot } from './models.js';
import { summarize, type Stat } from './report.js';

export interface ReferenceTools {
  /** Where they were found. */
  dir: string;
  llamaBench: string;
  batchedBench?: string;
  quantize?: string;
}

// Where a binary can lie under a tools directory: flat, in the folder cmake gives
// it (tools/<subdir>/<name>), or in a bin/ folder (llama.cpp's standalone build).
const LAYOUT: Record<'llamaBench' | 'batchedBench' | 'quantize', { name: string; subdir: string }> = {
  llamaBench: { name: 'llama-bench', subdir: 'llama-bench' },
  batchedBench: { name: 'llama-batched-bench', subdir: 'batched-bench' },
  quantize: { name: 'llama-quantize', subdir: 'quantize' },
};

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function findIn(dir: string, tool: keyof typeof LAYOUT): string | undefined {
  const { name, subdir } = LAYOUT[tool];
  const exe = process.platform === 'win32' ? `${name}.exe` : name;
  return [join(dir, exe), join(dir, subdir, exe), join(dir, 'bin', exe), join(dir, subdir, 'Release', exe)].find(executable);
}

/** The tool directories searched, in order. */
export function toolDirs(): string[] {
  const dirs: string[] = [];
  if (process.env.UNDERSTUDY_TOOLS_DIR) dirs.push(process.env.UNDERSTUDY_TOOLS_DIR);
  dirs.push(join(repoRoot, 'build', 'tools'), join(repoRoot, 'build-bench', 'tools'));
  return dirs;
}

/** The first directory that holds llama-bench, with whatever else it holds; undefined when none does. */
export function findReferenceTools(): ReferenceTools | undefined {
  for (const dir of toolDirs()) {
    const llamaBench = findIn(dir, 'llamaBench');
    if (llamaBench) return { dir, llamaBench, batchedBench: findIn(dir, 'batchedBench'), quantize: findIn(dir, 'quantize') };
  }
  return undefined;
}

export interface LlamaBenchResult {
  pp: Stat;
  tg: Stat;
  args: string[];
  seconds: number;
  /** What llama-bench says about itself and the run (from its pp row). */
  info: Record<string, unknown>;
  /** Its JSON rows, whole. */
  rows: Record<string, unknown>[];
}

export interface LlamaBenchOptions {
  threads: number;
  reps: number;
  gpu: boolean;
  nPrompt: number;
  nGen: number;
  batchSize: number;
}

export function llamaBenchArgs(model: string, o: LlamaBenchOptions): string[] {
  return [
    '-m', model, '-t', String(o.threads), '-p', String(o.nPrompt), '-n', String(o.nGen),
    '-b', String(o.batchSize), '-ub', String(o.batchSize), '-r', String(o.reps),
    '-ngl', o.gpu ? '99' : '0', '-o', 'json',
  ];
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const unwatch = watchPid(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      unwatch();
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

function stat(row: Record<string, unknown>): Stat {
  const samples = Array.isArray(row.samples_ts) ? (row.samples_ts as number[]) : [];
  return { mean: Number(row.avg_ts), stddev: Number(row.stddev_ts), samples };
}

const INFO_FIELDS = [
  'build_commit', 'build_number', 'cpu_info', 'gpu_info', 'backends', 'model_type', 'model_size', 'model_n_params',
  'n_batch', 'n_ubatch', 'n_threads', 'n_gpu_layers', 'flash_attn', 'type_k', 'type_v', 'poll', 'use_mmap',
];

/** Runs llama-bench once for pp and tg and returns its figures (tokens/s). */
export async function runLlamaBench(tool: string, model: string, o: LlamaBenchOptions): Promise<LlamaBenchResult> {
  const args = llamaBenchArgs(model, o);
  const started = performance.now();
  const r = await run(tool, args);
  const seconds = (performance.now() - started) / 1000;
  if (r.code !== 0) {
    throw new Error(`llama-bench failed (${r.code ?? r.signal}): ${tool} ${args.join(' ')}\n${r.stderr.slice(-2000)}`);
  }
  let rows: Record<string, unknown>[];
  try {
    // It prints one JSON array on stdout; anything before '[' would be stray log text.
    rows = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as Record<string, unknown>[];
  } catch (err) {
    throw new Error(`llama-bench printed no JSON we could read (${(err as Error).message}):\n${r.stdout.slice(0, 1000)}`);
  }
  const pp = rows.find((x) => Number(x.n_prompt) === o.nPrompt && Number(x.n_gen) === 0);
  const tg = rows.find((x) => Number(x.n_gen) === o.nGen && Number(x.n_prompt) === 0);
  if (!pp || !tg) throw new Error(`llama-bench's JSON lacks the pp${o.nPrompt} or tg${o.nGen} row:\n${r.stdout.slice(0, 1000)}`);
  const info = Object.fromEntries(INFO_FIELDS.filter((k) => k in pp).map((k) => [k, pp[k]]));
  return { pp: stat(pp), tg: stat(tg), args, seconds, info, rows };
}

export interface BatchedBenchPoint {
  sequences: number;
  /** S_TG: sequences * tg / t_tg, per measured run. */
  tg: Stat;
  /** S_PP: sequences * pp / t_pp. */
  pp: Stat;
  args: string[];
  /** Its JSONL rows, the warm-up's first. */
  rows: Record<string, unknown>[];
}

export interface BatchedBenchOptions {
  threads: number;
  reps: number;
  gpu: boolean;
  nPrompt: number;
  nGen: number;
  /** Cells per sequence: -c is sequences times this. */
  perSequence: number;
  /** -b and -ub, as our context's batch and micro-batch. */
  batchSize: number;
}

/**
 * llama-batched-bench at one number of parallel sequences: one process per
 * point, its context sized as ours (-c sequences * perSequence, so n_seq_max and
 * the cells per sequence match), the same batch and micro-batch as ours,
 * distinct random prompts (no -pps), and -npl repeated reps + 1 times: one
 * warm-up, then the measured runs.
 */
export async function runBatchedBench(tool: string, model: string, sequences: number, o: BatchedBenchOptions): Promise<BatchedBenchPoint> {
  const args = [
    '-m', model, '-c', String(sequences * o.perSequence), '-b', String(o.batchSize), '-ub', String(o.batchSize),
    '-npp', String(o.nPrompt), '-ntg', String(o.nGen), '-npl', Array(o.reps + 1).fill(sequences).join(','),
    '-t', String(o.threads), '-ngl', o.gpu ? '99' : '0', '--output-format', 'jsonl',
  ];
  const r = await run(tool, args);
  if (r.code !== 0) throw new Error(`llama-batched-bench failed (${r.code ?? r.signal}): ${tool} ${args.join(' ')}\n${r.stderr.slice(-2000)}`);
  // Its JSONL goes through llama.cpp's log: stdout in this version, stderr in others.
  const rows = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.startsWith('{"n_kv_max"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  if (rows.length !== o.reps + 1) {
    throw new Error(`llama-batched-bench printed ${rows.length} result rows, not ${o.reps + 1} (is -c too small?): ${tool} ${args.join(' ')}`);
  }
  const measured = rows.slice(1);
  return {
    sequences, args, rows,
    tg: summarize(measured.map((x) => Number(x.speed_tg))),
    pp: summarize(measured.map((x) => Number(x.speed_pp))),
  };
}

/**
 * llama-bench's tg at a depth (-p 0 -n nGen -d depth): one sequence generating
 * after a prompt of `depth` tokens, with llama-bench's own thread pool. The
 * one-sequence reference for the parallel table (see bench/README.md).
 */
export async function runLlamaBenchAtDepth(tool: string, model: string, o: LlamaBenchOptions & { depth: number }): Promise<{ tg: Stat; args: string[] }> {
  const args = [...llamaBenchArgs(model, { ...o, nPrompt: 0 }), '-d', String(o.depth)];
  const r = await run(tool, args);
  if (r.code !== 0) throw new Error(`llama-bench failed (${r.code ?? r.signal}): ${tool} ${args.join(' ')}\n${r.stderr.slice(-2000)}`);
  const rows = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as Record<string, unknown>[];
  const row = rows.find((x) => Number(x.n_gen) === o.nGen && Number(x.n_depth) === o.depth);
  if (!row) throw new Error(`llama-bench's JSON lacks the tg${o.nGen} @ d${o.depth} row:\n${r.stdout.slice(0, 1000)}`);
  return { tg: stat(row), args };
}
