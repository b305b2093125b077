// Child process that exercises the model files listed in a JSON manifest
// ([{ what, path }]), one case each (exercise.ts).
//   node --import tsx test/fuzz/files-worker.ts --from A --to B --manifest M
import { readFileSync } from 'node:fs';
import { exercise } from './exercise.js';
import { knownCodes, range, runWorker } from './worker-kit.js';

const { arg } = range();
const files = JSON.parse(readFileSync(arg('manifest')!, 'utf8')) as { what: string; path: string }[];
const codes = await knownCodes();
await runWorker((i) => files[i]!.what, (i) => exercise(files[i]!.path, codes));
