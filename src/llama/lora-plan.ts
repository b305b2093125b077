// Adapter plans: which base matrices a LoRA adapter adapts, and its rank and alpha,
// checked against the model's GGUF header (only the header is read), so that a plan
// can never produce an adapter llama.cpp refuses, or training that cannot work.
//
// Targets are stems of per-layer weights: "attn_q" means blk.N.attn_q.weight in every
// layer. attn_k and attn_v are refused (TRAINING_UNSUPPORTED): at this llama.cpp
// version attention reads K and V back from the cache, a leaf for the backward pass,
// so their adapters get exactly zero gradient (../shared/TRAINING-NOTES.md).
import { UnderstudyError } from '../errors.js';
import { GgufError, type GgufTensorInfo } from '../gguf/format.js';
import { readGguf, type GgufFile } from '../gguf/reader.js';
import * as v from '../validate.js';

export const DEFAULT_TARGETS = ['attn_q', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'];

/** Per-layer matrices whose LoRA trains at this llama.cpp version. */
export const TRAINABLE: readonly string[] = ['attn_q', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'];
/** Per-layer matrices a LoRA could adapt but that get no gradient (see TRAINING-NOTES.md). */
export const NO_GRADIENT: readonly string[] = ['attn_k', 'attn_v'];
export const NO_GRADIENT_REASON = 'attn_k and attn_v get no gradient at this llama.cpp version: attention reads K and V back from the cache';

export interface AdapterPlan {
  rank: number;
  alpha: number;
  targets: string[];
  /** One per adapted base matrix: layer by layer, in the order of `targets`. */
  tensors: Array<{ base: string; nIn: number; nOut: number }>;
}

const invalid = (message: string) => new UnderstudyError('INVALID_ARGUMENT', message);
export const list = (items: readonly string[]) => (items.length > 0 ? items.join(', ') : 'none');

/**
 * Reads the model file's header; checks the targets (known stems, present and 2-D in
 * every layer; attn_k/attn_v are TRAINING_UNSUPPORTED), the rank (1 up to the smaller
 * side of the smallest adapted matrix) and alpha (finite, > 0).
 */
export async function planAdapter(modelPath: string, o: { rank: number; alpha: number; targets: string[] }): Promise<AdapterPlan> {
  v.nonEmptyString(modelPath, 'modelPath');
  if (!v.isPlainObject(o)) v.fail('object', 'options', o);
  checkRankAndAlpha(o.rank, o.alpha);
  const targets = checkTargetList(o.targets);
  const model = modelInfo(modelPath, await readModel(modelPath));
  return makePlan(model, o.rank, o.alpha, targets);
}

/** What a plan needs of the model's header. */
export interface ModelInfo {
  path: string;
  arch: string;
  layers: number;
  tensors: Map<string, GgufTensorInfo>;
}

export async function readModel(path: string): Promise<GgufFile> {
  try {
    return await readGguf(path);
  } catch (err) {
    throw readFailure(err, `the model ${path}`, 'INVALID_MODEL_FILE');
  }
}

/** A GGUF format fault gets `formatCode`, anything the file system says IO_ERROR. */
export function readFailure(err: unknown, what: string, formatCode: 'INVALID_ADAPTER' | 'INVALID_MODEL_FILE'): UnderstudyError {
  if (err instanceof GgufError) {
    // The reader quotes a bad magic's bytes: say no more of the file than that it is not GGUF.
    const why = /^not a GGUF file/.test(err.message) ? 'it is not a GGUF file' : err.message;
    return new UnderstudyError(formatCode, `${what} cannot be read: ${why}`, { cause: err });
  }
  return new UnderstudyError('IO_ERROR', `${what} cannot be read: ${v.errorText(err)}`, { cause: err });
}

export function modelInfo(path: string, file: GgufFile): ModelInfo {
  const arch = file.metadata.get('general.architecture')?.value;
  if (typeof arch !== 'string') throw new UnderstudyError('INVALID_MODEL_FILE', `the model ${path} has no general.architecture`);
  const tensors = new Map(file.tensors.map((t) => [t.name, t]));
  const count = file.metadata.get(`${arch}.block_count`)?.value;
  let layers = typeof count === 'number' ? count : 0;
  if (typeof count !== 'number') {
    for (const t of file.tensors) {
      const m = /^blk\.(\d+)\./.exec(t.name);
      if (m) layers = Math.max(layers, Number(m[1]) + 1);
    }
  }
  return { path, arch, layers, tensors };
}

/** Trainable stems that are 2-D weights in every layer of the model. */
function trainableIn(model: ModelInfo): string[] {
  return TRAINABLE.filter((stem) => model.layers > 0
    && Array.from({ length: model.layers }, (_, l) => model.tensors.get(`blk.${l}.${stem}.weight`)).every((t) => t?.dims.length === 2));
}

function checkRankAndAlpha(rank: unknown, alpha: unknown): void {
  if (typeof rank !== 'number' || !Number.isSafeInteger(rank) || rank < 1) v.fail('positive integer', 'rank', rank);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) v.fail('positive finite number', 'alpha', alpha);
}

/** The target list's own faults, before the model is looked at. */
function checkTargetList(value: unknown): string[] {
  if (!Array.isArray(value)) v.fail('array of tensor stems', 'targets', value);
  const targets: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const s: unknown = value[i];
    if (typeof s !== 'string' || s.length === 0) v.fail('non-empty string', `targets[${i}]`, s);
    if (targets.includes(s)) throw invalid(`targets names ${JSON.stringify(s)} twice`);
    targets.push(s);
  }
  if (targets.length === 0) throw invalid(`targets is empty: name at least one tensor stem (the default targets are ${list(DEFAULT_TARGETS)})`);
  return targets;
}

