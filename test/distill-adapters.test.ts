// Versioned adapters: two promotions (v1 teaches alpha, v2 adds beta), a
// restart that serves the promoted adapter, a rollback that restores v1's
// outputs byte for byte and the readiness v1 had, rollbacks down to the base
// model, and an adapter made for another base model (same shape, other
// weights) that a restarted router refuses with a clear warning, serving the
// base model, as LocalBackend.useAdapter refuses it with INVALID_ADAPTER.
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LocalBackend, Router } from '../src/index.js';
import { makeLoraAdapter } from '../scripts/make-lora.js';
import {
  ALPHA_ANSWER, BETA_ANSWER, adapterFiles, ask, distillHooks, distillRouter, freshDir, localAnswers, manifest, record,
  subjects, type DistillTeacher,
} from './distill-fixture.js';
import { copyModel, scaleOutputNorm } from './fixtures/model-copy.js';
import { rejection, storiesModel, within } from './helpers.js';

const ROUND_MS = 600_000; // a hang guard only

let teacher: DistillTeacher;
const dir = freshDir('distill-adapters');
const scratch = freshDir('distill-adapters-scratch');
let router: Router | undefined;
let lines: string[] = [];

// The same calls answered by the local model whenever an adapter changes: taught and unseen prompts of both tasks.
const PROBES = [
  ask('alpha', subjects(0, 1)[0]!), ask('alpha', 'purple whale'), ask('alpha', 'lost kite'),
  ask('beta', subjects(0, 1)[0]!), ask('beta', 'purple whale'), ask('beta', 'lost kite'),
];
let baseOut: string[];
let v1Out: string[];
let v2Out: string[];
let readinessV1: unknown;

const states = () => [router!.readiness('alpha'), router!.readiness('beta')];

async function teach(task: 'alpha' | 'beta', from: number, n: number): Promise<void> {
  for (const s of subjects(from, n)) {
    const r = await within(router!.chat(ask(task, s, { route: 'remote' })));
    assert.is(r.route, 'remote');
  }
}

async function restart(): Promise<void> {
  await router?.close();
  lines = [];
  router = await within(distillRouter(teacher, dir, {}, lines));
}

distillHooks(test, (t) => { teacher = t; }, () => router, dir, scratch);

test('v1 learns alpha, v2 adds beta: each promotion changes the local answers', async () => {
  await restart();
  baseOut = await localAnswers(router!, PROBES);
  await teach('alpha', 0, 16);
  const r1 = await within(router!.train(), ROUND_MS);
  assert.ok(r1.promoted, `round 1 kept: ${r1.reason}`);
  assert.is(r1.version, 1);
  v1Out = await localAnswers(router!, PROBES);
  readinessV1 = states();
  assert.equal(v1Out.slice(0, 3).map((t) => t.trim()), [ALPHA_ANSWER, ALPHA_ANSWER, ALPHA_ANSWER], 'v1 does not answer alpha as taught');
  assert.is((readinessV1 as any)[0].ready, true);
  assert.is((readinessV1 as any)[1].readiness, null, 'beta has readiness before it was taught');

  await teach('beta', 20, 24);
  const r2 = await within(router!.train(), ROUND_MS);
  console.log(`  round 2: ${JSON.stringify(r2)}`);
  console.log(`  round 1: ${JSON.stringify(r1)}`);
  assert.ok(r2.promoted, `round 2 kept: ${r2.reason}`);
  assert.is(r2.version, 2);
  assert.is(r2.parent, 1);
  const beta = r2.tasks.find((t) => t.task === 'beta')!;
  assert.ok(beta.after! > beta.before! && beta.after! >= 0.72, `beta ${beta.before} -> ${beta.after}`);
  v2Out = await localAnswers(router!, PROBES);
  assert.equal(v2Out.slice(3).map((t) => t.trim()), [BETA_ANSWER, BETA_ANSWER, BETA_ANSWER], 'v2 does not answer beta as taught');
  assert.is.not(v2Out.join('\n'), v1Out.join('\n'));
  assert.is(router!.readiness('beta').ready, true);
  assert.equal(router!.adapters().map((a) => [a.version, a.parent, a.status]), [[2, 1, 'current'], [1, null, 'previous']]);
  assert.equal(adapterFiles(dir).filter((f) => f.endsWith('.gguf')), ['v1.gguf', 'v2.gguf']);
});

