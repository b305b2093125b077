// Router configuration: explicit options win over UNDERSTUDY_* environment
// variables, which win over defaults. A bad value stops startup with a message
// that names the option or variable it came from.
import { UnderstudyError } from '../errors.js';
import * as v from '../validate.js';
import { showValue } from '../validate.js';
import { MIN_KEY_LENGTH } from './redact.js';
import { resolveModel } from '../models/resolve-model.js';

export type Device = 'auto' | 'cpu' | 'cuda' | 'hip';

export interface RouterSettings {
  /** Path of the local GGUF model (UNDERSTUDY_MODEL). Without one, everything goes remote. */
  model?: string;
  /** Where the local model runs (UNDERSTUDY_DEVICE, default 'auto'). */
  device?: Device;
  /** Model used to embed prompts and answers (UNDERSTUDY_EMBEDDING_MODEL); default: the local model. */
  embeddingModel?: string;
  /** Caches, dataset and readiness live here (UNDERSTUDY_CACHE_DIR, default './.understudy'). */
  cacheDir?: string;
  /** Readiness a task needs to be served locally (UNDERSTUDY_SIM_THRESHOLD, default 0.72). */
  simThreshold?: number;
  /** Similarity a semantic-cache hit needs (UNDERSTUDY_CACHE_THRESHOLD, default 0.95). */
  cacheThreshold?: number;
  /**
   * Also answer prompts that are similar, not only identical, to cached ones (UNDERSTUDY_SEMANTIC_CACHE,
   * default false). Stays off, with a warning, unless the embedder tells unrelated texts apart.
   */
  semanticCache?: boolean;
  /** Use the remote API at all (UNDERSTUDY_USE_API, default true). False: everything local. */
  useApi?: boolean;
  /** Let the local model be trained on the dataset (UNDERSTUDY_TRAIN_LOCAL, default true). */
  trainLocal?: boolean;
  /** New remote rows since the last training round that start an automatic round (UNDERSTUDY_TRAIN_EVERY, default 32). */
  trainEvery?: number;
  /** OpenAI-compatible base URL (UNDERSTUDY_API_BASE, default https://api.openai.com/v1). */
  apiBase?: string;
  /** Remote model name (UNDERSTUDY_API_MODEL, default 'gpt-4o-mini'). */
  apiModel?: string;
  /** Remote API key (UNDERSTUDY_API_KEY, else OPENAI_API_KEY). Never logged or stored. */
  apiKey?: string;
  /** Default sampling temperature (UNDERSTUDY_TEMPERATURE, default 0). */
  temperature?: number;
  /** Default most tokens per answer (UNDERSTUDY_MAX_TOKENS, default 256). */
  maxTokens?: number;
  /** Default nucleus sampling (UNDERSTUDY_TOP_P, default 1). */
  topP?: number;
  /** Remote timeout per attempt, in seconds (UNDERSTUDY_TIMEOUT, default 60); for a stream, the longest silence between pieces. */
  timeout?: number;
  /** Longest a streamed remote answer may take in all, in seconds (UNDERSTUDY_STREAM_TIMEOUT, default 600). */
  streamTimeout?: number;
  /** CPU threads for the local model (UNDERSTUDY_THREADS); default: shared out so that the generation and embedding contexts do not oversubscribe the machine. */
  threads?: number;
  /** Exact and semantic caches on or off (UNDERSTUDY_ENABLE_CACHE, default true). */
  enableCache?: boolean;
  /** No per-call line on stderr (UNDERSTUDY_QUIET, default false). */
  quiet?: boolean;
  /** Share of remote calls the local model also answers, to measure readiness (UNDERSTUDY_SHADOW_RATE, default 0.2). */
  shadowRate?: number;
  /** Share of local calls the remote also answers, so a task that gets worse goes back (UNDERSTUDY_AUDIT_RATE, default 0.05). */
  auditRate?: number;
  /** Readiness is the mean of the last `readinessWindow` comparisons (default 20)... */
  readinessWindow?: number;
  /** ...and needs at least this many of them (default 5). */
  readinessMin?: number;
  /** Retries after a failed remote attempt (default 3). */
  retries?: number;
  /** First retry delay in ms, doubled each time (default 500); a Retry-After header overrides it. */
  retryDelayMs?: number;
  /** Longest wait for one retry, Retry-After included (default 30000). */
  maxRetryDelayMs?: number;
  /** Consecutive remote calls that failed (after their retries) that start a cooldown (default 3)... */
  cooldownAfter?: number;
  /** ...during which the remote is not tried (default 30000 ms). */
  cooldownMs?: number;
  /** Most exact-cache entries kept; the least recently used go first (default 100000). */
  cacheMaxEntries?: number;
  /** Cache entries expire after this many seconds (default: never). */
  cacheTtl?: number;
  /** Cache sampled (temperature > 0) answers too (default false). */
  cacheSampled?: boolean;
  /** Tokens the local context holds per sequence (default: the model's, at most 4096). */
  contextSize?: number;
  /** Local generations that run at once (default 4). */
  sequences?: number;
  /** Chat template for local models that have none (default 'chatml'). */
  chatTemplate?: string;
}

