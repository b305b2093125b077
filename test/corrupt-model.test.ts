// Corrupted model files never crash the process: bytes of stories260K's header
// and metadata are overwritten (deterministically), and every load either works
// or fails with INVALID_MODEL_FILE. Runs in this process on purpose: a native
// abort would kill the file, and the test runner counts that as a failure.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../src/index.js';
import { storiesModel, within } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-corrupt-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function mutations(seed: number, count: number): Buffer[] {
  const source = readFileSync(storiesModel);
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  return Array.from({ length: count }, (_, i) => {
    const buf = Buffer.from(source);
    for (let f = 0; f < 1 + Math.floor(rnd() * 4); f++) {
      const at = 4 + Math.floor(rnd() * 20_000); // the header, metadata and tensor index
      if (i % 2) buf.fill(0xff, at, at + 8); // huge counts and lengths
      else buf[at] = Math.floor(rnd() * 256);
    }
    return buf;
  });
}

test('40 corrupted headers: each loads and generates, or fails with INVALID_MODEL_FILE', async () => {
  const outcomes = { loaded: 0, refused: 0 };
  for (const [i, bytes] of mutations(11, 40).entries()) {
    const path = join(dir, `m${i}.gguf`);
    writeFileSync(path, bytes);
    try {
      const model = await within(loadModel(path));
      const ctx = await within(model.createContext({ contextSize: 64 }));
      await within(ctx.complete('Once', { maxTokens: 4, temperature: 0 }));
      model.dispose();
      outcomes.loaded++;
    } catch (err) {
      assert.is((err as { code?: string }).code, 'INVALID_MODEL_FILE', `case ${i}: ${(err as Error).message}`);
      outcomes.refused++;
    }
  }
  console.log(`  ${outcomes.loaded} loaded, ${outcomes.refused} refused`);
  assert.ok(outcomes.refused > 10, 'the corruption should break most files');
});

test.run();
