// One file over HTTP into a `.part` file, resumable: a part left by an earlier
// try is continued with a Range request (If-Range guards against a file that
// changed since, and the validator kept beside the part is compared again), a
// server that ignores Range starts it over, and no bytes for `stallMs` ends the
// try with the part kept. Redirects are followed by hand so that the headers of
// each hop can be read (Hugging Face gives the LFS sha256 on its redirect, not
// on the CDN's answer) and a token never follows a redirect to another origin.
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { UnderstudyError } from '../errors.js';
import { displayUrl } from './model-source.js';

export interface DownloadProgress {
  /** Bytes in the part file so far. */
  received: number;
  /** The file's size, when the server says. */
  total?: number;
  /** Bytes kept from an earlier try (0 for a fresh start). */
  resumedFrom: number;
}

export interface DownloadOptions {
  url: string;
  /** The part file to write (and resume). Its validator is kept in PART.json. */
  part: string;
  /** Sent as a bearer token, only to the origin of `url`. */
  token?: string;
  /** No bytes for this long ends the try (default 30000). */
  stallMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
}

export interface DownloadResult {
  size: number;
  /** The sha256 the source vouches for (x-linked-etag, or an ETag that is one), lower-case. */
  sha256?: string;
  /** Where the bytes came from: 'x-linked-etag' or 'etag'. */
  sha256From?: string;
  /** Bytes kept from an earlier try. */
  resumedFrom: number;
}

interface PartState {
  source: string;
  etag?: string;
  lastModified?: string;
  sha256?: string;
  sha256From?: string;
}

const MAX_REDIRECTS = 10;

export async function download(o: DownloadOptions): Promise<DownloadResult> {
  const stallMs = o.stallMs ?? 30_000;
  const source = displayUrl(o.url);
  const stateFile = `${o.part}.json`;
  // Two tries at most: the second starts from zero after a resume the server would not honour.
  for (let fresh = false; ; fresh = true) {
    let state = fresh ? undefined : await readState(stateFile, source);
    let start = state ? await sizeOf(o.part) : 0;
    if (start === 0) state = undefined;
    const timer = new Stall(stallMs, o.signal);
    try {
      const headers: Record<string, string> = { 'accept-encoding': 'identity' };
      const validator = state?.etag && !/^W\//.test(state.etag) ? state.etag : state?.lastModified;
      if (start > 0) {
        headers.range = `bytes=${start}-`;
        if (validator) headers['if-range'] = validator;
      }
      const { res, sha256, sha256From } = await follow(o.url, headers, o.token, timer);
      if (res.status === 206 && start > 0) {
        const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
        const etag = res.headers.get('etag') ?? undefined;
        const lastModified = res.headers.get('last-modified') ?? undefined;
        const changed = (state?.etag && etag && etag !== state.etag) || (!state?.etag && state?.lastModified && lastModified && lastModified !== state.lastModified);
        if (!range || Number(range[1]) !== start || changed) {
          await res.body?.cancel().catch(() => undefined);
          if (fresh) throw new UnderstudyError('IO_ERROR', `${source} answered a fresh request with a partial file (HTTP 206)`);
          await discard(o.part, stateFile);
          continue;
        }
      } else if (res.status === 416 && start > 0 && !fresh) {
        // The part is as long as the file or longer: it cannot be trusted, start over.
        await res.body?.cancel().catch(() => undefined);
        await discard(o.part, stateFile);
        continue;
      } else if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        throw statusError(res.status, source);
      } else {
        // A 200 to a Range request: the server sends the whole file, so the part starts over.
        start = 0;
      }
      const length = Number(res.headers.get('content-length') ?? NaN);
      const contentRange = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
      const total = contentRange ? Number(contentRange[1]) : Number.isFinite(length) ? start + length : undefined;
      const kept: PartState = {
        source,
        ...optional('etag', res.headers.get('etag')),
        ...optional('lastModified', res.headers.get('last-modified')),
        ...(sha256 ? { sha256, sha256From } : state?.sha256 ? { sha256: state.sha256, sha256From: state.sha256From } : {}),
      };
      await writeFile(stateFile, JSON.stringify(kept));
      const received = await receive(res, o.part, start, total, timer, o.onProgress, source);
      return { size: received, resumedFrom: start, ...(kept.sha256 ? { sha256: kept.sha256, sha256From: kept.sha256From! } : {}) };
    } catch (err) {
      // What is on disk now is what the next try resumes from.
      throw timer.explain(err, source, o.part, await sizeOf(o.part));
    } finally {
      timer.clear();
    }
  }
}

