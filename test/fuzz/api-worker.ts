// Child process of fuzz-arguments.test.ts: case i calls one public function
// (api-sites.ts) with one argument slot replaced by one hostile value
// (hostile-values.ts), awaits what it returns, and judges any failure. A call
// that neither settles nor fails within the time limit counts as a stall, and
// the child exits so that nothing it left running affects the next cases.
//   node --import tsx test/fuzz/api-worker.ts --from A --to B --dir D
import { join } from 'node:path';
import { makeLoraAdapter } from '../../scripts/make-lora.js';
import { MockBackend, createRouter, loadModel } from '../../src/index.js';
import { storiesModel } from '../helpers.js';
import { cases, withSlot, type Fixtures } from './api-sites.js';
import { STALL_EXIT } from './child.js';
import { judge, knownCodes, range, runWorker, type Verdict } from './worker-kit.js';

const CASE_LIMIT_MS = 8_000;
const { arg } = range();
const dir = arg('dir')!;
const codes = await knownCodes();
const all = cases();
const caseOf = (i: number) => all[i]!;

// Failures nobody awaited (an unhandled rejection, an exception thrown from a
// callback) belong to the case that caused them.
const strays: unknown[] = [];
process.on('unhandledRejection', (err) => strays.push(err));
process.on('uncaughtException', (err) => strays.push(err));

const adapterPath = (await makeLoraAdapter({ model: storiesModel, out: join(dir, 'adapter.gguf'), seed: 3 })).path;
const model = await loadModel(storiesModel);
const f: Fixtures = {
  model,
  // One thread each: ggml's threads spin, and the suite shares two cores with other tests.
  ctx: await model.createContext({ contextSize: 64, threads: 1 }),
  embedder: await model.createContext({ contextSize: 64, embeddings: true, threads: 1 }),
  adapter: await model.loadLora(adapterPath),
  adapterPath,
  router: await createRouter({ local: new MockBackend(), remote: new MockBackend(), cacheDir: join(dir, 'router') }),
  modelPath: storiesModel,
  dir,
};

async function run(i: number): Promise<Verdict> {
  const { site, slot, value: [, make] } = caseOf(i);
  let result: unknown;
  let timer: NodeJS.Timeout | undefined;
  const stall = new Promise<'stall'>((resolve) => { timer = setTimeout(() => resolve('stall'), CASE_LIMIT_MS); });
  try {
    const call = Promise.resolve().then(() => site.call(f, withSlot(site.args(f), slot, make())));
    const settled = await Promise.race([call, stall]);
    if (settled === 'stall') {
      process.stdout.write(`RESULT ${i} ${JSON.stringify({ outcome: 'uncoded', detail: `neither settled nor failed within ${CASE_LIMIT_MS} ms` })}\n`);
      process.exit(STALL_EXIT);
    }
    result = settled;
    return { outcome: 'ok', detail: '' };
  } catch (err) {
    return judge(err, codes);
  } finally {
    clearTimeout(timer);
    if (result !== undefined && site.cleanup) await Promise.resolve().then(() => site.cleanup!(result)).catch(() => {});
  }
}

await runWorker(
  (i) => { const c = caseOf(i); return `${c.site.name} ${c.slot} = ${c.value[0]}`; },
  async (i) => {
    const verdict = await run(i);
    await new Promise((resolve) => setImmediate(resolve));
    if (strays.length > 0) {
      const err = strays.splice(0);
      const v = judge(err[0], codes);
      return { outcome: 'uncoded', detail: `unhandled: ${v.outcome === 'coded' ? `${v.code}: ${v.detail}` : v.detail}` };
    }
    return verdict;
  },
);
await f.router.close();
await model.dispose();
