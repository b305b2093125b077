// What the router's parts (call-path.ts, learning.ts) share: the settings, the
// backends, and the one way to log, warn and emit. The Router makes one and
// hands it to each part, so no part reaches into another's state.
import type { Backend } from './backend.js';
import type { ResolvedSettings } from './config.js';
import type { Embedder } from './embedder.js';
import type { RouterEvents } from './events.js';

export interface RouterCore {
  /** As shown to callers: the key hidden, the URL without credentials. */
  readonly settings: Readonly<ResolvedSettings>;
  readonly local: Backend | undefined;
  readonly remote: Backend | undefined;
  readonly embedder: Embedder | undefined;
  /** The model calls are keyed by in the caches. */
  readonly model: string;
  readonly cacheDir: string;
  /** Whether close() has begun. */
  readonly closed: boolean;
  redact(text: string): string;
  /** A line to the log sink, redacted. */
  log(line: string): void;
  /** A 'warning' event and its line, redacted. */
  warn(message: string): void;
  emit<K extends keyof RouterEvents>(event: K, payload: RouterEvents[K]): void;
}
