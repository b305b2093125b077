// `understudy train`: trains a LoRA adapter on a JSONL file. Progress goes to
// stderr, the result to stdout as one JSON object, so `> result.json` keeps
// exactly what a script needs. With --from-cache-dir it runs a distillation
// round over the router's dataset instead (train-rounds.ts).
import { access, constants } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UnderstudyError } from '../errors.js';
import { loadModel, type Model } from '../llama/model.js';
import type { TrainLoraOptions } from '../llama/training-options.js';
import type { TrainingExample } from '../llama/training-data.js';
import type { TrainingJob } from '../llama/training-job.js';
import { atLine, readTrainingData } from './train-data.js';
import { trainingProgress } from './train-progress.js';
import { roundCommand } from './train-rounds.js';
import { parse, requireModel, toNumber, UsageError } from './usage.js';
import { errorText, showValue } from '../validate.js';

/** The exit code of a run stopped by Ctrl-C, as for `generate` (128 + SIGINT). */
export const INTERRUPTED_EXIT = 130;

export async function trainCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string', short: 'm' },
    data: { type: 'string', short: 'd' },
    out: { type: 'string', short: 'o' },
    epochs: { type: 'string' },
    rank: { type: 'string' },
    alpha: { type: 'string' },
    lr: { type: 'string' },
    seed: { type: 'string' },
    'eval-split': { type: 'string' },
    resume: { type: 'string' },
    template: { type: 'string' },
    threads: { type: 'string', short: 't' },
    window: { type: 'string' },
    targets: { type: 'string' },
    'from-cache-dir': { type: 'string' },
    quiet: { type: 'boolean' },
  });
  if (values['from-cache-dir'] !== undefined) return roundCommand(values, positionals, learningRate(values.lr));
  if (values.quiet !== undefined) throw new UsageError('--quiet goes with --from-cache-dir');
  const modelPath = requireModel(values.model);
  const data = requiredString(values.data, '--data FILE.jsonl');
  const out = requiredString(values.out, '--out ADAPTER.gguf');
  if (positionals.length > 0) throw new UsageError(`train takes no positional arguments, got ${showValue(positionals[0])}`);
  const options: TrainLoraOptions = {
    out,
    epochs: toNumber(values.epochs, '--epochs', true),
    rank: toNumber(values.rank, '--rank', true),
    alpha: toNumber(values.alpha, '--alpha', false),
    learningRate: learningRate(values.lr),
    seed: toNumber(values.seed, '--seed', true),
    evalSplit: toNumber(values['eval-split'], '--eval-split', false),
    resumeFrom: optionalString(values.resume, '--resume'),
    template: optionalString(values.template, '--template'),
    threads: toNumber(values.threads, '--threads', true),
    window: toNumber(values.window, '--window', true),
    targets: targets(values.targets),
  };
  await checkWritable(out);

  // From here on, Ctrl-C stops the work (after the current step) instead of the
  // process; a second one ends the process at once, the default for SIGINT.
  const abort = new AbortController();
  const progress = trainingProgress(process.stderr);
  const onSigint = () => {
    abort.abort();
    progress.note('stopping after the current step (Ctrl-C again to quit at once)');
  };
  process.once('SIGINT', onSigint);
  let model: Model | undefined;
  let job: TrainingJob | undefined;
  try {
    const { examples, lines } = await readTrainingData(data, abort.signal);
    model = await loadModel(modelPath, { trainable: true, signal: abort.signal });
    job = model.trainLora(examples as TrainingExample[], { ...options, signal: abort.signal });
    try {
      for await (const event of job) progress.update(event);
    } catch (err) {
      throw atLine(err, data, lines);
    }
    const r = await job.result;
    progress.stop();
    process.stdout.write(`${JSON.stringify({
      adapter: r.adapter, epochs: r.epochs, steps: r.steps, trainLoss: r.trainLoss, evalLoss: r.evalLoss,
      tokens: r.tokens, tokensPerSecond: r.tokensPerSecond, seconds: r.seconds,
    })}\n`);
    return 0;
  } catch (err) {
    progress.stop();
    if (abort.signal.aborted && err instanceof UnderstudyError && err.code === 'ABORTED') {
      process.stderr.write(`understudy: error [ABORTED]: training was stopped by Ctrl-C; no adapter was written to ${out}\n`);
      return INTERRUPTED_EXIT;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    model?.dispose();
  }
}

function requiredString(value: unknown, flag: string): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

function optionalString(value: unknown, flag: string): string | undefined {
  if (value === '') throw new UsageError(`${flag} expects a value, got ""`);
  return value as string | undefined;
}

// Learning rates are written as 1e-4 as often as 0.0001, so an exponent is allowed here.
function learningRate(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?$/.test(value) || !Number.isFinite(Number(value))) {
    throw new UsageError(`--lr expects a number such as 0.001 or 1e-3, got ${showValue(value)}`);
  }
  return Number(value);
}

function targets(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const list = String(value).split(',').map((t) => t.trim());
  if (list.some((t) => t === '')) throw new UsageError(`--targets expects names separated by commas, such as attn_q,ffn_up, got ${showValue(value)}`);
  return list;
}

// The adapter is written after the last epoch: a folder that cannot take it
// should fail now, not after hours of training.
async function checkWritable(out: string): Promise<void> {
  const folder = dirname(out);
  try {
    await access(folder, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code;
    const why = code === 'ENOENT' || code === 'ENOTDIR' ? `the folder ${folder} does not exist` : errorText(err);
    throw new UnderstudyError('IO_ERROR', `cannot write the adapter to ${out}: ${why}`, { cause: err });
  }
}
