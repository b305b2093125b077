// The LoRA adapter files training starts from, resumes from and saves, in llama.cpp's
// GGUF adapter format (see scripts/make-lora.ts for what llama_adapter_lora_init checks):
//
//   <base>.lora_a  F32, ne = [nIn, rank]    for a base weight <base> of ne = [nIn, nOut]
//   <base>.lora_b  F32, ne = [rank, nOut]   (the delta is B·(A·x), scaled by alpha / rank)
//   general.architecture (the base's), general.type = adapter, adapter.type = lora,
//   adapter.lora.alpha (FLOAT32: llama.cpp reads it with gguf_get_val_f32, which aborts
//   the process on any other type), the base model's fingerprint (lora-base.ts), and
//   understudy.training.* (rank, targets; steps, epochs, losses and tokens once trained).
//
// Every function checks its plan against the model's header (lora-plan.ts) first.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { UnderstudyError } from '../errors.js';
import { GgmlType, GgufValueType, ggmlTypeName, type GgufKeyValue, type GgufTensorInfo } from '../gguf/format.js';
import { readGguf, type GgufFile } from '../gguf/reader.js';
import { Rng, deriveSeed } from '../gguf/random-tensors.js';
import { writeGguf, type GgufTensorSpec } from '../gguf/writer.js';
import { baseMetadata, judgeBase, modelFingerprint } from './lora-base.js';
import {
  NO_GRADIENT, NO_GRADIENT_REASON, TRAINABLE, checkPlan, list, makePlan, modelInfo, readFailure, readModel,
  type AdapterPlan, type ModelInfo,
} from './lora-plan.js';
import * as v from '../validate.js';

export { DEFAULT_TARGETS, planAdapter, type AdapterPlan } from './lora-plan.js';

export interface TrainingMetadata {
  steps: number;
  epochs: number;
  /** Per epoch. */
  trainLoss: number[];
  /** Per epoch; empty without an evaluation split. */
  evalLoss: number[];
  tokens: number;
  /** general.name of the adapter; by default the file name without its extension. */
  name?: string;
}

export interface AdapterTensor {
  name: string;
  ne: number[];
  data: Float32Array;
}

const KEY = {
  rank: 'understudy.training.rank',
  targets: 'understudy.training.targets',
  steps: 'understudy.training.steps',
  epochs: 'understudy.training.epochs',
  trainLoss: 'understudy.training.train_loss',
  evalLoss: 'understudy.training.eval_loss',
  tokens: 'understudy.training.tokens',
} as const;

const MAX_U32 = 0xffffffff;
const invalid = (message: string) => new UnderstudyError('INVALID_ARGUMENT', message);

/** A new adapter: A ~ U(-1/sqrt(nIn), 1/sqrt(nIn)) from `seed`, B = 0, so it changes nothing until trained. */
export async function writeNewAdapter(path: string, modelPath: string, plan: AdapterPlan, seed: number): Promise<void> {
  v.nonEmptyString(path, 'path');
  v.nonEmptyString(modelPath, 'modelPath');
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > MAX_U32) v.fail(`integer between 0 and ${MAX_U32}`, 'seed', seed);
  const file = await readModel(modelPath);
  const model = modelInfo(modelPath, file);
  checkPlan(plan, model);
  const tensors: GgufTensorSpec[] = [];
  for (const t of plan.tensors) {
    // Generated when the writer reaches the tensor, so only one is held at a time.
    tensors.push({ name: `${t.base}.lora_a`, dims: [t.nIn, plan.rank], type: GgmlType.F32, data: () => bytesOf(initialA(seed, t.base, t.nIn, plan.rank)) });
    tensors.push({ name: `${t.base}.lora_b`, dims: [plan.rank, t.nOut], type: GgmlType.F32, data: () => new Uint8Array(4 * plan.rank * t.nOut) });
  }
  const metadata = [...await adapterMetadata(modelPath, file, model, plan), ...planMetadata(plan)];
  await writeAtomically(path, metadata, tensors);
}

/**
 * The initial A of one base matrix: uniform in [-1/sqrt(nIn), 1/sqrt(nIn)), the same
 * for a seed and name whatever the order the tensors are written in.
 */
export function initialA(seed: number, base: string, nIn: number, rank: number): Float32Array {
  const rng = new Rng(deriveSeed(seed, `${base}.lora_a`));
  const bound = 1 / Math.sqrt(nIn);
  const a = new Float32Array(nIn * rank);
  for (let i = 0; i < a.length; i++) a[i] = (rng.float() * 2 - 1) * bound;
  return a;
}

/**
 * Writes the trained adapter to a temp file beside `path`, fsyncs it, renames it onto
 * `path`. The tensors (from the trainer) must be exactly the plan's A and B tensors.
 */