/** The plan for checked rank, alpha and target list (INVALID_ARGUMENT / TRAINING_UNSUPPORTED). */
export function makePlan(model: ModelInfo, rank: number, alpha: number, targets: string[]): AdapterPlan {
  const has = trainableIn(model);
  for (const stem of targets) {
    if (NO_GRADIENT.includes(stem)) throw new UnderstudyError('TRAINING_UNSUPPORTED', `cannot train the target ${stem}: ${NO_GRADIENT_REASON}`);
    if (!TRAINABLE.includes(stem)) {
      throw invalid(`unknown target ${v.showValue(stem)}: targets are the stems of per-layer weights blk.N.<target>.weight that training can adapt, `
        + `${list(TRAINABLE)}; the model ${model.path} has ${list(has)}`);
    }
    if (!has.includes(stem)) {
      const layer = Array.from({ length: model.layers }, (_, l) => l).find((l) => model.tensors.get(`blk.${l}.${stem}.weight`)?.dims.length !== 2) ?? 0;
      throw invalid(`the model ${model.path} has no 2-D weight blk.${layer}.${stem}.weight for the target ${stem}; it has ${list(has)} in every layer`);
    }
  }
  const tensors: AdapterPlan['tensors'] = [];
  for (let l = 0; l < model.layers; l++) {
    for (const stem of targets) {
      const base = `blk.${l}.${stem}.weight`;
      const [nIn, nOut] = model.tensors.get(base)!.dims;
      tensors.push({ base, nIn, nOut });
    }
  }
  const smallest = tensors.reduce((s, t) => (Math.min(t.nIn, t.nOut) < Math.min(s.nIn, s.nOut) ? t : s));
  const max = Math.min(smallest.nIn, smallest.nOut);
  if (rank > max) {
    throw invalid(`Expected integer between 1 and ${max} for rank but received ${rank} of type number: `
      + `the smallest adapted matrix, ${smallest.base}, is ${smallest.nIn} × ${smallest.nOut}`);
  }
  return { rank, alpha, targets, tensors };
}

/** A plan passed back in must be the one this model gives for its rank, alpha and targets. */
export function checkPlan(plan: unknown, model: ModelInfo): asserts plan is AdapterPlan {
  if (!v.isPlainObject(plan)) v.fail('adapter plan object', 'plan', plan);
  checkRankAndAlpha(plan.rank, plan.alpha);
  const expected = makePlan(model, plan.rank as number, plan.alpha as number, checkTargetList(plan.targets));
  const given = plan.tensors;
  const same = Array.isArray(given) && given.length === expected.tensors.length
    && expected.tensors.every((t, i) => v.isPlainObject(given[i]) && given[i].base === t.base && given[i].nIn === t.nIn && given[i].nOut === t.nOut);
  if (!same) throw invalid(`the adapter plan's tensors are not those of its targets in the model ${model.path}: make the plan with planAdapter() or planFromAdapter()`);
}
