// Usage errors (exit code 2) and the help text of the `understudy` command.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { resolveModel } from '../models/resolve-model.js';
import { isDecimal, showValue } from '../validate.js';

export class UsageError extends Error {}

export const HELP = `understudy — local LLM calls through llama.cpp, from Node.js

Usage:
  understudy generate --model PATH [options] PROMPT
      Streams the continuation of PROMPT to stdout; statistics go to stderr.
      --max-tokens N       tokens to generate (default 256)
      --temperature T      0 = greedy (default 0.8)
      --top-k K, --top-p P, --min-p P, --repeat-penalty R
      --seed S             sampling seed (default random)
      --stop TEXT          stop before TEXT (repeatable)
      --ignore-eos         keep generating past end-of-text (benchmarks)
      --context-size N     context size in tokens (default: model's, at most 4096)
      --threads N          CPU threads (default: all cores)
      --gpu-layers N|auto|max   layers to offload to the GPU (default auto)
      --lora PATH[:SCALE]  apply a LoRA adapter (repeatable; scale 1 by default)
  understudy chat --model PATH [--template NAME] [--system TEXT] [--lora PATH[:SCALE]]
                  [--max-tokens N] [--temperature T] [--seed S] [--context-size N]
      A conversation at the terminal, streamed; uses the model's chat template
      or --template (a llama.cpp built-in name such as chatml, llama3, gemma).
      Ctrl-C stops an answer; Ctrl-D or /exit leaves. Piped stdin: one turn per line.
  understudy embed --model PATH [--truncate] TEXT...
      Prints one JSON array (a unit-length embedding) per TEXT, one per line.
  understudy tokenize --model PATH [--vocab-only] [--no-special] [--parse-special] TEXT
      Prints the token ids of TEXT as one JSON array.
  understudy info --model PATH [--vocab-only]
      Prints the model's metadata as JSON.
  understudy doctor
      Prints the backends, devices and build in use.
  understudy ask [--task NAME] [--system TEXT] [--route auto|local|remote|cache]
                 [--max-tokens N] [--temperature T] [--stop TEXT]... [--model PATH]
                 [--cache-dir DIR] [--threads N] [--chat-template NAME] [--offline] PROMPT
      Sends PROMPT through the router (caches, local model, remote API), streams
      the answer to stdout and the route to stderr. An answer cut off by
      --max-tokens is not cached; --stop (repeatable) ends it at a text. Configured by UNDERSTUDY_*
      variables (see the README); flags win over them. --threads (UNDERSTUDY_THREADS)
      is shared by the local model's generation and embedding contexts
      (default: all cores but one). --chat-template (UNDERSTUDY_CHAT_TEMPLATE)
      names the template for a model whose GGUF has none (default chatml).
  understudy dataset tasks [--cache-dir DIR]
      Lists the tasks in the dataset, their rows and readiness.
  understudy dataset export --out FILE [--task NAME] [--cache-dir DIR]
      Writes the dataset as JSONL in chat format, for training.
  understudy serve [--host H] [--port P] [--api-key KEY] [--body-limit BYTES]
                   [--request-timeout MS] [--grace MS] [--model PATH]
                   [--cache-dir DIR] [--threads N] [--chat-template NAME] [--offline]
      An OpenAI-compatible HTTP server over the router: /v1/chat/completions,
      /v1/completions, /v1/embeddings, /v1/models, /health and /metrics
      (Prometheus). Configured like ask; training rounds run in the background.
      Prints "understudy: listening on http://HOST:PORT" on stderr once ready.
      --host H             address to listen on (UNDERSTUDY_HOST; default
                           127.0.0.1, this machine only)
      --port P             port (UNDERSTUDY_PORT; default 8080; 0 = a free one)
      --api-key KEY        key every route but /health needs, as "Authorization:
                           Bearer KEY" or "X-Api-Key: KEY". Prefer the variable
                           UNDERSTUDY_SERVER_KEY: other users can see a command
                           line in \`ps\`.
      --body-limit BYTES   largest request body (default 4 MiB; larger is 413)
      --request-timeout MS longest an answer may take (default 600000; then 504)
      --grace MS           on SIGINT/SIGTERM, how long requests in flight may
                           finish before they are aborted (default 10000); the
                           router's data is then written out and it exits 0.
                           A second signal exits at once (130).
  understudy train --model PATH --data FILE.jsonl --out ADAPTER.gguf [options]
      Trains a LoRA adapter on FILE.jsonl, one {"messages": [...]} (what dataset
      export writes) or {"prompt": "...", "completion": "..."} per line, and writes
      it to ADAPTER.gguf (for --lora). Progress goes to stderr, the result (losses
      per epoch, tokens/s) to stdout as one JSON object. Ctrl-C stops after the
      current step and writes no adapter.
      --epochs N           passes over the data (default 3)
      --rank R, --alpha A  adapter rank (default 8) and alpha (default 2 x rank)
      --lr LR              peak learning rate (default 0.001; 1e-3 works too)
      --eval-split F       share of the examples held out for eval loss (default 0.1)
      --seed S             seed of the shuffle, split and new adapter (default 42)
      --window N           tokens per step, a multiple of 256 (default 256)
      --threads N          CPU threads (default: all cores)
      --targets a,b,c      matrices to adapt (default attn_q,attn_output,ffn_gate,ffn_up,ffn_down)
      --template NAME      chat template for {"messages"} lines (default: the model's)
      --resume ADAPTER     continue training an adapter file (its rank and targets)
  understudy train --from-cache-dir DIR [--model PATH] [--epochs N] [--lr LR]
                   [--rank R] [--alpha A] [--seed S] [--threads N] [--quiet]
      Runs one distillation round over the router's dataset in DIR: trains an
      adapter on the logged remote answers (--model or UNDERSTUDY_MODEL), scores
      it on each task's held-out rows and promotes it into DIR/adapters only if
      it does better. Progress goes to stderr, the round's report to stdout as
      one JSON object (exit 0 also when the adapter is kept: the report says
      why). Ctrl-C aborts the round and promotes nothing.
  understudy pull [--name NAME] [--sha256 HEX] [--models-dir DIR] [--timeout S]
                  [--progress] SOURCE
      Downloads a GGUF model into the models directory (UNDERSTUDY_MODELS_DIR,
      default ~/.cache/understudy/models), where --model NAME and UNDERSTUDY_MODEL
      find it by name. SOURCE is hf:OWNER/REPO/FILE.gguf[@REVISION] (a Hugging
      Face file; HF_TOKEN is sent for gated repositories) or an http(s) URL.
      A progress bar shows on a terminal (--progress: always); an interrupted
      download (Ctrl-C, a dropped connection, a stall) resumes where it stopped
      when run again. The file is checked against --sha256 or the sha256 the
      server gives (Hugging Face's LFS hash), and must be GGUF.
      --name NAME          short name (default: the file name without .gguf)
      --timeout S          give up after S seconds without data (default 30)
  understudy models [--json] [--models-dir DIR]
      Lists the pulled models: name, size, sha256, date and source.
  understudy adapters list [--cache-dir DIR] [--model PATH] [--json]
      Lists the adapters in DIR/adapters (all, or those of --model): version,
      status, parent, base model, rows, held-out score before -> after, time.
  understudy adapters rollback [--cache-dir DIR] [--model PATH] [--json]
      Makes the current adapter's parent current again (the base model when it
      has none); a router picks it up when it starts.

A model PATH (--model, UNDERSTUDY_MODEL, UNDERSTUDY_EMBEDDING_MODEL) may also be
the name of a pulled model (see \`understudy models\`).
Errors print "understudy: error [CODE]: message" and exit 1; usage errors exit 2.
Set UNDERSTUDY_LOG_LEVEL=info to see llama.cpp's own log.
`;

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** parseArgs with its errors turned into usage errors. */
export function parse(args: string[], options: Options): Parsed {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function requireModel(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new UsageError('--model PATH is required');
  // A pulled model's short name stands for its file.
  return resolveModel(value, process.env, '--model');
}

export function toNumber(value: unknown, flag: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  // Plain decimals only: Number() would also take '0x10', '1e3', ' 5' and ''.
  if (!isDecimal(value) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`${flag} expects ${integer ? 'an integer' : 'a number'}, got ${showValue(value)}`);
  }
  return n;
}