/** Streams the body into the part file (appended from `start`); returns the part's size. */
async function receive(res: Response, part: string, start: number, total: number | undefined, timer: Stall,
  onProgress: DownloadOptions['onProgress'], source: string): Promise<number> {
  const fh = await open(part, start > 0 ? 'a' : 'w');
  let received = start;
  try {
    onProgress?.({ received, total, resumedFrom: start });
    if (res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        timer.touch();
        await fh.write(chunk);
        received += chunk.byteLength;
        onProgress?.({ received, total, resumedFrom: start });
      }
    }
  } finally {
    await fh.close();
  }
  if (total !== undefined && received !== total) {
    throw new UnderstudyError('IO_ERROR', `the download from ${source} ended after ${received} of ${total} bytes; ` +
      'run the same command again to resume');
  }
  return received;
}

/** GETs `url`, following redirects; collects the sha256 the hops vouch for. */
async function follow(url: string, headers: Record<string, string>, token: string | undefined, timer: Stall) {
  const origin = new URL(url).origin;
  let sha256: string | undefined;
  let sha256From: string | undefined;
  let at = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const auth: Record<string, string> = token && new URL(at).origin === origin ? { authorization: `Bearer ${token}` } : {};
    const res = await fetch(at, { headers: { ...headers, ...auth }, redirect: 'manual', signal: timer.signal });
    timer.touch();
    const linked = hexSha(res.headers.get('x-linked-etag'));
    if (linked && !sha256) {
      sha256 = linked;
      sha256From = 'x-linked-etag';
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel().catch(() => undefined);
      at = new URL(location, at).href;
      continue;
    }
    const etag = hexSha(res.headers.get('etag'));
    if (etag && !sha256 && res.status < 300) {
      sha256 = etag;
      sha256From = 'etag';
    }
    return { res, sha256, sha256From };
  }
  throw new UnderstudyError('IO_ERROR', `more than ${MAX_REDIRECTS} redirects from ${displayUrl(url)}`);
}

/** The sha256 in an ETag-like header ("HEX", W/"HEX"), if it holds one. */
export function hexSha(value: string | null): string | undefined {
  const m = /^(?:W\/)?"?([0-9a-fA-F]{64})"?$/.exec(value?.trim() ?? '');
  return m ? m[1]!.toLowerCase() : undefined;
}

function statusError(status: number, source: string): UnderstudyError {
  if (status === 404) return new UnderstudyError('MODEL_NOT_FOUND', `HTTP 404 from ${source}: no such file`);
  const why = status === 401 || status === 403
    ? ' (a gated or private repository needs HF_TOKEN, and access granted on its page)'
    : '';
  return new UnderstudyError('IO_ERROR', `HTTP ${status} from ${source}${why}`);
}

/** The no-bytes timer and the caller's abort, as one signal for fetch. */
class Stall {
  readonly #controller = new AbortController();
  readonly #ms: number;
  readonly #outer: AbortSignal | undefined;
  readonly #onAbort = () => this.#controller.abort();
  #timer: NodeJS.Timeout | undefined;
  stalled = false;

  constructor(ms: number, outer: AbortSignal | undefined) {
    this.#ms = ms;
    this.#outer = outer;
    if (outer?.aborted) this.#controller.abort();
    outer?.addEventListener('abort', this.#onAbort, { once: true });
    this.touch();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  touch(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.stalled = true;
      this.#controller.abort();
    }, this.#ms);
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#outer?.removeEventListener('abort', this.#onAbort);
  }

  /** The error a failed try is reported as: a stall, an abort, a broken connection, or itself. */
  explain(err: unknown, source: string, part: string, kept: number): unknown {
    if (err instanceof UnderstudyError) return err;
    const keptText = kept > 0 ? `; ${kept} bytes are kept in ${part}` : '';
    if (this.#outer?.aborted) return new UnderstudyError('ABORTED', `download aborted${keptText}`, { cause: err });
    if (this.stalled) {
      return new UnderstudyError('IO_ERROR', `the download from ${source} stalled: no data for ${this.#ms / 1000} s${keptText}; ` +
        'run the same command again to resume', { cause: err });
    }
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    return new UnderstudyError('IO_ERROR', `the download from ${source} failed (${cause})${keptText}; run the same command again to resume`, { cause: err });
  }
}

async function readState(file: string, source: string): Promise<PartState | undefined> {
  try {
    const state = JSON.parse(await readFile(file, 'utf8')) as PartState;
    return state?.source === source ? state : undefined;
  } catch {
    return undefined;
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

export async function discard(part: string, stateFile = `${part}.json`): Promise<void> {
  await rm(part, { force: true });
  await rm(stateFile, { force: true });
}

function optional<K extends string>(key: K, value: string | null): Partial<Record<K, string>> {
  return value ? ({ [key]: value } as Record<K, string>) : {};
}
