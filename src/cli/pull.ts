// `understudy pull SOURCE`: a GGUF file into the models directory, with a
// progress bar on a terminal and one line on stdout when it is there.
// Ctrl-C stops the download and keeps the part for the next try (exit 130).
import { UnderstudyError } from '../errors.js';
import { pullModel } from '../models/pull.js';
import { showValue } from '../validate.js';
import { bytes, pullProgress } from './pull-progress.js';
import { parse, toNumber, UsageError } from './usage.js';

export async function pullCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    name: { type: 'string' },
    sha256: { type: 'string' },
    'models-dir': { type: 'string' },
    timeout: { type: 'string' },
    progress: { type: 'boolean' },
  });
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'pull needs a source: hf:OWNER/REPO/FILE.gguf or an http(s) URL'
      : `pull takes one source, got ${showValue(positionals[1])} too`);
  }
  for (const flag of ['name', 'sha256', 'models-dir'] as const) {
    if (values[flag] === '') throw new UsageError(`--${flag} expects a value, got ""`);
  }
  const timeout = toNumber(values.timeout, '--timeout', false);
  if (timeout !== undefined && !(timeout > 0)) throw new UsageError(`--timeout expects a positive number of seconds, got ${showValue(values.timeout)}`);
  const progress = pullProgress(process.stderr, values.progress === true);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  try {
    const r = await pullModel(positionals[0]!, {
      ...(typeof values.name === 'string' ? { name: values.name } : {}),
      ...(typeof values.sha256 === 'string' ? { sha256: values.sha256 } : {}),
      ...(typeof values['models-dir'] === 'string' ? { dir: values['models-dir'] } : {}),
      ...(timeout !== undefined ? { stallMs: timeout * 1000 } : {}),
      signal: controller.signal,
      onProgress: (p) => progress.update(p),
    });
    progress.stop();
    if (r.alreadyPresent) {
      process.stdout.write(`${r.name} is already pulled: ${r.path}\n`);
      return 0;
    }
    const resumed = r.resumedFrom > 0 ? `, resumed at ${bytes(r.resumedFrom)}` : '';
    const checked = r.verifiedBy ? `verified against ${r.verifiedBy}` : 'no hash to verify against';
    process.stdout.write(`pulled ${r.name}: ${r.path} (${bytes(r.size)}${resumed}; sha256 ${r.sha256}, ${checked})\n`);
    return 0;
  } catch (err) {
    progress.stop();
    if (controller.signal.aborted && err instanceof UnderstudyError && err.code === 'ABORTED') {
      process.stderr.write(`understudy: pull interrupted: ${err.message}; run the same command again to resume\n`);
      return 130;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
