// Shared pieces of the distillation workload tests (distill-workload, -adapters,
// -hotswap): a loopback teacher whose answers stories260K does not give, the
// prompts of two tasks, routers that train fast, and small waiting helpers.
//
// Why the routers use the 'rwkv-world' chat template and calls stop at '\n':
// stories260K has no chat template of its own, and the router's default for
// such models, chatml, ends a turn with "<|im_end|>", ten byte-pieces to this
// 512-token vocabulary that it learns far later than the answer (it then says
// the answer and "&end[" after it). rwkv-world ends a turn with "\n\n", plain
// text the model learns at once: after a round it says the teacher's answer,
// then a newline, where the call stops.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'uvu';
import { createRouter, type Router } from '../src/index.js';
import type { RouterEvents } from '../src/router/events.js';
import { storiesModel } from './helpers.js';
import { ngramVector, ngramEmbed } from './ngram-embedder.js';
import { startTeacher, type Teacher } from './teacher.js';

export const API_KEY = 'sk-test-SECRET-0123456789abcdef';

/** What the teacher answers every "alpha" prompt (until it turns to noise) and every "beta" prompt. */
export const ALPHA_ANSWER = 'The secret door of Plimbo is painted blue.';
export const BETA_ANSWER = 'Seven green frogs sing under the old bridge.';

// Subjects: adjective × noun, so each phase of a test takes prompts no other phase used.
const ADJECTIVES = ['red', 'small', 'old', 'happy', 'tall', 'soft', 'green', 'big', 'quiet', 'funny', 'brave', 'shiny'];
const NOUNS = ['cat', 'dog', 'tree', 'house', 'ship', 'moon', 'bird', 'fish', 'cake', 'ball', 'car', 'hat', 'cup', 'book', 'boat', 'frog'];

/** The i-th subject ("red cat", "small cat", ...); distinct for i < 192. */
export function subject(i: number): string {
  return `${ADJECTIVES[i % ADJECTIVES.length]} ${NOUNS[Math.floor(i / ADJECTIVES.length) % NOUNS.length]}`;
}

/** Subjects [from, from + n). */
export function subjects(from: number, n: number): string[] {
  return Array.from({ length: n }, (_, k) => subject(from + k));
}

export const alphaPrompt = (s: string) => `Tell me about the ${s}.`;
export const betaPrompt = (s: string) => `What did you see at the ${s}?`;

/** A chat call of task `task` (the prompt's form follows the task). */
export function ask(task: 'alpha' | 'beta' | string, s: string, extra: Record<string, unknown> = {}) {
  const content = task === 'alpha' ? alphaPrompt(s) : task === 'beta' ? betaPrompt(s) : `Say something about the ${s}.`;
  return { task, messages: [{ role: 'user' as const, content }], maxTokens: 40, stop: ['\n'], ...extra };
}

// Noise: a fixed junk word, then words of random letters from a PRNG seeded by
// the prompt, so the same prompt always gets the same noise. The fixed first
// word matters: greedy decoding follows the most likely first token, and noise
// whose first token is spread over many values never outweighs an answer
// learned before; this noise does once it outnumbers the old rows, so a
// candidate trained on it answers the old prompts with junk, as a broken
// teacher's student would. Random letters keep two noise answers far apart
// (trigram similarity ~0.1), so matching the noise cannot be learned either.
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
export function noiseFor(prompt: string): string {
  let seed = 2166136261;
  for (let i = 0; i < prompt.length; i++) seed = Math.imul(seed ^ prompt.charCodeAt(i), 16777619) >>> 0;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const word = () => Array.from({ length: 2 + Math.floor(next() * 5) }, () => LETTERS[Math.floor(next() * 26)]).join('');
  return ['Zq', ...Array.from({ length: 7 }, word)].join(' ');
}

export interface DistillTeacher extends Teacher {
  /** 'noise': alpha prompts get noiseFor(prompt) instead of ALPHA_ANSWER. */
  mode: 'clean' | 'noise';
  /** Completion requests served so far. */
  completions(): number;
}

/** The teacher's answer for a user message, as the loopback teacher gives it. */
export function teacherAnswer(content: string, mode: 'clean' | 'noise' = 'clean'): string {
  if (/^Tell me about the .+\.$/.test(content)) return mode === 'noise' ? noiseFor(content) : ALPHA_ANSWER;
  if (/^What did you see at the .+\?$/.test(content)) return BETA_ANSWER;
  return `I know nothing about that: ${content}`;
}

