// Shared test fixtures: model paths, time limits on native awaits, reference
// programs, and generated models.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeLlamaModel } from '../scripts/make-model.js';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const storiesModel = process.env.UNDERSTUDY_TEST_MODEL ?? resolve(root, '..', 'shared', 'models', 'stories260K.gguf');
export const llamaSimple = join(root, 'build', 'tools', 'simple', 'llama-simple');
export const vocabDir = join(root, 'vendor', 'llama.cpp', 'models');
export const cli = join(root, 'bin', 'understudy.js');

if (!existsSync(storiesModel)) {
  throw new Error(`test model missing: ${storiesModel} (set UNDERSTUDY_TEST_MODEL)`);
}

/** Every native await in the tests goes through this: a hang fails the test instead of the run. */
export async function within<T>(promise: Promise<T>, ms = 60_000, what = 'native call'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Awaits `promise` and returns the error it rejects with; fails if it resolves. */
export async function rejection(promise: Promise<unknown>, ms = 60_000): Promise<Error & { code?: string }> {
  try {
    await within(promise, ms);
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection, but the call succeeded');
}

/** Returns the error a synchronous call throws; fails if it returns. */
export function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected an error, but the call returned');
}

export function run(cmd: string, args: string[], timeoutMs = 300_000): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: string }) | null;
      resolvePromise({
        code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
        signal: e?.signal ?? null,
        stdout,
        // A program that could not start at all says why here.
        stderr: e && typeof e.code === 'string' ? `${stderr}${e.message}` : stderr,
      });
    });
  });
}

/** llama.cpp's llama-simple: prints the prompt's pieces, then the greedy continuation, then "\n". */
export async function llamaSimpleContinuation(model: string, prompt: string, n: number): Promise<string> {
  const r = await run(llamaSimple, ['-m', model, '-n', String(n), prompt]);
  if (r.code !== 0) throw new Error(`llama-simple failed (${r.code ?? r.signal}): ${r.stderr.slice(-500)}`);
  return r.stdout;
}

export const llamaCompletion = join(root, 'build', 'tools', 'completion', 'llama-completion');

/**
 * llama.cpp's llama-completion, greedy (temperature 0, top-k 1), without conversation
 * mode or prompt echo, optionally with a LoRA adapter at scale 1; returns just the
 * continuation of at most `n` tokens. Its stdout is the continuation, then
 * " [end of text]\n" if it stopped at end of generation, then "\n\n".
 */
export async function llamaCompletionContinuation(model: string, prompt: string, n: number, lora?: string): Promise<string> {
  if (!existsSync(llamaCompletion)) {
    throw new Error(`${llamaCompletion} is missing: build it with \`node scripts/build-native.mjs --tools=simple\``);
  }
  // The context holds the prompt (at most one token per byte, plus BOS and SentencePiece's
  // leading space) and the continuation, so generation never shifts the context.
  const contextSize = Buffer.byteLength(prompt) + 2 + n;
  const args = [
    '-m', model, '-p', prompt, '-n', String(n), '-c', String(contextSize),
    '--temp', '0', '--top-k', '1', '--seed', '1',
    '-no-cnv', '--no-display-prompt', '--no-warmup', '--simple-io',
    ...(lora === undefined ? [] : ['--lora', lora]),
  ];
  // llama-completion prints through a logging thread that nothing waits for at exit
  // (llama.cpp issue 22142), so on a busy machine the end of its output is sometimes
  // lost. Its last words are the timings on stderr, printed after the text: a run
  // without them is cut short and runs again (the continuation is deterministic).
  let last = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await run(llamaCompletion, args);
    if (r.code !== 0) throw new Error(`llama-completion failed (${r.code ?? r.signal}): ${r.stderr.slice(-500)}`);
    last = r.stdout;
    if (!/common_perf_print: +total time/.test(r.stderr)) continue;
    if (!r.stdout.endsWith('\n\n')) break;
    const text = r.stdout.slice(0, -2);
    const eog = ' [end of text]\n';
    return text.endsWith(eog) ? text.slice(0, -eog.length) : text;
  }
  throw new Error(`llama-completion output does not end as expected: ${JSON.stringify(last.slice(-80))}`);
}

const fixtureDir = join(tmpdir(), `understudy-test-fixtures-${process.pid}`);

/** A small llama model with random weights and the llama-spm (32000-token) vocabulary. */
export async function tinyModel(name = 'tiny', overrides: Record<string, unknown> = {}): Promise<string> {
  mkdirSync(fixtureDir, { recursive: true });
  const out = join(fixtureDir, `${name}.gguf`);
  if (!existsSync(out)) {
    await makeLlamaModel({
      out, layers: 2, embd: 64, ff: 128, heads: 4, kvHeads: 2, ctx: 2048, type: 'F32', seed: 7,
      progress: false, ...overrides,
    } as Parameters<typeof makeLlamaModel>[0]);
  }
  return out;
}

export { fixtureDir };
