// Which base model an adapter history belongs to. Adapters are trained for one
// model; the registry keeps each model's history apart under this key, so a
// router pointed at another model file never applies (or rolls back to) an
// adapter made for a different one. The key comes from the model's content (the
// fingerprint loadLora checks adapters against: shapes, vocabulary, small
// weights), not its path: a model moved or copied keeps its adapters, and a
// different model at the same path gets none of the old ones.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UnderstudyError } from '../errors.js';
import { GgufError } from '../gguf/format.js';
import { readGguf } from '../gguf/reader.js';
import { modelFingerprint } from '../llama/lora-base.js';
import * as v from '../validate.js';

export interface BaseModelKey {
  /** 16 hex digits. */
  key: string;
  /** The model's general.name, when it has one. */
  name: string | null;
}

export async function baseModelKey(path: string): Promise<BaseModelKey> {
  const file = resolve(v.nonEmptyString(path, 'path'));
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new UnderstudyError('MODEL_NOT_FOUND', `model path is not a file: ${file}`);
    const fingerprint = await modelFingerprint(file, await readGguf(file));
    const key = createHash('sha256').update(JSON.stringify(fingerprint)).digest('hex').slice(0, 16);
    return { key, name: fingerprint.name };
  } catch (err) {
    if (err instanceof UnderstudyError) throw err;
    if (err instanceof GgufError) throw new UnderstudyError('INVALID_MODEL_FILE', `invalid model file ${file}: ${err.message}`, { cause: err });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UnderstudyError('MODEL_NOT_FOUND', `model file not found: ${file}`, { cause: err });
    throw new UnderstudyError('MODEL_NOT_FOUND', `cannot read model file ${file}: ${v.errorText(err)}`, { cause: err });
  }
}
