// Typed reads of GGUF metadata as llama.cpp's model loader reads it
// (llama-model-loader.cpp, GGUFMeta): a scalar key counts only with the exact
// type llama.cpp asks for (any other type makes llama.cpp refuse the file with
// an exception, which is safe), and per-layer arrays may be INT32 or UINT32.
import { GgufError, GgufValueType, type GgufArray } from './format.js';
import type { GgufFile } from './reader.js';

export const invalidModel = (message: string) => new GgufError('INVALID_MODEL_FILE', message);

function entry(file: GgufFile, key: string, type: GgufValueType) {
  const e = file.metadata.get(key);
  return e?.type === type ? e.value : undefined;
}

export function u32(file: GgufFile, key: string): number | undefined {
  return entry(file, key, GgufValueType.UINT32) as number | undefined;
}

export function float32(file: GgufFile, key: string): number | undefined {
  return entry(file, key, GgufValueType.FLOAT32) as number | undefined;
}

export function string(file: GgufFile, key: string): string | undefined {
  return entry(file, key, GgufValueType.STRING) as string | undefined;
}

export function bool(file: GgufFile, key: string): boolean | undefined {
  return entry(file, key, GgufValueType.BOOL) as boolean | undefined;
}

export function array(file: GgufFile, key: string, ...itemTypes: GgufValueType[]): GgufArray | undefined {
  const value = entry(file, key, GgufValueType.ARRAY) as GgufArray | undefined;
  return value && itemTypes.includes(value.itemType) ? value : undefined;
}

/**
 * A per-layer value (llama.cpp's get_key_or_arr): one UINT32 for every layer, or
 * an INT32/UINT32 array of one value per layer (read as uint32, as llama.cpp
 * does). Undefined when absent or of a shape llama.cpp refuses by itself.
 */
export function perLayer(file: GgufFile, key: string, layers: number): number[] | undefined {
  const one = u32(file, key);
  if (one !== undefined) return new Array<number>(layers).fill(one);
  const list = array(file, key, GgufValueType.INT32, GgufValueType.UINT32);
  if (list === undefined || list.items.length !== layers) return undefined;
  return Array.from(list.items as ArrayLike<number>, (v) => v >>> 0);
}
