// A promoted adapter is swapped into the running local model under traffic:
// streams that run while the round ends and the swap happens all complete,
// each stream's pieces make its result's text, and each text is, in full,
// either the base model's greedy answer or the new adapter's (never a mix),
// with the result naming the adapter that answered. The swap is held back (the
// test wraps the local backend's useAdapter) until streams are decoding, so
// the streams it overlaps are known, not left to scheduling: those must finish
// with the base model's answer, and those started once it is done with v1's.
// Then close() during an automatic round, with streams running, aborts the
// round and leaves the adapter folder byte for byte as it was; a restarted
// router serves v1. (The event loop ticking through a round is checked in
// distill-round.test.ts.)
//
// A local call sent while a swap is pending runs after it, with the new
// adapter, and its result must name that adapter: the mislabelled check below
// guards that (it once named the adapter current when the call was sent).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Router } from '../src/index.js';
import type { TrainingProgress } from '../src/router/learner.js';
import {
  ALPHA_ANSWER, adapterFiles, ask, distillHooks, distillRouter, freshDir, localAnswers, nextEvent, record,
  subjects, type DistillTeacher,
} from './distill-fixture.js';
import { within } from './helpers.js';

const ROUND_MS = 600_000; // a hang guard only
const LOOPS = 4; // concurrent callers, as many as the router's sequences

let teacher: DistillTeacher;
const dir = freshDir('distill-hotswap');
let router: Router | undefined;

// Alpha prompts, taught and not: the base model and v1 answer each differently.
const PROMPTS = [...subjects(0, 3), 'purple whale', 'lost kite', 'windy hill'].map((s) => ask('alpha', s));
let oldRef: string[];
let newRef: string[];

interface Streamed { id: number; i: number; text: string; pieces: string; adapter: number | undefined; afterSwap: boolean }

/** What a watcher of streams hears: a stream's first piece (it is decoding), and its end. */
interface Watch { decoding(id: number): void; ended(id: number): void }

let streamIds = 0;

/** One streamed local call of PROMPTS[i]; `afterSwap` is stored with it as given at the start. */
async function streamOne(r: Router, i: number, afterSwap = false, watch?: Watch): Promise<Streamed> {
  const id = streamIds++;
  const stream = r.chat({ ...PROMPTS[i]!, route: 'local', stream: true });
  let pieces = '';
  try {
    for await (const piece of stream) {
      if (pieces === '') watch?.decoding(id);
      pieces += piece;
    }
  } finally {
    watch?.ended(id);
  }
  const result = await stream.result;
  return { id, i, text: result.text, pieces, adapter: result.adapter, afterSwap };
}

distillHooks(test, (t) => { teacher = t; }, () => router, dir);

