// `understudy dataset export` then `understudy train` with tool calls in the
// rows: the exported OpenAI lines (tools, assistant tool_calls with null
// content, role "tool") are read as the conversation serving renders for the
// local model, the same one a router's own round trains on (rowExample), and
// the trainer takes them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTrainingData } from '../src/cli/train-data.js';
import type { DatasetRow } from '../src/router/dataset.js';
import { exportJsonl } from '../src/router/dataset.js';
import { rowExample } from '../src/train/examples.js';
import { cli, rejection, run, storiesModel } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-cli-train-tools-'));
const WEATHER = { name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const params = { temperature: 0, maxTokens: 64, topP: 1, stop: [] };
const usage = { promptTokens: 1, completionTokens: 1, totalTokens: 2 };

function row(id: number, fields: Partial<DatasetRow>): DatasetRow {
  return { id, createdAt: 0, task: 'weather', kind: 'chat', answer: '', params, usage, model: 'teacher', source: 'call', latencyMs: 1, ...fields } as DatasetRow;
}

const ROWS: DatasetRow[] = [
  // A tool-call answer on 'required', after a call and its result in the history.
  row(1, {
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather in Oslo, then Rome?' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'call_Qx81', name: 'get_weather', arguments: '{"city":"Oslo"}' }] },
      { role: 'tool', toolCallId: 'call_Qx81', content: 'snow' },
    ],
    answer: '{"name":"get_weather","arguments":{"city":"Rome"}}', tools: [WEATHER], toolChoice: 'required',
  }),
  // A text answer with tools offered ('auto').
  row(2, { messages: [{ role: 'user', content: 'Hello!' }], answer: 'Hi! Ask me about the weather.', tools: [WEATHER], toolChoice: 'auto' }),
  // A plain row: unchanged by any of this.
  row(3, { messages: [{ role: 'user', content: 'What did Lily bake?' }], answer: 'A cake.' }),
];

test('exported tool rows read back as the conversation a round trains on (the serving prompt, the canonical answer)', async () => {
  const file = join(dir, 'export.jsonl');
  await exportJsonl(ROWS, file);
  const exported = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  // The file is OpenAI's shape: the answer's content is null beside its tool_calls.
  assert.is(exported[0].messages.at(-1).content, null);
  const { examples, lines } = await readTrainingData(file);
  assert.equal(lines, [1, 2, 3]);
  for (let i = 0; i < ROWS.length; i++) {
    assert.equal((examples[i] as { messages: unknown }).messages, (rowExample(ROWS[i]!) as { messages: unknown }).messages, `row ${i + 1}`);
  }
  const first = (examples[0] as { messages: { role: string; content: string }[] }).messages;
  assert.ok(first[0]!.content.startsWith('Be brief.\n\nYou can call these tools:\n- get_weather: The weather in a city'));
  assert.equal(first.slice(2), [
    { role: 'assistant', content: '{"name":"get_weather","arguments":{"city":"Oslo"}}' },
    { role: 'user', content: 'Result of get_weather (call 1): snow' },
    { role: 'assistant', content: '{"name":"get_weather","arguments":{"city":"Rome"}}' },
  ]);
  assert.equal(examples[2], JSON.parse(readFileSync(file, 'utf8').trim().split('\n')[2]!), 'a plain line passes unchanged');
});

test('a malformed tool line is refused naming its line', async () => {
  const file = join(dir, 'bad.jsonl');
  writeFileSync(file, [
    JSON.stringify({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] }),
    JSON.stringify({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: null, tool_calls: 5 }] }),
  ].join('\n'));
  const err = await rejection(readTrainingData(file));
  assert.is(err.code, 'INVALID_DATASET');
  assert.is(err.message, `${file} line 2: expected an array for messages[1].tool_calls but received 5 of type number`);
});

test('understudy train takes an exported dataset with tool calls', async () => {
  const file = join(dir, 'train.jsonl');
  await exportJsonl(ROWS, file);
  const out = join(dir, 'adapter.gguf');
  const r = await run(process.execPath, [cli, 'train', '--model', storiesModel, '--data', file, '--out', out,
    '--template', 'chatml', '--window', '512', '--threads', '2', '--epochs', '1', '--rank', '2'], 120_000);
  assert.is(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.is(result.adapter, out);
  assert.ok(result.steps > 0);
});

test.run();
