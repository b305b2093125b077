// Each measurement that loads a model runs in a child process of run.ts (so each
// has its own peak RSS, and one library's threads or crashes cannot touch another's
// figures). The child prints one `BENCH-RESULT {json}` line on stdout; its log
// goes to stderr, which the parent passes through.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { watchPid } from './machine.js';
import { repoRoot } from './models.js';

export const RESULT_PREFIX = 'BENCH-RESULT ';

/** Runs bench/<script> with `--model FILE --options JSON` and returns what it printed after RESULT_PREFIX. */
export function runChild<T>(script: string, model: string, options: unknown, what: string, env?: Record<string, string>): Promise<T> {
  const path = fileURLToPath(new URL(`./${script}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', path, '--model', model, '--options', JSON.stringify(options)], {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env },
  });
  const unwatch = watchPid(child.pid);
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  return new Promise((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      unwatch();
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code !== 0 || !line) return reject(new Error(`${what} failed (${code ?? signal}); its errors are above`));
      resolvePromise(JSON.parse(line.slice(RESULT_PREFIX.length)) as T);
    });
  });
}

/** Whether the module at `metaUrl` is the script node was started with. */
export { isMain as invokedDirectly } from '../scripts/is-main.js';

/** Child mode: parses `--model FILE --options JSON`, runs `measure`, prints its result line. */
export function childMain<O, R>(script: string, measure: (model: string, options: O, log: (msg: string) => void) => Promise<R>): void {
  const { values } = parseArgs({ options: { model: { type: 'string' }, options: { type: 'string' } } });
  if (!values.model || !values.options) {
    console.error(`usage: node --import tsx bench/${script} --model FILE --options JSON (run.ts does this)`);
    process.exit(2);
  }
  measure(values.model, JSON.parse(values.options) as O, (m) => console.error(m)).then(
    (r) => {
      // Some libraries keep handles open after dispose (node-llama-cpp's log timers):
      // once the result is out, end here rather than wait for them.
      process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(r)}\n`, () => process.exit(0));
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.stack ?? err.message : String(err));
      process.exit(1);
    },
  );
}