export async function saveAdapter(path: string, modelPath: string, plan: AdapterPlan,
  tensors: AdapterTensor[], meta: TrainingMetadata): Promise<void> {
  v.nonEmptyString(path, 'path');
  v.nonEmptyString(modelPath, 'modelPath');
  const file = await readModel(modelPath);
  const model = modelInfo(modelPath, file);
  checkPlan(plan, model);
  const byName = checkTensors(plan, tensors);
  const training = checkTrainingMetadata(meta);
  const name = meta.name ?? basename(path, extname(path));
  const metadata: GgufKeyValue[] = [
    ...await adapterMetadata(modelPath, file, model, plan),
    { key: 'general.name', type: GgufValueType.STRING, value: name },
    ...planMetadata(plan),
    ...training,
  ];
  const specs: GgufTensorSpec[] = [];
  for (const t of plan.tensors) {
    for (const suffix of ['lora_a', 'lora_b']) {
      const tensor = byName.get(`${t.base}.${suffix}`)!;
      specs.push({ name: tensor.name, dims: tensor.ne, type: GgmlType.F32, data: bytesOf(tensor.data) });
    }
  }
  await writeAtomically(path, metadata, specs);
}

/**
 * Checks an adapter to resume training from: a LoRA adapter for this base model (by
 * its recorded fingerprint), F32 A/B pairs for trainable matrices of every layer with
 * one rank; returns its plan and the steps it was trained for (0 if it does not say).
 */
