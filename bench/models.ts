// The benchmark's models: the real (tiny) stories260K from ../shared/models, and a
// TinyLlama-1.1B-shaped Q4_0 model with random weights, generated once into
// .understudy/bench-models/ and reused after that.
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeLlamaModel, PRESETS } from '../scripts/make-model.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface BenchModel {
  /** Key used by --models. */
  key: string;
  /** Name shown in the table. */
  label: string;
  path: string;
  fileSize: number;
  /** How we got the file: 'shared' | 'env' | 'generated' | 'cached'. */
  source: string;
  description: string;
}

export const MODEL_KEYS = ['stories', 'tinyllama'] as const;
export type ModelKey = (typeof MODEL_KEYS)[number];

export const tinyllamaPath = join(repoRoot, '.understudy', 'bench-models', 'tinyllama-1.1b-q4_0.gguf');

export function parseModelList(list: string): ModelKey[] {
  const keys = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const k of keys) {
    if (!(MODEL_KEYS as readonly string[]).includes(k)) {
      throw new Error(`unknown model "${k}" in --models (known: ${MODEL_KEYS.join(', ')})`);
    }
  }
  if (keys.length === 0) throw new Error('--models selects no model');
  return [...new Set(keys)] as ModelKey[];
}

function storiesModel(): BenchModel {
  const fromEnv = process.env.UNDERSTUDY_TEST_MODEL;
  const path = fromEnv ?? resolve(repoRoot, '..', 'shared', 'models', 'stories260K.gguf');
  if (!existsSync(path)) {
    throw new Error(`stories260K not found at ${path}: put it in ../shared/models/ or set UNDERSTUDY_TEST_MODEL`);
  }
  return {
    key: 'stories', label: 'stories260K', path, fileSize: statSync(path).size,
    source: fromEnv ? 'env' : 'shared',
    description: 'stories260K (llama, 260K parameters, trained; F32)',
  };
}

async function tinyllamaModel(log: (msg: string) => void): Promise<BenchModel> {
  let source = 'cached';
  if (!existsSync(tinyllamaPath)) {
    source = 'generated';
    mkdirSync(dirname(tinyllamaPath), { recursive: true });
    // Written under a temporary name first, so an interrupted run leaves no half file behind.
    const tmp = `${tinyllamaPath}.partial-${process.pid}`;
    log(`bench: generating ${tinyllamaPath} (TinyLlama-1.1B shape, Q4_0, random weights; once) ...`);
    try {
      const r = await makeLlamaModel({ ...PRESETS['tinyllama-1.1b'], out: tmp });
      renameSync(tmp, tinyllamaPath);
      log(`bench: wrote ${(r.fileSize / 1e6).toFixed(0)} MB in ${r.seconds.toFixed(1)} s`);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  }
  return {
    key: 'tinyllama', label: 'tinyllama-1.1b-q4_0', path: tinyllamaPath, fileSize: statSync(tinyllamaPath).size, source,
    description: 'TinyLlama-1.1B shape (22 layers, 2048 embd, GQA 32/4, llama-spm vocab), Q4_0, random weights',
  };
}

export async function resolveModels(keys: ModelKey[], log: (msg: string) => void): Promise<BenchModel[]> {
  const out: BenchModel[] = [];
  for (const key of keys) out.push(key === 'stories' ? storiesModel() : await tinyllamaModel(log));
  return out;
}
