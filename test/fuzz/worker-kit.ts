// The worker side of child.ts: the case range from argv, the progress lines,
// and the one rule every failure is judged by: an UnderstudyError with a known
// code. (A hostile argument's own exception, thrown by its getter or Proxy
// trap and passed through unchanged, is the caller's error, not ours: workers
// mark those with HostileError.)
import { existsSync } from 'node:fs';
import { UnderstudyError } from '../../src/errors.js';
import { root } from '../helpers.js';

const FALLBACK_CODES = [
  'INVALID_ARGUMENT', 'MODEL_NOT_FOUND', 'INVALID_MODEL_FILE', 'CONTEXT_CREATION_FAILED', 'CONTEXT_OVERFLOW',
  'DECODE_FAILED', 'ABORTED', 'DISPOSED', 'BUSY', 'QUEUE_FULL', 'INVALID_ADAPTER', 'INVALID_GRAMMAR',
  'TEMPLATE_MISSING', 'TEMPLATE_UNSUPPORTED', 'BINDING_NOT_FOUND', 'OUT_OF_MEMORY', 'NATIVE_ERROR', 'INVALID_CONFIG',
  'NO_BACKEND', 'CACHE_MISS', 'REMOTE_UNAVAILABLE', 'REMOTE_TIMEOUT', 'REMOTE_REJECTED', 'REMOTE_BAD_RESPONSE', 'CLOSED',
];

/** The project's list of error codes where it has one (src/error-codes.ts), else errors.ts's. */
export async function knownCodes(): Promise<Set<string>> {
  if (existsSync(`${root}/src/error-codes.ts`)) {
    const m = (await import('../../src/error-codes.js' as string)) as { ERROR_CODES?: readonly string[] };
    if (m.ERROR_CODES) return new Set(m.ERROR_CODES);
  }
  return new Set(FALLBACK_CODES);
}

/** Thrown by the fuzz suite's own hostile getters and Proxy traps. */
export class HostileError extends Error {
  constructor() {
    super('hostile getter');
    this.name = 'HostileError';
  }
}

export function range(): { from: number; to: number; arg: (name: string) => string | undefined } {
  const argv = process.argv.slice(2);
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return { from: Number(arg('from') ?? 0), to: Number(arg('to') ?? 0), arg };
}

export type Verdict = { outcome: 'ok' | 'coded' | 'uncoded'; code?: string; detail: string };

export function judge(err: unknown, codes: Set<string>): Verdict {
  if (err instanceof HostileError) return { outcome: 'ok', detail: 'the hostile argument\'s own error' };
  if (err instanceof UnderstudyError && codes.has(err.code)) return { outcome: 'coded', code: err.code, detail: err.message.slice(0, 300) };
  const e = err as { name?: unknown; code?: unknown; message?: unknown; stack?: unknown };
  const name = typeof e?.name === 'string' ? e.name : typeof err;
  const stack = typeof e?.stack === 'string' ? e.stack.split('\n').slice(0, 4).join(' | ') : String(err);
  return { outcome: 'uncoded', code: typeof e?.code === 'string' ? e.code.slice(0, 60) : undefined, detail: `${name}: ${stack}`.slice(0, 600) };
}

/** Runs case `i` for each i in [from, to), printing the progress lines child.ts reads. */
export async function runWorker(describe: (i: number) => string, run: (i: number) => Promise<Verdict>): Promise<void> {
  const { from, to } = range();
  for (let i = from; i < to; i++) {
    process.stdout.write(`CASE ${i} ${describe(i).replace(/\n/g, ' ').slice(0, 300)}\n`);
    let verdict: Verdict;
    try {
      verdict = await run(i);
    } catch (err) {
      verdict = { outcome: 'uncoded', detail: `the worker itself failed: ${(err as Error)?.stack ?? String(err)}`.slice(0, 600) };
    }
    process.stdout.write(`RESULT ${i} ${JSON.stringify(verdict)}\n`);
  }
  process.stdout.write('FINISHED\n');
}
