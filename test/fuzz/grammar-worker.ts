// Child process of fuzz-grammars.test.ts: case i generates 4 tokens under one
// hostile grammar or JSON schema (grammar-cases.ts), greedily and with sampling.
//   node --import tsx test/fuzz/grammar-worker.ts --from A --to B
import { loadModel } from '../../src/index.js';
import { storiesModel } from '../helpers.js';
import { GRAMMARS } from './grammar-cases.js';
import { judge, knownCodes, runWorker } from './worker-kit.js';

const codes = await knownCodes();
const model = await loadModel(storiesModel);
// One thread: ggml's threads spin, and the suite shares two cores with other tests.
const ctx = await model.createContext({ contextSize: 128, threads: 1 });

await runWorker(
  (i) => GRAMMARS[i]![0],
  async (i) => {
    try {
      const constraint = GRAMMARS[i]![1]();
      await ctx.complete('Once', { maxTokens: 4, temperature: 0, ...constraint });
      await ctx.complete('{', { maxTokens: 4, temperature: 1, seed: i, ...constraint });
      return { outcome: 'ok', detail: '' };
    } catch (err) {
      return judge(err, codes);
    }
  },
);
await model.dispose();
