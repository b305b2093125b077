// Checks a model path before llama.cpp sees it, so the common mistakes (a wrong
// path, a directory, a file that is not GGUF, a cut-off download) get a precise
// error instead of a generic load failure.
import { open, stat } from 'node:fs/promises';
import { UnderstudyError } from '../errors.js';

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
  return { size: info.size };
}
