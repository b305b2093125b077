// Writes LoRA adapters in llama.cpp's GGUF adapter format with deterministic random
// weights, for tests that need an adapter matching (or deliberately not matching) a base.
//
//   node --import tsx scripts/make-lora.ts --model BASE.gguf --out ADAPTER.gguf [--rank 4] [--alpha 8]
//        [--scale-std 0.5] [--targets attn_q,attn_v] [--seed 1] [--arch-mismatch] [--wrong-shape] [--no-base]
//
// Format, as llama_adapter_lora_init_impl (vendor/llama.cpp/src/llama-adapter.cpp) reads it:
// - general.type must be "adapter", adapter.type "lora", general.architecture must parse to
//   the base model's arch; adapter.lora.alpha is read with gguf_get_val_f32, which asserts
//   the type, so it must be FLOAT32 (any other type aborts the process, not just the load).
// - tensors are "<base tensor name>.lora_a" / ".lora_b" pairs; any other suffix (except
//   "_norm.weight") is rejected, and each base name must exist in the model.
// - shapes (ggml ne order): for a base weight W = [n_in, n_out] the delta is
//   B·(A·x), so A = [n_in, rank], B = [rank, n_out]; llama.cpp checks
//   W.ne0 == A.ne0, W.ne1 == B.ne1 and A.ne1 == B.ne0.
//   token_embd.weight = [n_embd, n_vocab] is the exception: the delta is B·get_rows(A, tokens),
//   so A = [rank, n_vocab], B = [rank, n_embd], checked as W.ne0 == B.ne1, W.ne1 == A.ne1.
// - the applied scale is user_scale * alpha / rank (rank = B.ne0), or user_scale if alpha is 0.
// The adapter also records its base model (general.base_model.*, understudy.base_model.*;
// see src/llama/lora-base.ts), so that loadLora() can refuse it for another model of
// the same shape.
import { parseArgs } from 'node:util';
import { GgmlType, GgufError, GgufValueType, type GgufKeyValue } from '../src/gguf/format.js';
import { readGguf } from '../src/gguf/reader.js';
import { deriveSeed, scratchBytes, tensorSource } from '../src/gguf/random-tensors.js';
import { writeGguf, type GgufTensorSpec } from '../src/gguf/writer.js';
import { baseMetadata, modelFingerprint } from '../src/llama/lora-base.js';
import { isMain } from './is-main.js';

export interface MakeLoraOptions {
  /** Base model GGUF; only its header is read. */
  model: string;
  out: string;
  rank?: number;
  /** Written as adapter.lora.alpha (FLOAT32); llama.cpp scales the delta by alpha / rank. */
  alpha?: number;
  /**
   * Standard deviation of every element of A and B (uniform noise). Unlike training init
   * (B = 0, a no-op adapter), B is random too, so applying the adapter changes the output.
   */
  scaleStd?: number;
  /**
   * Base tensor stems to adapt: "attn_q" targets every blk.{i}.attn_q.weight; a stem of a
   * top-level tensor ("output", "token_embd") targets {stem}.weight.
   */
  targets?: string[];
  seed?: number;
  name?: string;
  /** Error-test variant: an architecture string that differs from the base's. */
  wrongArchitecture?: boolean;
  /** Error-test variant: every lora_a gets n_in + 1 (A·B stay consistent, so the base-shape check is what fails). */
  wrongShape?: boolean;
  /** Record the base model in the adapter's metadata (default true; false writes an adapter that names no base). */
  recordBase?: boolean;
}

export interface LoraTensorInfo {
  name: string;
  /** The base model tensor this one adapts. */
  base: string;
  dims: number[];
}

export interface MakeLoraResult {
  path: string;
  fileSize: number;
  architecture: string;
  rank: number;
  alpha: number;
  tensors: LoraTensorInfo[];
}

export const LORA_DEFAULTS = { rank: 4, alpha: 8, scaleStd: 0.5, targets: ['attn_q', 'attn_v'], seed: 1, recordBase: true };

const bad = (msg: string) => new GgufError('INVALID_ARGUMENT', msg);

/** Lora A/B dims for a base weight of dims [ne0, ne1], following llama-adapter.cpp's checks. */
export function loraDims(baseName: string, baseDims: readonly number[], rank: number): { a: number[]; b: number[] } {
  const [ne0, ne1] = baseDims;
  // token_embd is looked up with get_rows, so A is indexed by token: A and B are "flipped".
  if (baseName.endsWith('token_embd.weight')) return { a: [rank, ne1], b: [rank, ne0] };
  return { a: [ne0, rank], b: [rank, ne1] };
}

