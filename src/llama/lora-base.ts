// Which model a LoRA adapter was made for. llama.cpp checks only that the
// adapter's architecture matches and that each adapted tensor has the right
// shape, so an adapter made for another model of the same shape (another
// fine-tune, another quantization of another model) is applied silently and
// gives nonsense. Adapters made by Understudy record their base:
//
//   general.base_model.count / general.base_model.0.name   the GGUF convention
//                               (llama.cpp's convert_lora_to_gguf.py writes these too)
//   understudy.base_model.shapes   hash of the architecture, every tensor's name
//                                  and shape, and the vocabulary's tokens
//   understudy.base_model.weights  hash of the base's 1-D tensors (norms, biases):
//                                  small, kept in F32 by every quantization (so a
//                                  Q4_0 copy of the base still matches), and changed
//                                  by training
//
// loadLora() refuses an adapter whose recorded hashes disagree with the model's,
// and warns when it can only compare names, or nothing at all.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { UnderstudyError } from '../errors.js';
import { GgufValueType, type GgufArray, type GgufKeyValue } from '../gguf/format.js';
import { readGguf, type GgufFile } from '../gguf/reader.js';

export const BASE_KEYS = {
  count: 'general.base_model.count',
  name: (i: number) => `general.base_model.${i}.name`,
  shapes: 'understudy.base_model.shapes',
  weights: 'understudy.base_model.weights',
} as const;

/** Beyond this many bytes of 1-D tensors, the weights are not hashed. */
const MAX_WEIGHT_BYTES = 64 << 20;

export interface ModelFingerprint {
  name: string | null;
  shapes: string;
  /** Null for a model without 1-D tensors (or with very large ones). */
  weights: string | null;
}

function text(file: GgufFile, key: string): string | null {
  const value = file.metadata.get(key)?.value;
  return typeof value === 'string' ? value : null;
}

/** A model's fingerprint from its GGUF header (and one small tensor's bytes). */
export async function modelFingerprint(path: string, file: GgufFile): Promise<ModelFingerprint> {
  const shapes = createHash('sha256');
  shapes.update(`${text(file, 'general.architecture') ?? ''}\n`);
  for (const t of [...file.tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    shapes.update(`${t.name}:${t.dims.join('x')}\n`);
  }
  const tokens = file.metadata.get('tokenizer.ggml.tokens')?.value as GgufArray | undefined;
  if (tokens && typeof tokens === 'object' && 'items' in tokens) {
    for (let i = 0; i < tokens.items.length; i++) shapes.update(`${String(tokens.items[i])}\0`);
  }
  return { name: text(file, 'general.name'), shapes: shapes.digest('hex'), weights: await weightsHash(path, file) };
}

async function weightsHash(path: string, file: GgufFile): Promise<string | null> {
  const tensors = file.tensors.filter((t) => t.dims.length === 1).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const total = tensors.reduce((n, t) => n + t.byteSize, 0);
  if (tensors.length === 0 || tensors.some((t) => t.byteSize <= 0) || total > MAX_WEIGHT_BYTES) return null;
  const hash = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    for (const t of tensors) {
      const bytes = Buffer.alloc(t.byteSize);
      const { bytesRead } = await fh.read(bytes, 0, bytes.length, file.dataOffset + t.offset);
      if (bytesRead !== bytes.length) return null;
      hash.update(`${t.name}\0`).update(bytes);
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/** The metadata an adapter made for the model with `fingerprint` carries (see the top of this file). */
export function baseMetadata(fingerprint: ModelFingerprint): GgufKeyValue[] {
  const out: GgufKeyValue[] = [{ key: BASE_KEYS.count, type: GgufValueType.UINT32, value: 1 }];
  if (fingerprint.name !== null) out.push({ key: BASE_KEYS.name(0), type: GgufValueType.STRING, value: fingerprint.name });
  out.push({ key: BASE_KEYS.shapes, type: GgufValueType.STRING, value: fingerprint.shapes });
  if (fingerprint.weights !== null) out.push({ key: BASE_KEYS.weights, type: GgufValueType.STRING, value: fingerprint.weights });
  return out;
}

export type BaseVerdict =
  | { kind: 'match' }
  | { kind: 'mismatch'; reason: string }
  | { kind: 'unchecked'; reason: string };

// Names are compared loosely: converters differ in case, spacing and punctuation.
const loose = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, '');

/** Compares what the adapter says about its base with the model it is loaded for. */
export function judgeBase(adapter: GgufFile, model: ModelFingerprint): BaseVerdict {
  const count = adapter.metadata.get(BASE_KEYS.count)?.value;
  const names: string[] = [];
  for (let i = 0; typeof count === 'number' && i < Math.min(count, 64); i++) {
    const name = text(adapter, BASE_KEYS.name(i));
    if (name) names.push(name);
  }
  const madeFor = names.length > 0 ? ` (${names.map((n) => JSON.stringify(n)).join(', ')})` : '';
  const shapes = text(adapter, BASE_KEYS.shapes);
  if (shapes !== null) {
    if (shapes !== model.shapes) {
      return { kind: 'mismatch', reason: `it was made for another model${madeFor}: that model's tensors or vocabulary differ from this one's` };
    }
    const weights = text(adapter, BASE_KEYS.weights);
    if (weights !== null && model.weights !== null && weights !== model.weights) {
      return { kind: 'mismatch', reason: `it was made for another model${madeFor} of the same shape: that model's weights differ from this one's` };
    }
    return { kind: 'match' };
  }
  if (names.length === 0) {
    return { kind: 'unchecked', reason: 'it does not say which model it was made for (no general.base_model.* metadata), so it cannot be checked against this model' };
  }
  if (model.name === null) {
    return { kind: 'unchecked', reason: `it was made for ${names.map((n) => JSON.stringify(n)).join(' or ')}, and this model has no name to compare with` };
  }
  if (!names.some((n) => loose(n) === loose(model.name!))) {
    return { kind: 'unchecked', reason: `it was made for ${names.map((n) => JSON.stringify(n)).join(' or ')}, and this model is ${JSON.stringify(model.name)}` };
  }
  return { kind: 'match' };
}

/** The warning type and code loadLora() emits (process.on('warning')) for an adapter it cannot check. */
export const UNCHECKED_WARNING = { type: 'UnderstudyWarning', code: 'UNDERSTUDY_LORA_BASE_UNCHECKED' } as const;

/**
 * Refuses with INVALID_ADAPTER an adapter made for another model, and warns
 * about one it cannot check. `model` gives the model's fingerprint (cached by
 * the caller), or null when its file cannot be read any more.
 */
export async function checkAdapterBase(path: string, model: () => Promise<ModelFingerprint | null>): Promise<void> {
  let adapter: GgufFile;
  try {
    adapter = await readGguf(path);
  } catch (err) {
    throw new UnderstudyError('INVALID_ADAPTER', `the LoRA adapter ${path} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  const fingerprint = await model();
  const verdict: BaseVerdict = fingerprint
    ? judgeBase(adapter, fingerprint)
    : { kind: 'unchecked', reason: "this model's file could not be read to compare with" };
  if (verdict.kind === 'mismatch') {
    throw new UnderstudyError('INVALID_ADAPTER', `the LoRA adapter ${path} does not fit this model: ${verdict.reason}`);
  }
  if (verdict.kind === 'unchecked') process.emitWarning(`the LoRA adapter ${path} was loaded unchecked: ${verdict.reason}`, UNCHECKED_WARNING);
}
