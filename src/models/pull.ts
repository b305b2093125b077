// `understudy pull` as a function: fetch a GGUF file into the models directory
// under its short name. The bytes go to NAME.gguf.part until they are complete,
// match the sha256 the source or the caller vouches for, and start like a GGUF
// file; only then is the part renamed into place and the manifest updated.
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { UnderstudyError } from '../errors.js';
import { fail } from '../validate.js';
import { discard, download, type DownloadProgress } from './download.js';
import { isModelName, modelFile, modelsDir, readManifest, recordModel } from './models-dir.js';
import { parseSource } from './model-source.js';

export interface PullOptions {
  /** Short name (default: the file name without .gguf). */
  name?: string;
  /** The sha256 the file must have (64 hex digits). */
  sha256?: string;
  /** Models directory (default: UNDERSTUDY_MODELS_DIR or the user's cache). */
  dir?: string;
  /** Environment read for the directory, UNDERSTUDY_HF_ENDPOINT and HF_TOKEN (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** No bytes for this long fails the try, keeping the part (default 30000). */
  stallMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
}

export interface PullResult {
  name: string;
  path: string;
  size: number;
  sha256: string;
  /** What the sha256 was checked against: '--sha256', 'x-linked-etag', 'etag', or undefined (nothing to check). */
  verifiedBy?: string;
  source: string;
  resumedFrom: number;
  /** The model was already there from the same source: nothing was downloaded. */
  alreadyPresent: boolean;
}

export async function pullModel(spec: string, options: PullOptions = {}): Promise<PullResult> {
  const env = options.env ?? process.env;
  const source = parseSource(spec, env);
  const name = options.name ?? source.fileName.replace(/\.gguf$/i, '');
  if (!isModelName(name)) {
    fail('a model name (letters, digits, ".", "_" and "-", without .gguf)',
      options.name === undefined ? `the name taken from ${source.display} (choose one with --name)` : 'name', name);
  }
  const wanted = options.sha256?.trim().toLowerCase();
  if (wanted !== undefined && !/^[0-9a-f]{64}$/.test(wanted)) fail('64 hexadecimal digits', 'sha256', options.sha256);
  const dir = options.dir ?? modelsDir(env);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new UnderstudyError('IO_ERROR', `cannot make the models directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const path = modelFile(dir, name);
  const present = readManifest(dir)[name];
  if (await exists(path)) {
    if (present?.source === source.display && (!wanted || present.sha256 === wanted)) {
      return { name, path, size: present.size, sha256: present.sha256 ?? '', source: source.display, resumedFrom: 0, alreadyPresent: true };
    }
    throw new UnderstudyError('INVALID_ARGUMENT', `a model named "${name}" is already in ${dir}` +
      `${present?.source ? ` (from ${present.source})` : ''}: choose another name with --name, or delete ${path}`);
  }
  const part = `${path}.part`;
  const got = await download({
    url: source.url, part, ...(source.token ? { token: source.token } : {}),
    ...(options.stallMs !== undefined ? { stallMs: options.stallMs } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const actual = await sha256Of(part);
  const checks: [string, string][] = [];
  if (wanted) checks.push([wanted, '--sha256']);
  if (got.sha256) checks.push([got.sha256, `the server's ${got.sha256From}`]);
  for (const [expected, from] of checks) {
    if (expected !== actual) {
      await discard(part);
      throw new UnderstudyError('MODEL_HASH_MISMATCH', `sha256 of ${basename(path)} from ${source.display} is ${actual}, ` +
        `but ${from} says ${expected}; the download was deleted`);
    }
  }
  const head = await firstBytes(part, 4);
  if (head !== 'GGUF') {
    await discard(part);
    throw new UnderstudyError('INVALID_MODEL_FILE', `not a GGUF file: ${source.display} starts with ${JSON.stringify(head)}, ` +
      'expected "GGUF"; the download was deleted');
  }
  await rename(part, path);
  await rm(`${part}.json`, { force: true });
  recordModel(dir, name, { file: basename(path), size: got.size, sha256: actual, source: source.display, pulledAt: new Date().toISOString() });
  return {
    name, path, size: got.size, sha256: actual, source: source.display, resumedFrom: got.resumedFrom, alreadyPresent: false,
    ...(checks.length ? { verifiedBy: checks.map((c) => c[1].replace("the server's ", '')).join(', ') } : {}),
  };
}

function sha256Of(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path).on('data', (chunk) => hash.update(chunk)).on('error', reject).on('end', () => resolve(hash.digest('hex')));
  });
}

async function firstBytes(path: string, n: number): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.toString('latin1', 0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await open(path, 'r').then((fh) => fh.close());
    return true;
  } catch {
    return false;
  }
}
