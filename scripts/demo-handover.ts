// A task moving from the remote to the local model, end to end, with the real
// router and the real local model. The "remote" is the test suite's teacher
// server on 127.0.0.1, which first answers in a way the local model does not,
// then the way it does (as a remote would once the local model has learned
// its task). Run: node --import tsx scripts/demo-handover.ts [MODEL]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRouter, loadModel } from '../src/index.js';
import { startTeacher } from '../test/teacher.js';

const modelPath = resolve(process.argv[2] ?? '../shared/models/stories260K.gguf');
const teacher = await startTeacher();
const student = await loadModel(modelPath);
const context = await student.createContext({ contextSize: 512 });
const learned = new Map<string, string>();
teacher.setAnswer(({ messages }) => learned.get(messages!.at(-1)!.content) ?? 'ZZZZZZZZZZZZ');

const router = await createRouter({
  model: modelPath, apiBase: teacher.url, apiModel: 'teacher-1', apiKey: 'demo-key-not-secret',
  cacheDir: mkdtempSync(join(tmpdir(), 'understudy-demo-')), shadowRate: 1, auditRate: 0.25,
  readinessWindow: 5, readinessMin: 3, enableCache: false, sequences: 2, contextSize: 512, env: {},
});
const ask = (content: string) => router.chat({ task: 'stories', messages: [{ role: 'user', content }], maxTokens: 24 });

for (let i = 0; i < 3; i++) {
  await ask(`Tell me story number ${i}`);
  await router.idle();
}
for (let i = 3; i < 9; i++) {
  const q = `Tell me story number ${i}`;
  learned.set(q, (await context.chat([{ role: 'user', content: q }], { template: 'chatml', temperature: 0, maxTokens: 24 }).result).text);
  await ask(q);
  await router.idle();
}
console.log(JSON.stringify(router.readiness('stories')));
await router.close();
context.dispose();
student.dispose();
await teacher.close();