export async function planFromAdapter(path: string, modelPath: string): Promise<AdapterPlan & { steps: number; history: TrainingHistory }> {
  v.nonEmptyString(path, 'path');
  v.nonEmptyString(modelPath, 'modelPath');
  const refuse = (why: string) => new UnderstudyError('INVALID_ADAPTER', `cannot resume training from the LoRA adapter ${path}: ${why}`);
  let adapter: GgufFile;
  try {
    adapter = await readGguf(path);
  } catch (err) {
    throw readFailure(err, `the LoRA adapter ${path}`, 'INVALID_ADAPTER');
  }
  const file = await readModel(modelPath);
  const model = modelInfo(modelPath, file);

  const text = (key: string) => {
    const e = adapter.metadata.get(key);
    return e?.type === GgufValueType.STRING ? (e.value as string) : undefined;
  };
  if (text('general.type') !== 'adapter') throw refuse(`it is not an adapter (general.type is ${v.showValue(text('general.type'))}, expected "adapter")`);
  if (text('adapter.type') !== 'lora') throw refuse(`it is not a LoRA adapter (adapter.type is ${v.showValue(text('adapter.type'))}, expected "lora")`);
  if (text('general.architecture') !== model.arch) {
    throw refuse(`it was made for the architecture ${v.showValue(text('general.architecture'))}, and this model is ${JSON.stringify(model.arch)}`);
  }
  const verdict = judgeBase(adapter, await modelFingerprint(modelPath, file));
  if (verdict.kind === 'mismatch') throw refuse(`it does not fit this model: ${verdict.reason}`);

  // A/B pairs by base matrix, in file order.
  const pairs = new Map<string, { a?: GgufTensorInfo; b?: GgufTensorInfo }>();
  for (const t of adapter.tensors) {
    const m = /^(.*)\.lora_([ab])$/.exec(t.name);
    if (!m) throw refuse(`its tensor ${v.showValue(t.name)} is not a LoRA A or B tensor (<base>.lora_a or <base>.lora_b)`);
    if (t.type !== GgmlType.F32) throw refuse(`its tensor ${v.showValue(t.name)} is ${ggmlTypeName(t.type)}; training needs F32 adapter tensors`);
    const pair = pairs.get(m[1]) ?? {};
    pair[m[2] as 'a' | 'b'] = t;
    pairs.set(m[1], pair);
  }
  if (pairs.size === 0) throw refuse('it has no LoRA tensors');

  let rank = 0;
  const targets: string[] = [];
  for (const [base, { a, b }] of pairs) {
    if (!a || !b) throw refuse(`${v.showValue(`${base}.lora_${a ? 'a' : 'b'}`)} has no matching ${a ? '.lora_b' : '.lora_a'} tensor`);
    const m = /^blk\.\d+\.(.+)\.weight$/.exec(base);
    if (!m) throw refuse(`it adapts ${v.showValue(base)}, which is not a per-layer weight blk.N.<target>.weight; training adapts ${list(TRAINABLE)}`);
    const stem = m[1];
    if (NO_GRADIENT.includes(stem)) {
      throw new UnderstudyError('TRAINING_UNSUPPORTED', `cannot resume training from the LoRA adapter ${path}: it adapts ${stem}, and ${NO_GRADIENT_REASON}`);
    }
    if (!TRAINABLE.includes(stem)) throw refuse(`it adapts ${v.showValue(base)}; training adapts only ${list(TRAINABLE)}`);
    const w = model.tensors.get(base);
    if (!w || w.dims.length !== 2) throw refuse(`it adapts ${v.showValue(base)}, which this model has no 2-D weight of that name for`);
    const [nIn, nOut] = w.dims;
    const r = a.dims[1];
    if (a.dims.length !== 2 || b.dims.length !== 2 || !(r >= 1) || a.dims[0] !== nIn || b.dims[0] !== r || b.dims[1] !== nOut) {
      throw refuse(`the shapes of ${base}.lora_a [${a.dims.join(', ')}] and .lora_b [${b.dims.join(', ')}] do not fit the base weight `
        + `[${nIn}, ${nOut}]: they must be [${nIn}, rank] and [rank, ${nOut}]`);
    }
    if (rank === 0) rank = r;
    else if (r !== rank) throw refuse(`its tensors do not all have one rank: ${base} has rank ${r}, the tensors before it rank ${rank}`);
    if (r > Math.min(nIn, nOut)) throw refuse(`its rank ${r} is larger than the smaller side of ${base} (${nIn} × ${nOut})`);
    if (!targets.includes(stem)) targets.push(stem);
  }

  // llama.cpp scales by alpha / rank, or by 1 when alpha is 0 or absent: the same as alpha = rank.
  let alpha = rank;
  const alphaEntry = adapter.metadata.get('adapter.lora.alpha');
  if (alphaEntry) {
    const value = alphaEntry.value;
    if (alphaEntry.type !== GgufValueType.FLOAT32) {
      throw refuse(`its adapter.lora.alpha is ${GgufValueType[alphaEntry.type] ?? alphaEntry.type}, not FLOAT32 (llama.cpp cannot read it)`);
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw refuse(`its adapter.lora.alpha ${v.showValue(value)} is not a finite number ≥ 0`);
    if (value > 0) alpha = value;
  }

  let plan: AdapterPlan;
  try {
    plan = makePlan(model, rank, alpha, targets);
  } catch (err) {
    if (!(err instanceof UnderstudyError)) throw err;
    throw refuse(err.message);
  }
  for (const t of plan.tensors) {
    if (!pairs.has(t.base)) throw refuse(`it adapts ${t.base.replace(/^blk\.\d+\.|\.weight$/g, '')} but not ${t.base}; training adapts each target in every layer`);
  }

  let steps = 0;
  const stepsEntry = adapter.metadata.get(KEY.steps);
  if (stepsEntry) {
    if (stepsEntry.type !== GgufValueType.UINT32) throw refuse(`its ${KEY.steps} is ${GgufValueType[stepsEntry.type] ?? stepsEntry.type}, not UINT32`);
    steps = stepsEntry.value as number;
  }
  return { ...plan, steps, history: trainingHistory(adapter, steps) };
}

/** What an adapter file says it was trained on, so that training it further adds to it. */
export interface TrainingHistory {
  steps: number;
  epochs: number;
  trainLoss: number[];
  evalLoss: number[];
  tokens: number;
}

// Read leniently: an adapter from elsewhere may lack these keys (then they count from 0).
function trainingHistory(adapter: GgufFile, steps: number): TrainingHistory {
  const scalar = (key: string): number => {
    const e = adapter.metadata.get(key);
    return e && (typeof e.value === 'number' || typeof e.value === 'bigint') ? Number(e.value) : 0;
  };
  const losses = (key: string): number[] => {
    const e = adapter.metadata.get(key);
    const items = e?.type === GgufValueType.ARRAY ? (e.value as { itemType: number; items: ArrayLike<number> }) : undefined;
    return items?.itemType === GgufValueType.FLOAT32 ? Array.from(items.items) : [];
  };
  return { steps, epochs: scalar(KEY.epochs), trainLoss: losses(KEY.trainLoss), evalLoss: losses(KEY.evalLoss), tokens: scalar(KEY.tokens) };
}

/** The trainer's tensors must be exactly the plan's, each once, with the plan's shapes. */
function checkTensors(plan: AdapterPlan, tensors: unknown): Map<string, AdapterTensor> {
  if (!Array.isArray(tensors)) v.fail('array of adapter tensors', 'tensors', tensors);
  const wanted = new Map<string, number[]>();
  for (const t of plan.tensors) {
    wanted.set(`${t.base}.lora_a`, [t.nIn, plan.rank]);
    wanted.set(`${t.base}.lora_b`, [plan.rank, t.nOut]);
  }
  const byName = new Map<string, AdapterTensor>();
  for (let i = 0; i < tensors.length; i++) {
    const t: unknown = tensors[i];
    if (!v.isPlainObject(t) || typeof t.name !== 'string') v.fail('{ name, ne, data } object', `tensors[${i}]`, t);
    const ne = wanted.get(t.name);
    if (!ne) throw invalid(`tensors[${i}] is ${v.showValue(t.name)}, which the adapter plan does not have`);
    if (byName.has(t.name)) throw invalid(`tensors has ${t.name} twice`);
    const given = t.ne;
    if (!Array.isArray(given) || given.length !== 2 || given[0] !== ne[0] || given[1] !== ne[1]) {
      throw invalid(`Expected ne [${ne.join(', ')}] for ${t.name} but received ${Array.isArray(given) ? `[${given.map(v.showValue).join(', ')}]` : v.describeValue(given)}`);
    }
    const data = t.data;
    if (!(data instanceof Float32Array) || data.length !== ne[0] * ne[1]) {
      v.fail(`Float32Array of ${ne[0] * ne[1]} elements`, `the data of ${t.name}`, data);
    }
    // A diverged run must not leave an adapter that turns every output into garbage.
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw invalid(`the data of ${t.name} has the non-finite value ${data[bad]} at index ${bad}: the adapter is not saved`);
    byName.set(t.name, { name: t.name, ne: [ne[0], ne[1]], data });
  }
  const missing = [...wanted.keys()].filter((name) => !byName.has(name));
  if (missing.length > 0) throw invalid(`tensors lacks ${missing.length} of the plan's tensors: ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', ...' : ''}`);
  return byName;
}

function checkTrainingMetadata(meta: unknown): GgufKeyValue[] {
  if (!v.isPlainObject(meta)) v.fail('training metadata object', 'meta', meta);
  const count = (name: 'steps' | 'epochs') => {
    const value = meta[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_U32) v.fail(`integer between 0 and ${MAX_U32}`, `meta.${name}`, value);
    return value;
  };
  const losses = (name: 'trainLoss' | 'evalLoss') => {
    const value = meta[name];
    // NaN is allowed: the loss of an epoch that counted no tokens.
    if (!Array.isArray(value) || value.some((x) => typeof x !== 'number')) v.fail('array of numbers', `meta.${name}`, value);
    return Float32Array.from(value as number[]);
  };
  const tokens = meta.tokens;
  if (typeof tokens !== 'number' || !Number.isSafeInteger(tokens) || tokens < 0) v.fail('non-negative integer', 'meta.tokens', tokens);
  if (meta.name !== undefined) v.nonEmptyString(meta.name, 'meta.name');
  return [
    { key: KEY.steps, type: GgufValueType.UINT32, value: count('steps') },
    { key: KEY.epochs, type: GgufValueType.UINT32, value: count('epochs') },
    { key: KEY.trainLoss, type: GgufValueType.ARRAY, value: { itemType: GgufValueType.FLOAT32, items: losses('trainLoss') } },
    { key: KEY.evalLoss, type: GgufValueType.ARRAY, value: { itemType: GgufValueType.FLOAT32, items: losses('evalLoss') } },
    { key: KEY.tokens, type: GgufValueType.UINT64, value: BigInt(tokens) },
  ];
}

async function adapterMetadata(modelPath: string, file: GgufFile, model: ModelInfo, plan: AdapterPlan): Promise<GgufKeyValue[]> {
  return [
    { key: 'general.architecture', type: GgufValueType.STRING, value: model.arch },
    { key: 'general.type', type: GgufValueType.STRING, value: 'adapter' },
    { key: 'adapter.type', type: GgufValueType.STRING, value: 'lora' },
    { key: 'adapter.lora.alpha', type: GgufValueType.FLOAT32, value: plan.alpha },
    ...baseMetadata(await modelFingerprint(modelPath, file)),
  ];
}

function planMetadata(plan: AdapterPlan): GgufKeyValue[] {
  return [
    { key: KEY.rank, type: GgufValueType.UINT32, value: plan.rank },
    { key: KEY.targets, type: GgufValueType.ARRAY, value: { itemType: GgufValueType.STRING, items: [...plan.targets] } },
  ];
}

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * Writes to a uniquely named temp file in the target's directory, fsyncs it and
 * renames it onto `path`, so a crash or a failure never leaves a half-written adapter
 * (or a temp file, but for a crash) behind.
 */
async function writeAtomically(path: string, metadata: GgufKeyValue[], tensors: GgufTensorSpec[]): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path).slice(0, 100)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeGguf(tmp, { metadata, tensors });
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw new UnderstudyError('IO_ERROR', `cannot write the LoRA adapter ${path}: ${v.errorText(err)}`, { cause: err });
  }
  // The rename is durable once the directory is; some systems cannot sync a directory.
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // best effort
  }
}