type Optional = 'model' | 'embeddingModel' | 'apiKey' | 'cacheTtl' | 'contextSize' | 'threads';
export type ResolvedSettings = Required<Omit<RouterSettings, Optional>> & Pick<RouterSettings, Optional>;

type Kind = 'string' | 'boolean' | 'number' | 'unit' | 'count' | 'device' | 'url';

// Each setting: its kind, its environment variable, its default and, for numbers, its range.
const SPEC: Record<keyof RouterSettings, { kind: Kind; env?: string; fallback?: unknown; min?: number; max?: number }> = {
  model: { kind: 'string', env: 'UNDERSTUDY_MODEL' },
  device: { kind: 'device', env: 'UNDERSTUDY_DEVICE', fallback: 'auto' },
  embeddingModel: { kind: 'string', env: 'UNDERSTUDY_EMBEDDING_MODEL' },
  cacheDir: { kind: 'string', env: 'UNDERSTUDY_CACHE_DIR', fallback: './.understudy' },
  simThreshold: { kind: 'unit', env: 'UNDERSTUDY_SIM_THRESHOLD', fallback: 0.72 },
  cacheThreshold: { kind: 'unit', env: 'UNDERSTUDY_CACHE_THRESHOLD', fallback: 0.95 },
  semanticCache: { kind: 'boolean', env: 'UNDERSTUDY_SEMANTIC_CACHE', fallback: false },
  useApi: { kind: 'boolean', env: 'UNDERSTUDY_USE_API', fallback: true },
  trainLocal: { kind: 'boolean', env: 'UNDERSTUDY_TRAIN_LOCAL', fallback: true },
  trainEvery: { kind: 'count', env: 'UNDERSTUDY_TRAIN_EVERY', fallback: 32, min: 1, max: 1_000_000_000 },
  apiBase: { kind: 'url', env: 'UNDERSTUDY_API_BASE', fallback: 'https://api.openai.com/v1' },
  apiModel: { kind: 'string', env: 'UNDERSTUDY_API_MODEL', fallback: 'gpt-4o-mini' },
  apiKey: { kind: 'string', env: 'UNDERSTUDY_API_KEY' },
  temperature: { kind: 'number', env: 'UNDERSTUDY_TEMPERATURE', fallback: 0, min: 0, max: 2 },
  maxTokens: { kind: 'count', env: 'UNDERSTUDY_MAX_TOKENS', fallback: 256, min: 1, max: 1 << 20 },
  topP: { kind: 'unit', env: 'UNDERSTUDY_TOP_P', fallback: 1 },
  timeout: { kind: 'number', env: 'UNDERSTUDY_TIMEOUT', fallback: 60, min: 0.001, max: 86400 },
  streamTimeout: { kind: 'number', env: 'UNDERSTUDY_STREAM_TIMEOUT', fallback: 600, min: 0.001, max: 86400 },
  threads: { kind: 'count', env: 'UNDERSTUDY_THREADS', min: 1, max: 1024 },
  enableCache: { kind: 'boolean', env: 'UNDERSTUDY_ENABLE_CACHE', fallback: true },
  quiet: { kind: 'boolean', env: 'UNDERSTUDY_QUIET', fallback: false },
  shadowRate: { kind: 'unit', env: 'UNDERSTUDY_SHADOW_RATE', fallback: 0.2 },
  auditRate: { kind: 'unit', env: 'UNDERSTUDY_AUDIT_RATE', fallback: 0.05 },
  readinessWindow: { kind: 'count', fallback: 20, min: 1, max: 100000 },
  readinessMin: { kind: 'count', fallback: 5, min: 1, max: 100000 },
  retries: { kind: 'count', fallback: 3, min: 0, max: 100 },
  retryDelayMs: { kind: 'number', fallback: 500, min: 0, max: 3_600_000 },
  maxRetryDelayMs: { kind: 'number', fallback: 30_000, min: 0, max: 3_600_000 },
  cooldownAfter: { kind: 'count', fallback: 3, min: 1, max: 1_000_000 },
  cooldownMs: { kind: 'number', fallback: 30_000, min: 0, max: 86_400_000 },
  cacheMaxEntries: { kind: 'count', fallback: 100_000, min: 1, max: Number.MAX_SAFE_INTEGER },
  cacheTtl: { kind: 'number', min: 0.001, max: Number.MAX_SAFE_INTEGER },
  cacheSampled: { kind: 'boolean', fallback: false },
  contextSize: { kind: 'count', min: 16, max: 1 << 24 },
  sequences: { kind: 'count', fallback: 4, min: 1, max: 256 },
  chatTemplate: { kind: 'string', env: 'UNDERSTUDY_CHAT_TEMPLATE', fallback: 'chatml' },
};

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/** Whether a URL carries a user name or password (`http://user:password@host`). */
function hasCredentials(value: string): boolean {
  try {
    const url = new URL(value);
    return url.username !== '' || url.password !== '';
  } catch {
    return value.includes('@');
  }
}

