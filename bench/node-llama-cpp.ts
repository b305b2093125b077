// node-llama-cpp, the usual way to run llama.cpp from Node, measured on the same
// pp and tg as ours. A bench-only tool, never a dependency of the project: its
// install script downloads or builds binaries, and its optional dependencies pull
// CUDA and Vulkan builds (hundreds of MB), so it is not in package.json. The
// bench installs it once, with scripts off and only the CPU binaries for this
// platform, into .understudy/bench-deps/ (git-ignored), and imports it by path.
// run.ts runs this file as a child process per model.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { childMain, invokedDirectly } from './child.js';
import { repoRoot } from './models.js';
import { summarize, type Stat } from './report.js';

export const NLC_VERSION = '3.22.1';
export const depsDir = join(repoRoot, '.understudy', 'bench-deps');

export interface NlcOptions {
  /** node-llama-cpp's dist/index.js. */
  entry: string;
  threads: number;
  reps: number;
  nPrompt: number;
  nGen: number;
  batchSize: number;
  contextSize: number;
  /** The pp prompt our side used; its first token starts tg. */
  prompt: number[];
}

export interface NlcResult {
  version: string;
  llamaCpp: unknown;
  pp: Stat;
  tg: Stat;
  loadMs: number;
  context: { contextSize: number; batchSize: number; threads: number; flashAttention: unknown };
}

/** Its prebuilt-binaries package for this platform (CPU build). */
function binaryPackage(): string | undefined {
  const arch = process.arch;
  if (process.platform === 'linux') return `@node-llama-cpp/linux-${arch === 'arm' ? 'armv7l' : arch}`;
  if (process.platform === 'darwin') return `@node-llama-cpp/mac-${arch}${arch === 'arm64' ? '-metal' : ''}`;
  if (process.platform === 'win32') return `@node-llama-cpp/win-${arch}`;
  return undefined;
}

function installedVersion(pkg: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(depsDir, 'node_modules', pkg, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * The path of node-llama-cpp's entry point, installing it first when needed;
 * `{ error }` when it cannot be had (offline, no binaries for this platform).
 */
export function ensureNodeLlamaCpp(log: (msg: string) => void): { entry: string } | { error: string } {
  const bin = binaryPackage();
  if (!bin) return { error: `no prebuilt node-llama-cpp binaries for ${process.platform}-${process.arch}` };
  const entry = join(depsDir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
  if (installedVersion('node-llama-cpp') === NLC_VERSION && installedVersion(bin) === NLC_VERSION && existsSync(entry)) return { entry };
  log(`bench: installing node-llama-cpp@${NLC_VERSION} (CPU binaries only, no install scripts) into ${depsDir} ...`);
  const args = ['install', '--prefix', depsDir, '--no-save', '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund',
    '--loglevel=error', `node-llama-cpp@${NLC_VERSION}`, `${bin}@${NLC_VERSION}`];
  const r = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { cwd: repoRoot, encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0 || !existsSync(entry)) {
    return { error: `npm ${args.join(' ')} failed (${r.status ?? r.signal ?? r.error?.message}): ${(r.stderr ?? '').trim().slice(-500)}` };
  }
  return { entry };
}

// The small part of node-llama-cpp's API used here.
interface NlcSequence {
  clearHistory(): Promise<void>;
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  evaluate(tokens: number[], options: { temperature: number }): AsyncGenerator<number, void, void>;
}
interface NlcContext {
  contextSize: number;
  batchSize: number;
  currentThreads: number;
  flashAttention: unknown;
  getSequence(): NlcSequence;
  dispose(): Promise<void>;
}
interface NlcModel {
  createContext(o: Record<string, unknown>): Promise<NlcContext>;
  dispose(): Promise<void>;
}
interface NlcModule {
  getLlama(o: Record<string, unknown>): Promise<{ llamaCppRelease: unknown; loadModel(o: Record<string, unknown>): Promise<NlcModel>; dispose(): Promise<void> }>;
  LlamaLogLevel: Record<string, unknown>;
}

export async function measureNodeLlamaCpp(path: string, o: NlcOptions, log: (msg: string) => void = () => {}): Promise<NlcResult> {
  const nlc = (await import(pathToFileURL(o.entry).href)) as NlcModule;
  const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error, maxThreads: o.threads });
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const loadMs = performance.now() - t0;
  try {
    // As ours: F16 KV cache (its default), flash attention auto, one sequence.
    const ctx = await model.createContext({ contextSize: o.contextSize, batchSize: o.batchSize, threads: o.threads, flashAttention: 'auto', sequences: 1 });
    const seq = ctx.getSequence();
    const runs = o.reps + 1; // the first is the warm-up
    const pp: number[] = [];
    for (let i = 0; i < runs; i++) {
      await seq.clearHistory();
      const t = performance.now();
      await seq.evaluateWithoutGeneratingNewTokens(o.prompt);
      if (i > 0) pp.push((o.nPrompt * 1000) / (performance.now() - t));
    }
    log(`  node-llama-cpp pp${o.nPrompt}: ${summarize(pp).mean.toFixed(2)} t/s`);
    // tg: the plain evaluate loop: from the first token (sampled from the one-token
    // prompt's logits) to the (nGen + 1)th: nGen decodes, greedy sampling, as ours.
    const tg: number[] = [];
    for (let i = 0; i < runs; i++) {
      await seq.clearHistory();
      let n = 0;
      let first = 0;
      for await (const token of seq.evaluate(o.prompt.slice(0, 1), { temperature: 0 })) {
        void token;
        if (++n === 1) first = performance.now();
        if (n === o.nGen + 1) break;
      }
      if (n !== o.nGen + 1) throw new Error(`bench (node-llama-cpp): tg generated ${n} tokens, not ${o.nGen + 1}`);
      if (i > 0) tg.push((o.nGen * 1000) / (performance.now() - first));
    }
    log(`  node-llama-cpp tg${o.nGen}: ${summarize(tg).mean.toFixed(2)} t/s`);
    const context = { contextSize: ctx.contextSize, batchSize: ctx.batchSize, threads: ctx.currentThreads, flashAttention: ctx.flashAttention };
    await ctx.dispose();
    return { version: NLC_VERSION, llamaCpp: llama.llamaCppRelease, pp: summarize(pp), tg: summarize(tg), loadMs, context };
  } finally {
    await model.dispose();
    await llama.dispose();
  }
}

// Child mode: `node --import tsx bench/node-llama-cpp.ts --model FILE --options JSON`.
if (invokedDirectly(import.meta.url)) childMain('node-llama-cpp.ts', measureNodeLlamaCpp);
