// The distillation loop end to end, as a user meets it: stories260K as the
// local model, a loopback teacher behind the real openai client, the router's
// own training rounds. A task the teacher answers with a fixed sentence that
// stories260K does not say starts remote; an automatic round trains on its rows,
// the held-out answers rise past the threshold, readiness follows from the
// held-out scores, and its calls go local with the teacher's answer. A task
// never taught stays remote. Then the teacher turns to noise: the next round's
// candidate is worse on the held-out prompts and is not promoted.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RoundReport, Router } from '../src/index.js';
import {
  ALPHA_ANSWER, adapterFiles, ask, distillHooks, distillRouter, freshDir, manifest, nextEvent, record, similarity,
  subjects, teacherAnswer, alphaPrompt, TRAINING, type DistillTeacher,
} from './distill-fixture.js';
import { within } from './helpers.js';

const ROUND_MS = 600_000; // a hang guard only: the machine running the tests may be very busy
const TRAIN_EVERY = 16;
// Three times the fixture's learning rate: it teaches alpha as well (12 of 12
// answers exact), and a candidate trained on the noise then takes the noise in
// and answers the old prompts with junk. At 1e-2 the noise round's candidate
// still answered the old prompts right, and learning the noise's first word
// raised its similarity to the noise answers a little: mean 0.294 -> 0.305,
// over minGain, and it was promoted (see the report of this file's author).
const HARD = { ...TRAINING, learningRate: 3e-2 };

let teacher: DistillTeacher;
const dir = freshDir('distill-workload');
let router: Router | undefined;
const lines: string[] = [];
let first: RoundReport;

distillHooks(test, (t) => { teacher = t; }, () => router, dir);

test('a taught task starts remote, an automatic round trains it, and its calls go local with the teacher\'s answer', async () => {
  router = await within(distillRouter(teacher, dir, { trainEvery: TRAIN_EVERY, training: HARD }, lines));
  const readinessEvents = record(router, 'readiness');
  const adapterEvents = record(router, 'adapter');
  const calls = record(router, 'call');
  assert.equal(router.adapters(), [], 'a new cache directory has no adapters');
  const start = router.readiness('alpha');
  assert.is(start.readiness, null);
  assert.is(start.ready, false);

  // TRAIN_EVERY teacher calls: each goes remote (not ready), and the last starts a round.
  const roundDone = nextEvent(router, 'round', () => true, ROUND_MS);
  for (const s of subjects(0, TRAIN_EVERY)) {
    const r = await within(router.chat(ask('alpha', s)));
    assert.is(r.route, 'remote', `before any round, ${s} went ${r.route}`);
    assert.is(r.text, ALPHA_ANSWER);
    assert.is(r.adapter, undefined);
  }
  assert.ok(calls.every((c) => c.reason === 'not ready'), `reasons: ${calls.map((c) => c.reason)}`);
  assert.is(teacher.completions(), TRAIN_EVERY);
  first = await within(roundDone, ROUND_MS, 'the automatic round');
  console.log(`  round 1: ${JSON.stringify(first)}`);

  assert.is(first.trigger, 'auto');
  assert.is(first.round, 1);
  assert.is(first.parent, null);
  assert.ok(first.promoted, `the round was not promoted: ${first.reason}`);
  assert.is(first.version, 1);
  const alpha = first.tasks.find((t) => t.task === 'alpha');
  assert.ok(alpha, 'the report has no line for alpha');
  assert.is(alpha.trainRows + alpha.heldOutRows, TRAIN_EVERY, 'every row is either trained on or held out');
  assert.ok(alpha.heldOutRows >= 3, `only ${alpha.heldOutRows} held-out rows`);
  assert.is(first.rows, alpha.trainRows);
  // The base model does not say the teacher's sentence; the trained adapter does.
  assert.ok(alpha.before !== null && alpha.before < 0.5, `the base model already scores ${alpha.before}`);
  assert.ok(alpha.after !== null && alpha.after >= 0.72, `held-out similarity after training: ${alpha.after}`);
  assert.is(alpha.change, 'better');
  assert.ok(first.steps > 0 && first.loss !== null && Number.isFinite(first.loss), `steps ${first.steps}, loss ${first.loss}`);

  // The held-out scores are the task's readiness under v1: ready without any shadow check.
  const ready = router.readiness('alpha');
  assert.is(ready.ready, true, `readiness after promotion: ${JSON.stringify(ready)}`);
  assert.is(ready.comparisons, alpha.heldOutRows);
  assert.ok(Math.abs(ready.readiness! - alpha.after!) < 1e-9, `readiness ${ready.readiness} is not the held-out mean ${alpha.after}`);
  assert.equal(readinessEvents.map((e) => [e.task, e.ready]), [['alpha', true]]);
  assert.equal(adapterEvents, [{ action: 'promoted', version: 1, previous: null }]);
  const [v1] = router.adapters();
  assert.is(router.adapters().length, 1);
  assert.is(v1!.version, 1);
  assert.is(v1!.status, 'current');
  assert.is(v1!.file, join(dir, 'adapters', 'v1.gguf'));
  assert.equal(adapterFiles(dir).filter((f) => f.endsWith('.gguf')), ['v1.gguf']);
  assert.ok(lines.some((l) => /^\[understudy\] train +round 1 .*promoted v1/.test(l)), `no round line in the log:\n${lines.join('\n')}`);

  // Now alpha goes local: prompts it trained on, held out, and never seen; the teacher is not asked.
  const asked = teacher.completions();
  const prompts = [...subjects(0, 4), ...subjects(100, 8)];
  let exact = 0;
  const sims: number[] = [];
  for (const s of prompts) {
    const r = await within(router.chat(ask('alpha', s)));
    assert.is(r.route, 'local', `after promotion, ${s} went ${r.route}`);
    assert.is(r.adapter, 1);
    const sim = similarity(r.text, teacherAnswer(alphaPrompt(s)));
    sims.push(sim);
    if (r.text.trim() === ALPHA_ANSWER) exact++;
    assert.ok(sim >= 0.72, `the local answer ${JSON.stringify(r.text)} to ${JSON.stringify(s)} is far from the teacher's (${sim.toFixed(3)})`);
  }
  console.log(`  local answers: ${exact} of ${prompts.length} exactly the teacher's, similarity ${Math.min(...sims).toFixed(3)}..${Math.max(...sims).toFixed(3)}`);
  assert.ok(exact >= prompts.length / 2, `only ${exact} of ${prompts.length} local answers are exactly the teacher's`);
  assert.is(teacher.completions(), asked, 'a local call reached the teacher');

  // A task never taught has no readiness and stays remote.
  const beta = await within(router.chat(ask('beta', 'blue park')));
  assert.is(beta.route, 'remote');
  assert.is(router.readiness('beta').readiness, null);
  assert.is(router.readiness('beta').ready, false);
});