/** Write a random LoRA adapter for the base model; see MakeLoraOptions. */
export async function makeLoraAdapter(options: MakeLoraOptions): Promise<MakeLoraResult> {
  const o = { ...LORA_DEFAULTS, ...definedOnly(options) };
  if (!Number.isSafeInteger(o.rank) || o.rank < 1) throw bad(`rank must be a positive integer, got ${o.rank}`);
  if (!Number.isFinite(o.alpha) || o.alpha < 0) throw bad(`alpha must be a non-negative number, got ${o.alpha}`);
  if (!Number.isFinite(o.scaleStd) || o.scaleStd <= 0) throw bad(`scaleStd must be a positive number, got ${o.scaleStd}`);
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw bad(`seed must be a non-negative integer, got ${o.seed}`);
  if (o.targets.length === 0) throw bad('targets must name at least one tensor');

  const base = await readGguf(o.model);
  const arch = base.metadata.get('general.architecture')?.value;
  if (typeof arch !== 'string') throw bad(`${o.model} has no general.architecture string`);
  // Any real arch name other than the base's makes llm_arch_from_string differ from model.arch.
  const architecture = o.wrongArchitecture ? (arch === 'gpt2' ? 'llama' : 'gpt2') : arch;

  // Base tensors in file order, so the adapter lists them in the same order as the model.
  const wanted = new Set(o.targets);
  const stemOf = (name: string) => /^(?:blk\.\d+\.)?(.+)\.weight$/.exec(name)?.[1];
  const targeted = base.tensors.filter((t) => {
    const stem = stemOf(t.name);
    return stem !== undefined && wanted.has(stem);
  });
  for (const target of o.targets) {
    if (!targeted.some((t) => stemOf(t.name) === target)) {
      throw bad(`target "${target}" matches no tensor blk.N.${target}.weight or ${target}.weight in ${o.model}`);
    }
  }

  const metadata: GgufKeyValue[] = [
    { key: 'general.architecture', type: GgufValueType.STRING, value: architecture },
    { key: 'general.type', type: GgufValueType.STRING, value: 'adapter' },
    { key: 'general.name', type: GgufValueType.STRING, value: o.name ?? `understudy-random-lora-r${o.rank}` },
    { key: 'adapter.type', type: GgufValueType.STRING, value: 'lora' },
    { key: 'adapter.lora.alpha', type: GgufValueType.FLOAT32, value: o.alpha },
    ...(o.recordBase ? baseMetadata(await modelFingerprint(o.model, base)) : []),
  ];

  const scratch = new ArrayBuffer(scratchBytes()); // writeGguf streams one tensor at a time
  const tensors: GgufTensorSpec[] = [];
  const infos: LoraTensorInfo[] = [];
  for (const t of targeted) {
    // 1-D tensors (norms) cannot carry a low-rank delta; llama.cpp's shape check reads ne[1].
    if (t.dims.length !== 2) throw bad(`target tensor ${t.name} has dims [${t.dims.join(', ')}]; only 2-D weights can take a LoRA`);
    const { a, b } = loraDims(t.name, t.dims, o.rank);
    // For token_embd A's ne1 is checked against the base, elsewhere A's ne0: break that one.
    if (o.wrongShape) a[t.name.endsWith('token_embd.weight') ? 1 : 0] += 1;
    for (const [suffix, dims] of [['lora_a', a], ['lora_b', b]] as const) {
      const name = `${t.name}.${suffix}`;
      const fill = { kind: 'random', seed: deriveSeed(o.seed, name), std: o.scaleStd } as const;
      tensors.push({ name, dims, type: GgmlType.F32, data: tensorSource(GgmlType.F32, dims, fill, { scratch }) });
      infos.push({ name, base: t.name, dims });
    }
  }

  const r = await writeGguf(o.out, { metadata, tensors });
  return { path: r.path, fileSize: r.fileSize, architecture, rank: o.rank, alpha: o.alpha, tensors: infos };
}

function definedOnly<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

const USAGE = `usage: node --import tsx scripts/make-lora.ts --model BASE.gguf --out ADAPTER.gguf
       [--rank N] [--alpha X] [--scale-std X] [--targets attn_q,attn_v] [--seed N] [--name NAME]
       [--arch-mismatch] [--wrong-shape] [--no-base]
Writes a llama.cpp LoRA adapter (F32 lora_a/lora_b pairs with random weights) for the
base model's tensors blk.N.<target>.weight. Defaults: rank ${LORA_DEFAULTS.rank}, alpha ${LORA_DEFAULTS.alpha},
scale-std ${LORA_DEFAULTS.scaleStd}, targets ${LORA_DEFAULTS.targets.join(',')}, seed ${LORA_DEFAULTS.seed}.
The adapter records its base model (name and fingerprint) unless --no-base is given.
--arch-mismatch and --wrong-shape write adapters llama.cpp must reject (for error tests).`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', short: 'm' }, out: { type: 'string', short: 'o' }, rank: { type: 'string' },
      alpha: { type: 'string' }, 'scale-std': { type: 'string' }, targets: { type: 'string' }, seed: { type: 'string' },
      name: { type: 'string' }, 'arch-mismatch': { type: 'boolean' }, 'wrong-shape': { type: 'boolean' },
      'no-base': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void console.log(USAGE);
  if (!values.model || !values.out) throw bad(`--model and --out are required\n${USAGE}`);
  const num = (s: string | undefined, flag: string, int = false) => {
    if (s === undefined) return undefined;
    const v = Number(s);
    if (s.trim() === '' || !Number.isFinite(v) || (int && !Number.isSafeInteger(v))) throw bad(`--${flag} must be ${int ? 'an integer' : 'a number'}, got "${s}"`);
    return v;
  };
  const r = await makeLoraAdapter({
    model: values.model,
    out: values.out,
    rank: num(values.rank, 'rank', true),
    alpha: num(values.alpha, 'alpha'),
    scaleStd: num(values['scale-std'], 'scale-std'),
    targets: values.targets?.split(',').map((s) => s.trim()).filter(Boolean),
    seed: num(values.seed, 'seed', true),
    name: values.name,
    wrongArchitecture: values['arch-mismatch'],
    wrongShape: values['wrong-shape'],
    recordBase: values['no-base'] ? false : undefined,
  });
  console.log(`${r.path}: ${r.fileSize} bytes, ${r.architecture} LoRA rank ${r.rank} alpha ${r.alpha}, ${r.tensors.length} tensors`);
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`make-lora: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