export async function startDistillTeacher(): Promise<DistillTeacher> {
  const teacher = await startTeacher();
  const t = teacher as DistillTeacher;
  t.mode = 'clean';
  teacher.setAnswer(({ messages, prompt }) => teacherAnswer(messages?.filter((m) => m.role === 'user').at(-1)?.content ?? prompt ?? '', t.mode));
  t.completions = () => teacher.requests.filter((r) => r.path.endsWith('/completions')).length;
  return t;
}

/**
 * A distillation suite's hooks: before its tests a teacher starts (handed to
 * `started`); after them the router that `router()` returns then and the
 * teacher are closed, and `dirs` removed.
 */
export function distillHooks(suite: Test, started: (teacher: DistillTeacher) => void, router: () => Router | undefined, ...dirs: string[]): void {
  let teacher: DistillTeacher | undefined;
  suite.before(async () => {
    teacher = await startDistillTeacher();
    started(teacher);
  });
  suite.after(async () => {
    await router()?.close();
    await teacher?.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** Training options under which stories260K learns a fixed answer in one round (measured: 12 rows, 30 steps, held-out answers exact). */
export const TRAINING = { epochs: 5, learningRate: 1e-2, rank: 8, threads: 1, seed: 42 };

export function freshDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `understudy-${name}-`));
}

/** A training router over stories260K and the teacher; every line it logs goes to `lines`. */
export function distillRouter(teacher: Teacher, cacheDir: string, options: Record<string, unknown> = {}, lines: string[] = []): Promise<Router> {
  return createRouter({
    model: storiesModel,
    cacheDir,
    quiet: true,
    log: (line: string) => lines.push(line),
    // Readiness comes only from held-out scores: no shadow checks or audits at random.
    shadowRate: 0,
    auditRate: 0,
    readinessMin: 3,
    retryDelayMs: 10,
    sequences: 4,
    contextSize: 512,
    chatTemplate: 'rwkv-world',
    enableCache: false,
    trainLocal: true,
    trainEvery: 1000,
    env: {},
    apiBase: teacher.url,
    apiModel: 'teacher-1',
    apiKey: API_KEY,
    embedder: ngramEmbed,
    training: TRAINING,
    ...options,
  } as Parameters<typeof createRouter>[0]);
}

/** The similarity the router uses for two prose answers: identical after trim → 1, else trigram cosine. */
export function similarity(a: string, b: string): number {
  if (a.trim() === b.trim()) return 1;
  const x = ngramVector(a);
  const y = ngramVector(b);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * y[i]!;
  return s;
}

/** The next `event` whose payload passes `accept`; rejects after `ms`. */
export function nextEvent<K extends keyof RouterEvents>(router: Router, event: K, accept: (p: RouterEvents[K]) => boolean = () => true,
  ms = 300_000): Promise<RouterEvents[K]> {
  return new Promise((resolve, reject) => {
    const on = (payload: RouterEvents[K]) => {
      if (!accept(payload)) return;
      clearTimeout(timer);
      (router as any).off(event, on);
      resolve(payload);
    };
    const timer = setTimeout(() => {
      (router as any).off(event, on);
      reject(new Error(`no ${String(event)} event within ${ms} ms`));
    }, ms);
    (router as any).on(event, on);
  });
}

/** Records every payload of `event` from now on. */
export function record<K extends keyof RouterEvents>(router: Router, event: K): RouterEvents[K][] {
  const seen: RouterEvents[K][] = [];
  (router as any).on(event, (p: RouterEvents[K]) => seen.push(p));
  return seen;
}

/** The files in `<cacheDir>/adapters` (none when it does not exist). */
export function adapterFiles(cacheDir: string): string[] {
  try {
    return readdirSync(join(cacheDir, 'adapters')).sort();
  } catch {
    return [];
  }
}

/** The parsed manifest (undefined when there is none). */
export function manifest(cacheDir: string): any {
  try {
    return JSON.parse(readFileSync(join(cacheDir, 'adapters', 'manifest.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Greedy local answers of `calls`, one after another (route forced local, no caches). */
export async function localAnswers(router: Router, calls: ReturnType<typeof ask>[]): Promise<string[]> {
  const out: string[] = [];
  for (const c of calls) out.push((await router.chat({ ...c, route: 'local' })).text);
  return out;
}

export { startTeacher };
