// Scenarios that used to kill the process (SIGABRT, SIGSEGV) or hang it, run in
// a child process of their own: `node --import tsx test/native-safety-child.ts
// <scenario>` prints one JSON line with what happened. The tests spawn it and
// check both the outcome and that the child exited normally.
import { fileURLToPath } from 'node:url';
import { loadModel, type Model } from '../src/index.js';
import { run, storiesModel } from './helpers.js';

export interface ChildResult {
  code: number | null;
  signal: string | null;
  /** The scenario's JSON line; undefined when the child died before printing it. */
  out: Record<string, unknown> | undefined;
  stderr: string;
}

const self = fileURLToPath(import.meta.url);

export async function inChild(scenario: string, timeoutMs = 120_000): Promise<ChildResult> {
  const r = await run(process.execPath, ['--import', 'tsx', self, scenario], timeoutMs);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let out: Record<string, unknown> | undefined;
  try {
    out = JSON.parse(line);
  } catch {
    out = undefined;
  }
  return { code: r.code, signal: r.signal, out, stderr: r.stderr.slice(-2000) };
}

function failure(err: unknown): { code: unknown; message: unknown } {
  const e = err as { code?: unknown; message?: unknown };
  return { code: e?.code, message: e?.message };
}

async function outcome(p: Promise<{ text: string }>): Promise<{ text?: string; code?: unknown; message?: unknown }> {
  try {
    return { text: (await p).text };
  } catch (err) {
    return failure(err);
  }
}

const greedy = { temperature: 0, maxTokens: 24 };

// A grammar nested `depth` groups deep.
export function nestedGrammar(depth: number): string {
  return `root ::= ${'('.repeat(depth)}"a"${')'.repeat(depth)}`;
}

const scenarios: Record<string, (model: Model) => Promise<unknown>> = {
  // Grammars the 512-token vocabulary cannot satisfy, next to an ordinary
  // generation on the same context, then another one after them.
  async unsatisfiable(model) {
    const ctx = await model.createContext({ contextSize: 512, sequences: 2 });
    const ordinary = outcome(ctx.complete('Once upon a time', greedy));
    const tokenId = outcome(ctx.complete('Once', { ...greedy, grammar: 'root ::= <[100000]>' }));
    const nul = outcome(ctx.complete('Once', { ...greedy, grammar: 'root ::= "a" [\\x00]' }));
    const results = { ordinary: await ordinary, tokenId: await tokenId, nul: await nul };
    return { ...results, after: await outcome(ctx.complete('Once upon a time', greedy)) };
  },

  // Deep nesting: far past the limit (llama.cpp's recursive parser overflowed
  // the JS thread's stack), and right at it (parsed on a parse thread).
  async deep(model) {
    const ctx = await model.createContext({ contextSize: 256 });
    return {
      tooDeep: await outcome(ctx.complete('Once', { ...greedy, grammar: nestedGrammar(20_000) })),
      atLimit: await outcome(ctx.complete('Once', { ...greedy, grammar: nestedGrammar(1000) })),
    };
  },

  // `x{5,2}`: llama.cpp counts max - min rules in unsigned arithmetic and loops
  // (nearly) forever, allocating as it goes.
  async reversedRepetition(model) {
    const ctx = await model.createContext({ contextSize: 256 });
    return { reversed: await outcome(ctx.complete('Once', { ...greedy, grammar: 'root ::= "a"{5,2}' })) };
  },

  // More sequences than one batch of min(contextSize, batchSize) has room for:
  // a GGML_ASSERT at context creation.
  async sequences(model) {
    const attempt = async (options: object) => {
      try {
        const ctx = await model.createContext(options);
        return { sequences: ctx.info().sequences };
      } catch (err) {
        return failure(err);
      }
    };
    const embedding = await model.createContext({ embeddings: true, contextSize: 4 });
    const vectors = await embedding.embed(['a', 'b']);
    return {
      batch: await attempt({ sequences: 2, batchSize: 1 }),
      context: await attempt({ sequences: 8, contextSize: 4 }),
      embeddingContext: await attempt({ embeddings: true, contextSize: 4, sequences: 8 }),
      smallEmbedding: { sequences: embedding.info().sequences, vectors: vectors.length },
    };
  },

  // Arrays that claim a huge length and hold one element.
  async hugeLength(model) {
    const ctx = await model.createContext({ contextSize: 256 });
    const messages: unknown[] = [];
    messages.length = 2 ** 31;
    messages[0] = { role: 'user', content: 'hi' };
    const holey: unknown[] = [];
    holey.length = 50_000;
    holey[0] = { role: 'user', content: 'hi' };
    const embedding = await model.createContext({ embeddings: true, contextSize: 64 });
    const texts: unknown[] = [];
    texts.length = 2 ** 31;
    texts[0] = 'hi';
    const chat = (m: unknown[]) => outcome(ctx.chat(m as never, { template: 'chatml', maxTokens: 4 }).result);
    let embed: unknown;
    try {
      await embedding.embed(texts as string[]);
    } catch (err) {
      embed = failure(err);
    }
    let template: unknown;
    try {
      model.applyChatTemplate(messages as never, { template: 'chatml' });
    } catch (err) {
      template = failure(err);
    }
    const stop: unknown[] = [];
    stop.length = 2 ** 32 - 1;
    stop[0] = 'x';
    const stopped = await outcome(ctx.complete('Once', { maxTokens: 2, stop: stop as string[] }));
    return { chat: await chat(messages), holey: await chat(holey), template, embed, stop: stopped };
  },
};

async function main(name: string): Promise<void> {
  const scenario = scenarios[name];
  if (!scenario) throw new Error(`unknown scenario ${name}`);
  const model = await loadModel(storiesModel);
  const result = await scenario(model);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}

if (process.argv[1] === self) await main(process.argv[2] ?? '');
