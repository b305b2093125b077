// Writes llama-architecture GGUF models with deterministic random weights and a real
// tokenizer copied from a vocab-only GGUF (llama.cpp's models/ggml-vocab-*.gguf), for
// tests and benchmarks that need a loadable model of a given shape but not a trained one.
//
//   node --import tsx scripts/make-model.ts --preset tiny --out /tmp/tiny.gguf
//   node --import tsx scripts/make-model.ts --preset tinyllama-1.1b --out /tmp/tl.gguf [--type Q8_0]
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GGML_TYPE_BY_NAME, GgmlType, GgufError, GgufValueType, type GgufKeyValue } from '../src/gguf/format.js';
import { readGguf } from '../src/gguf/reader.js';
import { deriveSeed, scratchBytes, tensorSource } from '../src/gguf/random-tensors.js';
import { writeGguf, type GgufTensorSpec } from '../src/gguf/writer.js';
import { isMain } from './is-main.js';

export type ModelTensorType = 'F32' | 'F16' | 'Q8_0' | 'Q4_0';

export interface MakeModelOptions {
  out: string;
  /** Vocab-only (or any) GGUF whose tokenizer.* keys are copied. Default: llama.cpp's llama-spm vocab. */
  vocab?: string;
  layers: number;
  embd: number;
  ff: number;
  heads: number;
  kvHeads: number;
  ctx?: number;
  /** Type of the 2-D weight matrices (norms are always F32). */
  type?: ModelTensorType;
  /** Type of token_embd.weight and output.weight; defaults to `type`. */
  embdType?: ModelTensorType;
  seed?: number;
  name?: string;
  /** Written as tokenizer.chat_template (Jinja text), for chat tests. */
  chatTemplate?: string;
  /** true: percentage on stderr for files over 32 MB; or a callback. */
  progress?: boolean | ((written: number, total: number) => void);
}

export interface MakeModelResult {
  path: string;
  fileSize: number;
  seconds: number;
  vocabSize: number;
  parameters: number;
}

export const DEFAULT_VOCAB = fileURLToPath(new URL('../vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf', import.meta.url));

export const PRESETS = {
  /** ~16.6 MB, dominated by the two F32 [64, 32000] embedding matrices. */
  tiny: { layers: 2, embd: 64, ff: 128, heads: 4, kvHeads: 2, ctx: 2048, type: 'F32', name: 'understudy-tiny' },
  /** TinyLlama-1.1B's shape: ~1.1B parameters, ~620 MB as Q4_0. */
  'tinyllama-1.1b': { layers: 22, embd: 2048, ff: 5632, heads: 32, kvHeads: 4, ctx: 2048, type: 'Q4_0', name: 'tinyllama-1.1b-random' },
} satisfies Record<string, Omit<MakeModelOptions, 'out'>>;
export type PresetName = keyof typeof PRESETS;

// llama.cpp's LLAMA_FTYPE for a model whose big matrices have this type.
const FILE_TYPE: Record<ModelTensorType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7 };
const WEIGHT_STD = 0.02; // GPT-2/llama-style init scale: keeps activations and logits O(1)

const bad = (msg: string) => new GgufError('INVALID_ARGUMENT', msg);

function validate(o: MakeModelOptions): void {
  for (const k of ['layers', 'embd', 'ff', 'heads', 'kvHeads', 'ctx', 'seed'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < (k === 'seed' ? 0 : 1))) throw bad(`${k} must be a positive integer, got ${v}`);
  }
  for (const t of [o.type, o.embdType]) {
    if (t !== undefined && !(t in FILE_TYPE)) throw bad(`type must be one of ${Object.keys(FILE_TYPE).join(', ')}, got ${t}`);
  }
  if (o.embd % o.heads !== 0) throw bad(`embd (${o.embd}) must be divisible by heads (${o.heads})`);
  if (o.heads % o.kvHeads !== 0) throw bad(`heads (${o.heads}) must be divisible by kvHeads (${o.kvHeads})`);
  if ((o.embd / o.heads) % 2 !== 0) throw bad(`head size embd/heads = ${o.embd / o.heads} must be even (RoPE rotates pairs)`);
  // Quantized rows are whole 32-weight blocks; ne0 is embd for every matrix except ffn_down (ff).
  const quant = [o.type, o.embdType].filter((t) => t === 'Q4_0' || t === 'Q8_0');
  if (quant.length && o.embd % 32 !== 0) throw bad(`embd (${o.embd}) must be a multiple of 32 for ${quant[0]}`);
  if ((o.type === 'Q4_0' || o.type === 'Q8_0') && o.ff % 32 !== 0) throw bad(`ff (${o.ff}) must be a multiple of 32 for ${o.type}`);
}

