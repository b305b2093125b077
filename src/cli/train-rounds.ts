// `understudy train --from-cache-dir DIR`: one distillation round over the
// router's dataset in DIR, as router.train() runs it (held-out split, training
// in a worker, the gate, promotion into DIR/adapters). Progress goes to
// stderr, the round's report to stdout as one JSON object; a round that is not
// promoted still exits 0, since the report says why.
import { existsSync, statSync } from 'node:fs';
import { UnderstudyError } from '../errors.js';
import { resolveSettings } from '../router/config.js';
import { createRouter } from '../train/attach.js';
import { distillSettings, type DistillOptions } from '../train/options.js';
import type { Router } from '../router/router.js';
import { roundProgress } from './round-progress.js';
import { toNumber, UsageError, type Parsed } from './usage.js';
import { showValue } from '../validate.js';

/** The exit code of a run stopped by Ctrl-C (128 + SIGINT), as for file training. */
const INTERRUPTED_EXIT = 130;

/** Flags of file training that mean nothing for a round, with what to do instead. */
const FILE_ONLY: Record<string, string> = {
  data: 'a round trains on the dataset the router logged in the cache directory',
  out: 'a promoted adapter goes to the cache directory\'s adapters/ folder (see `understudy adapters list`)',
  resume: 'a round continues the current adapter of the model by itself',
  'eval-split': 'a round holds out a stable share of each task\'s rows',
  template: 'a round uses the router\'s chat template (UNDERSTUDY_MODEL\'s own, else chatml)',
  window: 'a round chooses its window from the local context size',
  targets: 'a round adapts the default matrices',
};

export async function roundCommand(values: Parsed['values'], positionals: string[], learningRate: number | undefined): Promise<number> {
  const dir = values['from-cache-dir'];
  if (typeof dir !== 'string' || dir === '') throw new UsageError('--from-cache-dir expects a folder, got ""');
  for (const flag of Object.keys(FILE_ONLY)) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} cannot be used with --from-cache-dir: ${FILE_ONLY[flag]}`);
  }
  if (positionals.length > 0) throw new UsageError(`train takes no positional arguments, got ${showValue(positionals[0])}`);
  const model = typeof values.model === 'string' ? values.model : undefined;
  if (model === '') throw new UsageError('--model expects a path, got ""');
  if (model === undefined && !process.env.UNDERSTUDY_MODEL?.trim()) {
    throw new UsageError('train --from-cache-dir needs the local model: --model PATH or UNDERSTUDY_MODEL');
  }
  const training: DistillOptions = {
    ...defined('epochs', toNumber(values.epochs, '--epochs', true)),
    ...defined('learningRate', learningRate),
    ...defined('rank', toNumber(values.rank, '--rank', true)),
    ...defined('alpha', toNumber(values.alpha, '--alpha', false)),
    ...defined('seed', toNumber(values.seed, '--seed', true)),
    ...defined('threads', toNumber(values.threads, '--threads', true)),
  };
  checkTraining(training);
  // Reading a dataset that is not there is a mistake in the path, not an empty round.
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UnderstudyError('IO_ERROR', `cache directory not found: ${dir}`);
  }

  // UNDERSTUDY_QUIET silences a round as it does a call (a bad value fails here as in the router).
  const quiet = values.quiet === true || resolveSettings(undefined, process.env).quiet;
  const progress = roundProgress(process.stderr, quiet);
  const abort = new AbortController();
  const onSigint = () => {
    abort.abort();
    progress.note('[understudy] stopping the round (Ctrl-C again to quit at once)');
  };
  let router: Router | undefined;
  process.once('SIGINT', onSigint);
  try {
    router = await createRouter({
      cacheDir: dir,
      ...(model !== undefined ? { model } : {}),
      // A round never calls the remote: leave it out unless the environment says otherwise.
      ...(process.env.UNDERSTUDY_USE_API === undefined ? { useApi: false } : {}),
      // Asking for a round is asking for training, whatever UNDERSTUDY_TRAIN_LOCAL says about automatic ones.
      trainLocal: true,
      ...(quiet ? { quiet: true } : { log: (line: string) => progress.note(line) }),
      training,
    });
    router.on('training', (event) => progress.update(event));
    const report = await router.train({ signal: abort.signal });
    progress.stop();
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return 0;
  } catch (err) {
    progress.stop();
    if (abort.signal.aborted && err instanceof UnderstudyError && err.code === 'ABORTED') {
      process.stderr.write('understudy: error [ABORTED]: the round was stopped by Ctrl-C; no adapter was promoted\n');
      return INTERRUPTED_EXIT;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    await router?.close();
  }
}

const FLAGS: Record<string, string> = { epochs: '--epochs', learningRate: '--lr', rank: '--rank', alpha: '--alpha', seed: '--seed', threads: '--threads' };

/** The round's options checked before any model loads, the message naming the flag rather than the option. */
function checkTraining(training: DistillOptions): void {
  try {
    distillSettings(training);
  } catch (err) {
    if (!(err instanceof UnderstudyError) || err.code !== 'INVALID_ARGUMENT') throw err;
    throw new UsageError(err.message.replace(/\btraining\.(\w+)/, (all, key: string) => FLAGS[key] ?? all));
  }
}

function defined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
