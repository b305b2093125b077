// Token counts as the router keeps them: finite non-negative integers. A
// backend's report is not trusted: a remote (or a caller's own backend) may say
// -3, NaN, Infinity or "12", and such a number would reach the cache, the
// dataset, the events and prom-client's counters (whose inc() throws on a
// negative value, failing every later call that emits it).
import type { Usage } from './backend.js';

/** `raw` as a token count: a finite non-negative integer, else 0. */
export function tokenCount(raw: unknown): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  return Number.isFinite(n) && n > 0 ? Math.min(Math.floor(n), Number.MAX_SAFE_INTEGER) : 0;
}

/** A usage report made sound; a total that is missing or smaller than its parts is their sum. */
export function cleanUsage(raw: unknown): Usage {
  const u = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const promptTokens = tokenCount(u.promptTokens);
  const completionTokens = tokenCount(u.completionTokens);
  const total = tokenCount(u.totalTokens);
  return { promptTokens, completionTokens, totalTokens: Math.max(total, promptTokens + completionTokens) };
}