test('streams running while a promotion swaps the adapter all complete, each with the old or the new answer in full', async () => {
  router = await within(distillRouter(teacher, dir));
  for (const s of subjects(0, 16)) await within(router.chat(ask('alpha', s)));
  oldRef = await localAnswers(router, PROMPTS);

  // The swap of the promotion waits until a stream has finished and IN_FLIGHT streams are
  // decoding (each has yielded a piece, so the native context has it): those are the streams
  // the swap overlaps, noted at the moment it starts.
  const IN_FLIGHT = 3;
  const decoding = new Set<number>();
  let finished = 0;
  let overlapped: number[] | undefined;
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  const check = () => {
    if (overlapped || finished < 1 || decoding.size < IN_FLIGHT) return;
    overlapped = [...decoding];
    openGate();
  };
  const watch: Watch = {
    decoding(id) {
      decoding.add(id);
      check();
    },
    ended(id) {
      decoding.delete(id);
      finished++;
      check();
    },
  };
  const local = router.local!;
  const useAdapter = local.useAdapter!.bind(local);
  let swaps = 0;
  let swapped = false;
  local.useAdapter = async (file) => {
    swaps++;
    await gate;
    await useAdapter(file);
    swapped = true;
  };

  // Traffic from the evaluation of the candidate (the round's last phase) until each loop has
  // made a few calls started after the swap was done.
  const done: Streamed[] = [];
  const errors: unknown[] = [];
  const evaluating = nextEvent(router, 'training', (p: TrainingProgress) => p.phase === 'evaluate', ROUND_MS);
  const round = router.train();
  round.catch(() => undefined);
  await within(evaluating, ROUND_MS, 'the evaluation phase');
  let next = 0;
  const loop = async () => {
    let after = 0;
    while (after < 3) {
      if (swapped) after++;
      try {
        done.push(await within(streamOne(router!, next++ % PROMPTS.length, swapped, watch)));
      } catch (err) {
        errors.push(err);
        return;
      }
    }
  };
  const loops = Array.from({ length: LOOPS }, loop);
  const report = await within(round, ROUND_MS, 'the round');
  await within(Promise.all(loops));
  assert.ok(report.promoted, `the round was not promoted: ${report.reason}`);
  assert.is(report.version, 1);
  assert.is(swaps, 1, 'the promotion did not swap the adapter once');
  newRef = await localAnswers(router, PROMPTS);
  assert.equal(newRef.map((t) => t.trim()), PROMPTS.map(() => ALPHA_ANSWER), 'v1 does not answer alpha as taught');
  PROMPTS.forEach((_, i) => assert.is.not(oldRef[i], newRef[i], `the base model already answers prompt ${i} as v1 does`));

  assert.equal(errors, [], 'a stream failed across the swap');
  const mislabelled: string[] = [];
  for (const d of done) {
    assert.is(d.pieces, d.text, `stream of prompt ${d.i}: its pieces are not its result's text`);
    const which = d.text === oldRef[d.i] ? 'old' : d.text === newRef[d.i] ? 'new' : 'mixed';
    assert.ok(which !== 'mixed', `prompt ${d.i} got neither the old nor the new answer: ${JSON.stringify(d.text)}`);
    if (d.adapter !== (which === 'new' ? 1 : undefined)) mislabelled.push(`prompt ${d.i}: ${which} answer, result.adapter ${d.adapter}`);
  }
  // The streams decoding when the swap started finish as they began: the old answer in full.
  assert.is(overlapped?.length, IN_FLIGHT);
  const during = done.filter((d) => overlapped!.includes(d.id));
  assert.is(during.length, IN_FLIGHT, 'a stream the swap overlapped did not complete');
  for (const d of during) {
    assert.is(d.text, oldRef[d.i], `stream of prompt ${d.i}, decoding when the swap started, did not end with the old answer`);
    assert.is(d.adapter, undefined);
  }
  // The streams started once it was done get v1, and say so.
  const after = done.filter((d) => d.afterSwap);
  assert.ok(after.length >= LOOPS * 3, `only ${after.length} streams started after the swap`);
  for (const d of after) {
    assert.is(d.text, newRef[d.i], `stream of prompt ${d.i}, started after the swap, did not get v1's answer`);
    assert.is(d.adapter, 1);
  }
  const olds = done.filter((d) => d.text === oldRef[d.i]).length;
  console.log(`  ${done.length} streams: ${olds} old answers, ${done.length - olds} new; ${IN_FLIGHT} decoding when the swap started, ${after.length} started after it`);
  // The result names the adapter that answered: a call sent while the swap was pending runs
  // after it, with the new adapter, and must say so.
  assert.equal(mislabelled, [], `results that name another adapter than the one that answered:\n${mislabelled.join('\n')}`);
  local.useAdapter = useAdapter;
});

test('close() during an automatic round with streams running aborts it and leaves the adapter folder as it was', async () => {
  await router!.close();
  router = await within(distillRouter(teacher, dir, { trainEvery: 8 }));
  const files = adapterFiles(dir);
  const manifestText = readFileSync(join(dir, 'adapters', 'manifest.json'), 'utf8');
  assert.equal(files, ['manifest.json', 'v1.gguf']);
  const phases = record(router, 'training');
  const rounds = record(router, 'round');
  const training = nextEvent(router, 'training', (p) => p.phase === 'train' && p.step !== undefined, ROUND_MS);
  for (const s of subjects(40, 8)) await within(router.chat(ask('beta', s)));
  await within(training, ROUND_MS, 'a training step of the automatic round');
  const streams = [0, 1, 2, 3].map((i) => streamOne(router!, i));
  await within(router.close(), ROUND_MS, 'close() during a round');
  const r = router;
  router = undefined;
  const answered = await within(Promise.all(streams));
  for (const d of answered) assert.is(d.pieces, d.text);
  assert.equal(answered.map((d) => d.text), newRef.slice(0, 4), 'the streams running at close() did not get v1\'s answers');
  assert.is(phases.at(-1)?.phase, 'aborted', `phases: ${phases.map((p) => p.phase)}`);
  assert.equal(rounds, [], 'an aborted round reported');
  assert.equal(adapterFiles(dir), files, 'close() during a round left files behind');
  assert.is(readFileSync(join(dir, 'adapters', 'manifest.json'), 'utf8'), manifestText, 'the manifest changed');
  let closedErr: (Error & { code?: string }) | undefined;
  try {
    r.readiness('alpha');
  } catch (err) {
    closedErr = err as Error & { code?: string };
  }
  assert.is(closedErr?.code, 'CLOSED');

  // Restarted: v1 serves as before; the aborted round's rows are still to be trained on.
  router = await within(distillRouter(teacher, dir));
  assert.equal(router.adapters().map((a) => [a.version, a.status]), [[1, 'current']]);
  assert.equal(await localAnswers(router, PROMPTS), newRef);
  const report = await within(router.train(), ROUND_MS);
  assert.is(report.round, 2, 'the aborted round was counted');
  assert.ok(report.tasks.some((t) => t.task === 'beta' && t.trainRows + t.heldOutRows === 8), `beta rows: ${JSON.stringify(report.tasks)}`);
});

test.run();
