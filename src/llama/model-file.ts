// Checks a model path before llama.cpp sees it, so the common mistakes (a wrong
// path, a directory, a file that is not GGUF, a cut-off download) get a precise
// error instead of a generic load failure, and the corruptions that would make
// llama.cpp abort the process (see src/gguf/*-checks.ts) are refused with
// INVALID_MODEL_FILE.
import { open, stat } from 'node:fs/promises';
import { UnderstudyError } from '../errors.js';
import { GgufError } from '../gguf/format.js';
import { checkHyperparameters } from '../gguf/hparams-checks.js';
import { readGguf, type GgufFile } from '../gguf/reader.js';
import { checkTensors } from '../gguf/tensor-checks.js';
import { checkVocabulary } from '../gguf/vocab-checks.js';

export async function checkModelFile(path: string, what = 'model'): Promise<{ size: number }> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new UnderstudyError('MODEL_NOT_FOUND', `${what} file not found: ${path}`);
    }
    throw new UnderstudyError('MODEL_NOT_FOUND', `cannot read ${what} file ${path}: ${(err as Error).message}`);
  }
  if (!info.isFile()) throw new UnderstudyError('MODEL_NOT_FOUND', `${what} path is not a file: ${path}`);
  const head = Buffer.alloc(16);
  const fh = await open(path, 'r').catch((err: Error) => {
    throw new UnderstudyError('MODEL_NOT_FOUND', `cannot open ${what} file ${path}: ${err.message}`);
  });
  try {
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead < 4 || head.toString('latin1', 0, 4) !== 'GGUF') {
      throw new UnderstudyError('INVALID_MODEL_FILE',
        `not a GGUF ${what} file: ${path} (it starts with ${JSON.stringify(head.subarray(0, bytesRead).toString('latin1'))}, expected "GGUF")`);
    }
  } finally {
    await fh.close();
  }
  await checkContents(path, what);
  return { size: info.size };
}

/**
 * Reads the header (metadata and tensor index, never the tensor data) and runs
 * the checks. A header our reader cannot parse is left to llama.cpp, whose
 * GGUF parser refuses malformed files by itself and names the problem its way;
 * only the classes that make llama.cpp abort need refusing here.
 */
async function checkContents(path: string, what: string): Promise<void> {
  let file: GgufFile;
  try {
    file = await readGguf(path);
  } catch (err) {
    if (err instanceof GgufError) return;
    throw new UnderstudyError('MODEL_NOT_FOUND', `cannot read ${what} file ${path}: ${(err as Error).message}`);
  }
  try {
    if (what === 'model') {
      checkVocabulary(file);
      // Hyperparameters and tensors matter only to a model that has weights; a
      // vocabulary-only file (no tensors) can only be loaded with vocabOnly.
      if (file.tensors.length > 0) checkHyperparameters(file);
    }
    checkTensors(file);
  } catch (err) {
    if (err instanceof GgufError) throw new UnderstudyError('INVALID_MODEL_FILE', `invalid ${what} file ${path}: ${err.message}`);
    throw err;
  }
}