/**
 * A URL without the credentials, query or fragment it may carry, for showing.
 * Everything up to the last '@' of the authority goes, even when the URL does
 * not parse (a password may hold '/', which ends a naive authority match).
 */
export function displayUrl(value: string): string {
  const bare = value.replace(/[?#].*$/s, '');
  const at = bare.lastIndexOf('@');
  if (at < 0) return bare;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(bare)?.[0] ?? '';
  return scheme + bare.slice(at + 1);
}

function configError(source: string, expected: string, raw: unknown): UnderstudyError {
  // A URL may carry credentials: never show more of it than its host and path.
  // showValue, not String(): the value may be any JS value a caller passed (see src/validate.ts).
  const shown = source.includes('API_KEY') || source.endsWith('apiKey') ? '(hidden)'
    : (source.includes('API_BASE') || source.endsWith('apiBase')) && typeof raw === 'string' ? showValue(displayUrl(raw))
    : showValue(raw);
  return new UnderstudyError('INVALID_CONFIG', `${source} must be ${expected}, got ${shown}`);
}

function expectation(kind: Kind, min?: number, max?: number): string {
  switch (kind) {
    case 'string': return 'a non-empty string';
    case 'boolean': return 'true or false';
    case 'unit': return 'a number between 0 and 1';
    case 'device': return 'one of auto, cpu, cuda, hip';
    case 'url': return 'an http:// or https:// URL';
    case 'count': return `an integer between ${min} and ${max}`;
    default: return `a number between ${min} and ${max}`;
  }
}


function numberExpectation(kind: Kind, min?: number, max?: number): string {
  switch (kind) {
    case 'count': return `a decimal integer between ${min} and ${max}`;
    case 'unit': return 'a decimal number between 0 and 1';
    default: return `a decimal number between ${min} and ${max}`;
  }
}

/**
 * Reads one environment value as the setting's kind; undefined when unset (a
 * blank string setting counts as unset). Numbers and booleans are read
 * strictly: a value that is not exactly one is refused, naming the variable.
 */
function fromEnv(name: string, kind: Kind, raw: string | undefined, min?: number, max?: number): unknown {
  if (raw === undefined) return undefined;
  if (kind === 'string' || kind === 'device' || kind === 'url') return raw.trim() === '' ? undefined : raw.trim();
  if (kind === 'boolean') {
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    throw configError(name, expectation(kind), raw);
  }
  const n = Number(raw);
  // Plain decimals only (v.isDecimal), and no sign on zero.
  if (!v.isDecimal(raw) || Object.is(n, -0) || (n === 0 && raw.startsWith('-'))) {
    throw configError(name, numberExpectation(kind, min, max), raw);
  }
  return n;
}

function check(source: string, kind: Kind, value: unknown, min = 0, max = 1): unknown {
  const ok = kind === 'string' ? typeof value === 'string' && value.length > 0
    : kind === 'boolean' ? typeof value === 'boolean'
    : kind === 'device' ? value === 'auto' || value === 'cpu' || value === 'cuda' || value === 'hip'
    : kind === 'url' ? isHttpUrl(value)
    : typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max
      && (kind !== 'count' || Number.isInteger(value));
  if (!ok) throw configError(source, expectation(kind, min, max), value);
  if (kind === 'url' && hasCredentials(value as string)) {
    // fetch refuses such URLs, and they would be printed wherever the URL is.
    throw new UnderstudyError('INVALID_CONFIG', `${source} must not carry a user name or password ` +
      `(put the key in UNDERSTUDY_API_KEY or the apiKey option), got ${showValue(displayUrl(value as string))}`);
  }
  return value;
}

/** Where each setting came from: 'option x', the variable's name, or 'default'. */
const SOURCES = new WeakMap<object, Record<string, string>>();

/** The option or variable a resolved setting came from, for messages: "UNDERSTUDY_MODEL", "option model". */
export function settingSource(settings: object, key: keyof RouterSettings): string {
  return SOURCES.get(settings)?.[key] ?? `option ${key}`;
}


/**
 * Resolves the router's settings from `options`, then `env`, then defaults.
 * Throws INVALID_CONFIG naming the option or environment variable at fault.
 */
export function resolveSettings(options: RouterSettings | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedSettings {
  const o = v.options(options, 'options') as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!(key in SPEC) && !EXTRA_OPTION_KEYS.has(key)) {
      throw new UnderstudyError('INVALID_CONFIG', `unknown router option ${showValue(key)}`);
    }
  }
  const out: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const [key, spec] of Object.entries(SPEC)) {
    const min = spec.kind === 'unit' ? 0 : spec.min;
    const max = spec.kind === 'unit' ? 1 : spec.max;
    let value: unknown;
    sources[key] = 'default';
    if (o[key] !== undefined) {
      value = check(`option ${key}`, spec.kind, o[key], min, max);
      sources[key] = `option ${key}`;
    } else if (spec.env) {
      const raw = fromEnv(spec.env, spec.kind, env[spec.env], min, max);
      if (raw !== undefined) {
        value = check(spec.env, spec.kind, raw, min, max);
        sources[key] = spec.env;
      }
    }
    out[key] = value ?? spec.fallback;
  }
  // A pulled model's short name stands for its file in the models directory.
  for (const key of ['model', 'embeddingModel'] as const) {
    if (typeof out[key] === 'string') out[key] = resolveModel(out[key], env, sources[key]);
  }
  if (out.apiKey === undefined && env.OPENAI_API_KEY?.trim()) {
    out.apiKey = env.OPENAI_API_KEY.trim();
    sources.apiKey = 'OPENAI_API_KEY';
  }
  if (typeof out.apiKey === 'string' && out.apiKey.length < MIN_KEY_LENGTH) {
    throw new UnderstudyError('INVALID_CONFIG', `${sources.apiKey} is ${out.apiKey.length} characters long; a key needs at least ` +
      `${MIN_KEY_LENGTH} to be kept out of the logs and the dataset (leave it unset for a server that takes no key)`);
  }
  const settings = out as ResolvedSettings;
  SOURCES.set(settings, sources);
  if (settings.readinessMin > settings.readinessWindow) {
    throw new UnderstudyError('INVALID_CONFIG',
      `readinessMin (${settings.readinessMin}) cannot exceed readinessWindow (${settings.readinessWindow})`);
  }
  return settings;
}

/** Router options that are not settings (backends and hooks), allowed beside them. */
export const EXTRA_OPTION_KEYS = new Set(['local', 'remote', 'embedder', 'env', 'clock', 'log']);