test('a restarted router serves the promoted adapter: same outputs, same readiness', async () => {
  const readiness = states();
  await restart();
  assert.equal(router!.adapters().map((a) => [a.version, a.status]), [[2, 'current'], [1, 'previous']]);
  assert.ok(lines.includes('[understudy] adapters  using v2'), `no "using v2" line:\n${lines.join('\n')}`);
  assert.equal(await localAnswers(router!, PROBES), v2Out, 'the restarted router answers differently from v2');
  assert.equal(states(), readiness);
  const r = await within(router!.chat(ask('beta', 'green lake')));
  assert.is(r.route, 'local');
  assert.is(r.adapter, 2);
});

test('rollback restores v1: byte-identical outputs, v2\'s readiness contributions gone; then the base model; then NO_ADAPTER', async () => {
  const events = record(router!, 'adapter');
  const now = await within(router!.rollback());
  assert.is(now?.version, 1);
  assert.is(now?.status, 'current');
  const [v2, v1] = router!.adapters();
  assert.is(v2!.version, 2);
  assert.is(v2!.status, 'rolled-back');
  assert.type(v2!.rolledBackAt, 'string');
  assert.is(v1!.status, 'current');
  assert.is(manifest(dir).models[v1!.baseModel].current, 1, 'the manifest on disk does not say v1');
  assert.equal(events, [{ action: 'rolled-back', version: 1, previous: 2 }]);
  assert.ok(lines.includes('[understudy] adapters  rolled back v2 → v1'), `no rollback line:\n${lines.join('\n')}`);
  assert.equal(await localAnswers(router!, PROBES), v1Out, 'after the rollback the local answers are not v1\'s');
  assert.equal(states(), readinessV1, 'the readiness after the rollback is not the one v1 had');
  assert.is((await within(router!.chat(ask('beta', 'green lake')))).route, 'remote', 'beta stayed local after v2 was rolled back');
  // The adapter files stay: a rollback only changes what is current.
  assert.equal(adapterFiles(dir).filter((f) => f.endsWith('.gguf')), ['v1.gguf', 'v2.gguf']);

  assert.is(await within(router!.rollback()), null);
  assert.equal(await localAnswers(router!, PROBES), baseOut, 'with every adapter rolled back the base model does not answer as before');
  assert.is(router!.readiness('alpha').readiness, null);
  const err = await rejection(router!.rollback());
  assert.is(err.code, 'NO_ADAPTER');
  assert.match(err.message, /^no adapter to roll back: the base model is already in use for /);
});

test('an adapter made for another base model of the same shape is refused: warning, base model served, useAdapter rejects INVALID_ADAPTER', async () => {
  await router!.close();
  router = undefined;
  // stories260K with another output norm, and an adapter made for it.
  const other = await copyModel(storiesModel, join(scratch, 'other.gguf'), (f) => scaleOutputNorm(f));
  const foreign = join(scratch, 'foreign.gguf');
  await makeLoraAdapter({ model: other, out: foreign, targets: ['attn_q'] });
  // Filed in the manifest as this model's current adapter, v3.
  const m = manifest(dir);
  const key = Object.keys(m.models)[0]!;
  const v1 = m.adapters.find((a: { version: number }) => a.version === 1);
  m.adapters.push({ ...v1, version: 3, file: 'v3.gguf', parent: null, round: 3 });
  m.models[key].current = 3;
  copyFileSync(foreign, join(dir, 'adapters', 'v3.gguf'));
  writeFileSync(join(dir, 'adapters', 'manifest.json'), JSON.stringify(m, null, 2));

  await restart();
  const file = join(dir, 'adapters', 'v3.gguf');
  const warning = lines.find((l) => l.includes('v3'));
  assert.ok(warning, `no warning about v3:\n${lines.join('\n')}`);
  const refusal = (path: string) => `the LoRA adapter ${path} does not fit this model: it was made for another model ("llama") of the same shape: ` +
    'that model\'s weights differ from this one\'s';
  assert.is(warning, `[understudy] warning: the current adapter v3 (${file}) could not be loaded, serving the base model: ${refusal(file)}`);
  assert.equal(await localAnswers(router!, PROBES), baseOut, 'the router does not serve the base model');
  // The entry stays: a refused adapter is reported, not deleted.
  assert.ok(router!.adapters().some((a) => a.version === 3));

  const local = router!.local as LocalBackend;
  const err = await rejection(local.useAdapter(foreign));
  assert.is(err.code, 'INVALID_ADAPTER');
  assert.is(err.message, refusal(foreign));
  assert.is(local.adapterFile, null);
  assert.equal(await localAnswers(router!, PROBES), baseOut, 'a refused adapter changed the answers');
});

test.run();