/** Write a random-weight llama model; see MakeModelOptions. */
export async function makeLlamaModel(options: MakeModelOptions): Promise<MakeModelResult> {
  const start = performance.now();
  const o = { ctx: 2048, type: 'F32' as ModelTensorType, seed: 42, name: 'understudy-random-llama', ...options };
  validate(o);
  const vocabPath = o.vocab ?? DEFAULT_VOCAB;
  const vocab = await readGguf(vocabPath);
  const tokenizer: GgufKeyValue[] = [...vocab.metadata]
    .filter(([key]) => key.startsWith('tokenizer.'))
    .map(([key, e]) => ({ key, ...e }));
  const tokens = vocab.metadata.get('tokenizer.ggml.tokens')?.value;
  if (typeof tokens !== 'object' || !('items' in tokens)) throw bad(`${vocabPath} has no tokenizer.ggml.tokens array`);
  const nVocab = tokens.items.length;

  const { layers, embd, ff, heads, kvHeads } = o;
  const u32 = (key: string, value: number): GgufKeyValue => ({ key, type: GgufValueType.UINT32, value });
  const f32 = (key: string, value: number): GgufKeyValue => ({ key, type: GgufValueType.FLOAT32, value });
  const quantized = o.type === 'Q4_0' || o.type === 'Q8_0' || o.embdType === 'Q4_0' || o.embdType === 'Q8_0';
  const metadata: GgufKeyValue[] = [
    { key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' },
    { key: 'general.name', type: GgufValueType.STRING, value: o.name },
    u32('general.file_type', FILE_TYPE[o.type]),
    ...(quantized ? [u32('general.quantization_version', 2)] : []),
    u32('llama.vocab_size', nVocab),
    u32('llama.context_length', o.ctx),
    u32('llama.embedding_length', embd),
    u32('llama.block_count', layers),
    u32('llama.feed_forward_length', ff),
    u32('llama.attention.head_count', heads),
    u32('llama.attention.head_count_kv', kvHeads),
    u32('llama.rope.dimension_count', embd / heads),
    f32('llama.attention.layer_norm_rms_epsilon', 1e-5),
    f32('llama.rope.freq_base', 10000),
    ...tokenizer.filter((kv) => o.chatTemplate === undefined || kv.key !== 'tokenizer.chat_template'),
    ...(o.chatTemplate === undefined ? [] : [{ key: 'tokenizer.chat_template', type: GgufValueType.STRING, value: o.chatTemplate }]),
  ];

  const kvDim = (embd / heads) * kvHeads;
  const mat = GGML_TYPE_BY_NAME[o.type];
  const embdMat = GGML_TYPE_BY_NAME[o.embdType ?? o.type];
  const tensors: GgufTensorSpec[] = [];
  const scratch = new ArrayBuffer(scratchBytes()); // one chunk buffer for all tensors (written one at a time)
  let parameters = 0;
  const add = (name: string, dims: number[], type: GgmlType) => {
    // Norm weights are 1.0 (identity scale); everything else is small zero-mean noise.
    const fill = dims.length === 1
      ? ({ kind: 'constant', value: 1 } as const)
      : ({ kind: 'random', seed: deriveSeed(o.seed, name), std: WEIGHT_STD } as const);
    tensors.push({ name, dims, type, data: tensorSource(type, dims, fill, { scratch }) });
    parameters += dims.reduce((a, b) => a * b, 1);
  };
  add('token_embd.weight', [embd, nVocab], embdMat);
  add('output_norm.weight', [embd], GgmlType.F32);
  add('output.weight', [embd, nVocab], embdMat);
  for (let i = 0; i < layers; i++) {
    add(`blk.${i}.attn_norm.weight`, [embd], GgmlType.F32);
    add(`blk.${i}.attn_q.weight`, [embd, embd], mat);
    add(`blk.${i}.attn_k.weight`, [embd, kvDim], mat);
    add(`blk.${i}.attn_v.weight`, [embd, kvDim], mat);
    add(`blk.${i}.attn_output.weight`, [embd, embd], mat);
    add(`blk.${i}.ffn_norm.weight`, [embd], GgmlType.F32);
    add(`blk.${i}.ffn_gate.weight`, [embd, ff], mat);
    add(`blk.${i}.ffn_up.weight`, [embd, ff], mat);
    add(`blk.${i}.ffn_down.weight`, [ff, embd], mat);
  }

  const result = await writeGguf(o.out, { metadata, tensors, onProgress: progressReporter(o.progress) });
  return { path: result.path, fileSize: result.fileSize, seconds: (performance.now() - start) / 1000, vocabSize: nVocab, parameters };
}

function progressReporter(p: MakeModelOptions['progress']): ((w: number, t: number) => void) | undefined {
  if (typeof p === 'function' || !p) return p || undefined;
  let last = -1;
  return (written, total) => {
    if (total < 32 << 20) return;
    const pct = Math.floor((written / total) * 100);
    // A TTY gets an in-place counter; logs get a line each time a 10% step is crossed.
    const step = process.stderr.isTTY ? pct : Math.floor(pct / 10) * 10;
    if (step === last) return;
    last = step;
    if (process.stderr.isTTY) process.stderr.write(`\r  writing ${pct}%${pct === 100 ? '\n' : ''}`);
    else process.stderr.write(`  writing ${step}%\n`);
  };
}

const USAGE = `usage: node --import tsx scripts/make-model.ts --out FILE [--preset tiny|tinyllama-1.1b]
       [--vocab FILE] [--layers N] [--embd N] [--ff N] [--heads N] [--kv-heads N] [--ctx N]
       [--type F32|F16|Q8_0|Q4_0] [--embd-type TYPE] [--seed N] [--name NAME]
Writes a llama-architecture GGUF with random weights and the tokenizer of --vocab
(default ${DEFAULT_VOCAB}). Options override the preset (default preset: tiny).`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string', short: 'o' }, preset: { type: 'string' }, vocab: { type: 'string' },
      layers: { type: 'string' }, embd: { type: 'string' }, ff: { type: 'string' }, heads: { type: 'string' },
      'kv-heads': { type: 'string' }, ctx: { type: 'string' }, type: { type: 'string' }, 'embd-type': { type: 'string' },
      seed: { type: 'string' }, name: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void console.log(USAGE);
  if (!values.out) throw bad(`--out is required\n${USAGE}`);
  const presetName = values.preset ?? 'tiny';
  if (!(presetName in PRESETS)) throw bad(`unknown preset "${presetName}" (known: ${Object.keys(PRESETS).join(', ')})`);
  const int = (s: string | undefined, flag: string) => {
    if (s === undefined) return undefined;
    if (!/^\d+$/.test(s)) throw bad(`--${flag} must be a non-negative integer, got "${s}"`);
    return Number(s);
  };
  const defined = <T extends object>(obj: T) => Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
  const opts: MakeModelOptions = {
    ...PRESETS[presetName as PresetName],
    ...defined({
      out: values.out, vocab: values.vocab, name: values.name,
      layers: int(values.layers, 'layers'), embd: int(values.embd, 'embd'), ff: int(values.ff, 'ff'),
      heads: int(values.heads, 'heads'), kvHeads: int(values['kv-heads'], 'kv-heads'), ctx: int(values.ctx, 'ctx'),
      seed: int(values.seed, 'seed'),
      type: values.type?.toUpperCase() as ModelTensorType | undefined,
      embdType: values['embd-type']?.toUpperCase() as ModelTensorType | undefined,
    }),
    out: values.out,
    progress: true,
  };
  const r = await makeLlamaModel(opts);
  const mb = (r.fileSize / 1e6).toFixed(1);
  console.log(`${r.path}: ${r.fileSize} bytes (${mb} MB), ${(r.parameters / 1e6).toFixed(2)}M parameters, ${r.seconds.toFixed(1)} s`);
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`make-model: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
