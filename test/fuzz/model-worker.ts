// Child process of fuzz-model-files.test.ts: for each case, writes one mutated
// copy of the test model (model-mutations.ts) and exercises it (exercise.ts).
//   node --import tsx test/fuzz/model-worker.ts --from A --to B --seed S --dir D
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { storiesModel } from '../helpers.js';
import { exercise } from './exercise.js';
import { mutate } from './model-mutations.js';
import { parseRaw } from './raw-gguf.js';
import { knownCodes, range, runWorker } from './worker-kit.js';

const { arg } = range();
const seed = Number(arg('seed') ?? 1);
const dir = arg('dir')!;
const codes = await knownCodes();
const source = readFileSync(storiesModel);
const raw = await parseRaw(storiesModel);

await runWorker(
  (i) => mutate(source, raw, seed, i).description,
  async (i) => {
    const path = join(dir, `case-${seed}-${i}.gguf`);
    writeFileSync(path, mutate(source, raw, seed, i).bytes);
    try {
      return await exercise(path, codes);
    } finally {
      rmSync(path, { force: true });
    }
  },
);
