// A model given by its short name: wherever a model path is asked for
// (--model, UNDERSTUDY_MODEL, UNDERSTUDY_EMBEDDING_MODEL), a value that is not
// an existing path and could not be one of a GGUF file (no path separator, no
// .gguf suffix) is looked up among the pulled models.
import { existsSync } from 'node:fs';
import { UnderstudyError } from '../errors.js';
import { findModel, isModelName, modelsDir } from './models-dir.js';

/** Whether `value` reads as a short name rather than a path. */
export function looksLikeName(value: string): boolean {
  return !/[\\/]/.test(value) && !/\.gguf$/i.test(value) && value !== '.' && value !== '..';
}

/**
 * The path `value` stands for: itself when it exists or reads as a path (the
 * loader then names a missing file), else the pulled model of that name.
 * `source` prefixes the error ("UNDERSTUDY_MODEL: ..."). A name found in
 * neither place is MODEL_NOT_FOUND naming both.
 */
export function resolveModel(value: string, env: NodeJS.ProcessEnv = process.env, source?: string): string {
  if (value === '' || existsSync(value) || !looksLikeName(value)) return value;
  const dir = modelsDir(env);
  const found = findModel(dir, value);
  if (found) return found;
  const pulled = isModelName(value) ? `, and no model named "${value}" in ${dir}` : '';
  throw new UnderstudyError('MODEL_NOT_FOUND', `${source ? `${source}: ` : ''}model file not found: ${value} (no such file${pulled}; ` +
    '`understudy models` lists the pulled models, `understudy pull` fetches one)');
}
