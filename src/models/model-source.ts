// What `understudy pull` is asked to fetch: `hf:OWNER/REPO/PATH/FILE.gguf[@REVISION]`
// (a file in a Hugging Face repository) or an http(s) URL, turned into the URL
// to request, the file name a short name defaults to, and whether a token goes with it.
import { UnderstudyError } from '../errors.js';
import { fail, showValue } from '../validate.js';

export interface ModelSource {
  /** The URL requested first. */
  url: string;
  /** The URL as messages and the manifest show it: no credentials, query or fragment. */
  display: string;
  /** The last path segment (FILE.gguf). */
  fileName: string;
  /** HF_TOKEN for hf: sources, sent only to the endpoint's own origin. */
  token?: string;
}

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

export function parseSource(spec: string, env: NodeJS.ProcessEnv = process.env): ModelSource {
  if (spec.startsWith('hf:')) return hfSource(spec, env);
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw invalid(spec);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(spec);
  return { url: url.href, display: displayUrl(url.href), fileName: lastSegment(url) };
}

function hfSource(spec: string, env: NodeJS.ProcessEnv): ModelSource {
  let rest = spec.slice(3).replace(/^\/+/, '');
  let revision = 'main';
  const at = rest.lastIndexOf('@');
  if (at > rest.lastIndexOf('/')) {
    revision = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const parts = rest.split('/');
  if (parts.length < 3 || parts.some((p) => p === '' || p === '.' || p === '..') || revision === '') {
    fail('hf:OWNER/REPO/FILE.gguf[@REVISION]', 'source', spec);
  }
  const endpoint = (env.UNDERSTUDY_HF_ENDPOINT?.trim() || env.HF_ENDPOINT?.trim() || DEFAULT_HF_ENDPOINT).replace(/\/+$/, '');
  const [owner, repo, ...path] = parts;
  const url = `${endpoint}/${enc(owner!)}/${enc(repo!)}/resolve/${enc(revision)}/${path.map(enc).join('/')}`;
  try {
    new URL(url);
  } catch {
    throw new UnderstudyError('INVALID_CONFIG', `UNDERSTUDY_HF_ENDPOINT is not a URL: ${showValue(endpoint)}`);
  }
  const token = env.HF_TOKEN?.trim();
  return { url, display: displayUrl(url), fileName: path[path.length - 1]!, ...(token ? { token } : {}) };
}

/** A URL without credentials, query or fragment: signed CDN links and tokens stay out of messages. */
export function displayUrl(href: string): string {
  try {
    const url = new URL(href);
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    return url.href;
  } catch {
    return '(a URL)';
  }
}

function lastSegment(url: URL): string {
  const segment = url.pathname.split('/').filter(Boolean).pop() ?? '';
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const enc = (s: string) => encodeURIComponent(s);

function invalid(spec: string): UnderstudyError {
  return new UnderstudyError('INVALID_ARGUMENT',
    `Expected hf:OWNER/REPO/FILE.gguf[@REVISION] or an http(s) URL for source but received ${showValue(spec)} of type string`);
}
