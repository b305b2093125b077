// The models directory that `understudy pull` fills and a short name is looked
// up in: NAME.gguf files, plus a small manifest (models.json) that remembers
// where each came from and its sha256. The manifest is only a record: a .gguf
// file dropped in by hand still counts, and an entry whose file is gone does not.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const MANIFEST = 'models.json';

export interface ManifestEntry {
  /** The file's name inside the models directory (NAME.gguf). */
  file: string;
  size: number;
  sha256?: string;
  /** The URL it was pulled from (never with a query string or a token). */
  source?: string;
  /** ISO time the pull completed. */
  pulledAt?: string;
}

export interface ModelListing extends ManifestEntry {
  name: string;
  path: string;
}

/** UNDERSTUDY_MODELS_DIR, else the user's cache: $XDG_CACHE_HOME/understudy/models or ~/.cache/understudy/models. */
export function modelsDir(env: NodeJS.ProcessEnv = process.env): string {
  const own = env.UNDERSTUDY_MODELS_DIR?.trim();
  if (own) return resolve(own);
  const cache = env.XDG_CACHE_HOME?.trim();
  // XDG: a relative XDG_CACHE_HOME is invalid and is to be ignored.
  const base = cache && cache.startsWith('/') ? cache : join(env.HOME?.trim() || homedir(), '.cache');
  return join(base, 'understudy', 'models');
}

/** A short name: what `--model NAME` and `understudy models` show; the file is NAME.gguf. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function isModelName(name: string): boolean {
  return NAME_PATTERN.test(name) && !/\.gguf$/i.test(name);
}

export function modelFile(dir: string, name: string): string {
  return join(dir, `${name}.gguf`);
}

/** The manifest's entries; an unreadable or malformed manifest counts as empty (it is only a record). */
export function readManifest(dir: string): Record<string, ManifestEntry> {
  let text: string;
  try {
    text = readFileSync(join(dir, MANIFEST), 'utf8');
  } catch {
    return {};
  }
  try {
    const parsed = JSON.parse(text) as { models?: unknown };
    const models = parsed?.models;
    if (!models || typeof models !== 'object' || Array.isArray(models)) return {};
    const out: Record<string, ManifestEntry> = {};
    for (const [name, e] of Object.entries(models as Record<string, unknown>)) {
      const entry = e as Partial<ManifestEntry>;
      if (isModelName(name) && entry && typeof entry.file === 'string' && typeof entry.size === 'number') out[name] = entry as ManifestEntry;
    }
    return out;
  } catch {
    return {};
  }
}

/** Records (or replaces) one entry. Written to a temporary file and renamed, so a reader never sees half a manifest. */
export function recordModel(dir: string, name: string, entry: ManifestEntry): void {
  const models = { ...readManifest(dir), [name]: entry };
  const path = join(dir, MANIFEST);
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temp, `${JSON.stringify({ version: 1, models }, null, 2)}\n`);
  try {
    renameSync(temp, path);
  } catch (err) {
    try { unlinkSync(temp); } catch { /* already gone */ }
    throw err;
  }
}

/** The path of the model named `name`, or undefined. */
export function findModel(dir: string, name: string): string | undefined {
  if (!isModelName(name)) return undefined;
  const entry = readManifest(dir)[name];
  const path = join(dir, entry?.file ?? `${name}.gguf`);
  return isFile(path) ? path : undefined;
}

/** Every model in the directory: the manifest's entries whose file is there, then any other .gguf file. */
export function listModels(dir: string): ModelListing[] {
  const manifest = readManifest(dir);
  const out: ModelListing[] = [];
  const seen = new Set<string>();
  for (const [name, entry] of Object.entries(manifest)) {
    const path = join(dir, entry.file);
    if (!isFile(path)) continue;
    seen.add(entry.file);
    out.push({ name, path, ...entry, size: statSync(path).size });
  }
  let files: string[] = [];
  try {
    files = readdirSync(dir);
  } catch {
    // No directory yet: nothing pulled.
  }
  for (const file of files) {
    if (!/\.gguf$/i.test(file) || seen.has(file)) continue;
    const path = join(dir, file);
    if (!isFile(path)) continue;
    const stats = statSync(path);
    out.push({ name: file.replace(/\.gguf$/i, ''), path, file, size: stats.size, pulledAt: stats.mtime.toISOString() });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