test('when the teacher turns to noise, the next round\'s candidate is worse and is not promoted', async () => {
  // A restarted router, without automatic rounds: it serves v1 at once.
  await router!.close();
  router = await within(distillRouter(teacher, dir, { trainEvery: 1000, training: HARD }, lines));
  assert.equal(router.adapters().map((a) => [a.version, a.status]), [[1, 'current']]);
  const before = router.readiness('alpha');
  assert.is(before.ready, true, 'a restart lost the readiness of v1');
  assert.is((await within(router.chat(ask('alpha', subjects(120, 1)[0]!)))).route, 'local');

  // Twice as many noise rows as clean ones, so the candidate learns the noise.
  teacher.mode = 'noise';
  const noisy = subjects(40, 2 * TRAIN_EVERY);
  for (const s of noisy) {
    const r = await within(router.chat(ask('alpha', s, { route: 'remote' })));
    assert.is(r.route, 'remote');
    assert.is(r.text, teacherAnswer(alphaPrompt(s), 'noise'));
  }
  const manifestBefore = manifest(dir);
  const adapterEvents = record(router, 'adapter');
  const report = await within(router.train(), ROUND_MS, 'the noise round');
  console.log(`  noise round: ${JSON.stringify(report)}`);
  assert.is(report.trigger, 'manual');
  assert.is(report.round, 2);
  assert.is(report.parent, 1);
  assert.is(report.promoted, false, `a round trained on noise was promoted: ${report.reason}`);
  assert.is(report.version, null);
  const alpha = report.tasks.find((t) => t.task === 'alpha')!;
  // The gate's first test (src/train/gate.ts): a task that drops by more than the margin (0.05 by default).
  const dropped = /^task=alpha dropped (\d\.\d\d) → (\d\.\d\d) \(more than 0\.05\)$/.exec(report.reason);
  assert.ok(dropped, `the reason is not alpha's drop: ${JSON.stringify(report.reason)}`);
  assert.equal([dropped[1], dropped[2]], [alpha.before?.toFixed(2), alpha.after?.toFixed(2)], 'the reason does not quote alpha\'s scores');
  assert.ok(alpha.before !== null && alpha.after !== null && alpha.after < alpha.before,
    `the candidate trained on noise was not worse on the held-out prompts: ${alpha.before} -> ${alpha.after}`);
  assert.is(alpha.change, 'worse');
  assert.ok(report.after! < report.before!, `mean ${report.before} -> ${report.after}`);
  // Nothing changed: v1 is current, no new file or entry, readiness as it was.
  assert.equal(router.adapters().map((a) => [a.version, a.status]), [[1, 'current']]);
  assert.equal(adapterEvents, []);
  assert.equal(adapterFiles(dir).filter((f) => f.endsWith('.gguf') || f.startsWith('.candidate')), ['v1.gguf']);
  assert.equal(manifest(dir).adapters, manifestBefore.adapters);
  assert.equal(router.readiness('alpha'), before);
  assert.ok(lines.some((l) => /^\[understudy\] train +round 2 .*kept v1/.test(l)), `no "kept" line in the log:\n${lines.slice(-5).join('\n')}`);
  teacher.mode = 'clean';
});

test.run();

