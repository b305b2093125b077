// The held-out split: what it must guarantee for the distillation loop (no row
// changes side as the dataset grows, one prompt never on both sides, every task
// with a few prompts gets evaluated, the share is what was asked), and the rows
// as training examples and held-out calls.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DatasetRow } from '../src/router/dataset.js';
import { heldOutCall, rowExample } from '../src/train/examples.js';
import { splitRows, type TaskSplit } from '../src/train/split.js';
import { thrown } from './helpers.js';
import { seededRandom } from './seeded-random.js';

function row(id: number, task: string, prompt: string, options: { answer?: string; kind?: 'chat' | 'complete'; maxTokens?: number; stop?: string[] } = {}): DatasetRow {
  const kind = options.kind ?? 'chat';
  return {
    id, task, kind,
    ...(kind === 'chat' ? { messages: [{ role: 'user', content: prompt }] } : { prompt }),
    answer: options.answer ?? `answer ${id}`,
    params: { temperature: 0, maxTokens: options.maxTokens ?? 64, topP: 1, stop: options.stop ?? [] },
    usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 },
    model: 'teacher', source: 'call', latencyMs: 1, createdAt: 0,
  };
}

function shuffled<T>(items: T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** id -> 'train' | 'heldOut' over every task of a split. */
function sides(split: Map<string, TaskSplit>): Map<number, 'train' | 'heldOut'> {
  const out = new Map<number, 'train' | 'heldOut'>();
  for (const s of split.values()) {
    for (const r of s.train) out.set(r.id, 'train');
    for (const r of s.heldOut) out.set(r.id, 'heldOut');
  }
  return out;
}

function promptOf(r: DatasetRow): string {
  return r.messages ? r.messages.map((m) => m.content).join('|') : r.prompt!;
}

test('a growing dataset: splitting any prefix puts every row on the side it has in the whole', () => {
  let forcedSeen = 0;
  for (let trial = 0; trial < 40; trial++) {
    const rand = seededRandom(1000 + trial);
    // A history of appends: a few tasks, prompts drawn from small pools (so some repeat), ids with gaps.
    const tasks = ['a', 'b', 'c'].slice(0, 1 + Math.floor(rand() * 3));
    const pool = 4 + Math.floor(rand() * 30);
    const rows: DatasetRow[] = [];
    let id = 0;
    for (let i = 0; i < 60; i++) {
      id += 1 + Math.floor(rand() * 3);
      rows.push(row(id, tasks[Math.floor(rand() * tasks.length)]!, `prompt ${Math.floor(rand() * pool)}`, { kind: rand() < 0.3 ? 'complete' : 'chat' }));
    }
    const whole = sides(splitRows(rows));
    assert.is(whole.size, rows.length, 'every row is on one side');
    for (let k = 1; k <= rows.length; k++) {
      // The prefix handed over in any order: the split orders by id.
      const prefix = sides(splitRows(shuffled(rows.slice(0, k), rand)));
      assert.is(prefix.size, k);
      for (const [rid, side] of prefix) {
        assert.is(side, whole.get(rid), `trial ${trial}: row ${rid} is ${side} with ${k} rows but ${whole.get(rid)} with all ${rows.length}`);
      }
    }
    forcedSeen += [...splitRows(rows, { heldOutShare: 0 }).values()].reduce((n, s) => n + s.heldOut.length, 0);
    // The same with the minimum doing all the work (heldOutShare 0): it must look only backwards too.
    const wholeForced = sides(splitRows(rows, { heldOutShare: 0 }));
    for (let k = 1; k <= rows.length; k++) {
      for (const [rid, side] of sides(splitRows(rows.slice(0, k), { heldOutShare: 0 }))) assert.is(side, wholeForced.get(rid));
    }
  }
  assert.ok(forcedSeen > 0, 'the histories exercised the minimum held-out rule');
});

test('the same prompt is on one side only, whatever the answers, ids and field order', () => {
  const rand = seededRandom(7);
  const rows: DatasetRow[] = [];
  for (let id = 1; id <= 3000; id++) {
    const task = `t${Math.floor(rand() * 4)}`;
    const r = row(id, task, `question ${Math.floor(rand() * 150)}`, { answer: `answer ${rand()}`, kind: rand() < 0.5 ? 'chat' : 'complete' });
    // A message read back with its fields in another order is the same prompt.
    if (r.messages && rand() < 0.5) r.messages = r.messages.map((m) => ({ content: m.content, role: m.role }));
    rows.push(r);
  }
  const split = splitRows(shuffled(rows, rand));
  let heldOutPrompts = 0;
  for (const [task, s] of split) {
    const key = (r: DatasetRow) => `${r.kind}:${promptOf(r)}`;
    const train = new Set(s.train.map(key));
    const held = new Set(s.heldOut.map(key));
    heldOutPrompts += held.size;
    for (const k of held) assert.not.ok(train.has(k), `task ${task}: ${k} is on both sides`);
    // Sides are in id order.
    for (const side of [s.train, s.heldOut]) for (let i = 1; i < side.length; i++) assert.ok(side[i - 1]!.id < side[i]!.id);
  }
  assert.ok(heldOutPrompts > 0 && heldOutPrompts < 4 * 2 * 150, 'both sides are used');
});

test('a task with 4, 8, 12 distinct prompts has at least 1, 2, 3 held out; a bigger one no fewer than 3', () => {
  const counts = [[4, 1], [8, 2], [12, 3], [40, 3]] as const;
  let id = 0;
  for (const share of [0.2, 0]) {
    for (const [prompts, least] of counts) {
      for (let t = 0; t < 150; t++) {
        const task = `task-${share}-${prompts}-${t}`;
        // Every prompt twice: a repeated prompt is one prompt, not two.
        const rows = Array.from({ length: prompts * 2 }, (_, i) => row(++id, task, `${task} prompt ${i % prompts}`));
        const heldOut = new Set(splitRows(rows, { heldOutShare: share }).get(task)!.heldOut.map(promptOf));
        assert.ok(heldOut.size >= least, `${task}: ${heldOut.size} held-out prompts`);
        // With no share by hash, the minimum is exactly what is held out.
        if (share === 0) assert.is(heldOut.size, least, task);
      }
    }
  }
  // minHeldOut: 0 turns the minimum off; a larger one raises the cap (one per 4 prompts, up to it).
  const rows = Array.from({ length: 40 }, (_, i) => row(i + 1, 'x', `p${i}`));
  assert.is(splitRows(rows, { heldOutShare: 0, minHeldOut: 0 }).get('x')!.heldOut.length, 0);
  assert.is(splitRows(rows, { heldOutShare: 0, minHeldOut: 6 }).get('x')!.heldOut.length, 6);
  assert.is(splitRows(rows, { heldOutShare: 1 }).get('x')!.train.length, 0);
});

test('over 5000 distinct prompts the held-out share is the one asked for, within 3 points', () => {
  for (const share of [0.2, 0.5, 0.05]) {
    const rows = Array.from({ length: 5000 }, (_, i) => row(i + 1, 'big', `request number ${i} for share ${share}`));
    const s = splitRows(rows, { heldOutShare: share }).get('big')!;
    const measured = s.heldOut.length / rows.length;
    assert.ok(Math.abs(measured - share) <= 0.03, `share ${share}: measured ${measured}`);
    assert.is(s.heldOut.length + s.train.length, rows.length);
  }
});

test('options are checked: code and message', () => {
  const rows = [row(1, 't', 'p')];
  const cases: Array<[unknown, string]> = [
    [{ heldOutShare: 1.5 }, 'Expected number between 0 and 1 for heldOutShare but received 1.5 of type number'],
    [{ heldOutShare: -0.1 }, 'Expected number between 0 and 1 for heldOutShare but received -0.1 of type number'],
    [{ heldOutShare: Number.NaN }, 'Expected number between 0 and 1 for heldOutShare but received NaN of type number'],
    [{ heldOutShare: '0.2' }, 'Expected number between 0 and 1 for heldOutShare but received "0.2" of type string'],
    [{ minHeldOut: -1 }, 'Expected non-negative integer for minHeldOut but received -1 of type number'],
    [{ minHeldOut: 1.5 }, 'Expected non-negative integer for minHeldOut but received 1.5 of type number'],
    ['fast', 'Expected object for options but received "fast" of type string'],
  ];
  for (const [options, message] of cases) {
    const err = thrown(() => splitRows(rows, options as never));
    assert.is(err.code, 'INVALID_ARGUMENT');
    assert.is(err.message, message);
  }
});

test('rowExample: a chat learns only the remote answer; a completion is prompt and completion', () => {
  const chat = row(1, 't', 'hello', { answer: 'Hi there.' });
  chat.messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'hello' },
    { role: 'assistant', content: 'earlier answer' },
    { role: 'user', content: 'again', name: 'extra' } as never,
  ];
  assert.equal(rowExample(chat), {
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'earlier answer' },
      { role: 'user', content: 'again' },
      { role: 'assistant', content: 'Hi there.' },
    ],
    learn: 'last',
  });
  assert.is(chat.messages.length, 4, 'the row is not changed');
  assert.equal(rowExample(row(2, 't', 'Once upon', { kind: 'complete', answer: ' a time' })), { prompt: 'Once upon', completion: ' a time' });
  const broken = row(3, 't', 'x');
  delete broken.messages;
  const err = thrown(() => rowExample(broken));
  assert.is(err.code, 'INVALID_DATASET');
  assert.is(err.message, 'dataset row 3 (task "t") cannot be used: it is a chat row without messages');
});

test('heldOutCall: the request, the smaller token limit and the stop strings', () => {
  const chat = row(1, 't', 'hello', { maxTokens: 1000, stop: ['\n\n'] });
  assert.equal(heldOutCall(chat), { kind: 'chat', messages: [{ role: 'user', content: 'hello' }], maxTokens: 256, stop: ['\n\n'] });
  assert.equal(heldOutCall(chat, 32).maxTokens, 32);
  const complete = row(2, 't', 'Once', { kind: 'complete', maxTokens: 20 });
  assert.equal(heldOutCall(complete), { kind: 'complete', prompt: 'Once', maxTokens: 20, stop: [] });
  const call = heldOutCall(chat);
  call.stop.push('x');
  assert.equal(chat.params.stop, ['\n\n'], 'the row is not changed through the call');
  const err = thrown(() => heldOutCall(chat, 0));
  assert.is(err.code, 'INVALID_ARGUMENT');
  assert.is(err.message, 'Expected positive integer for maxTokens but received 0 of type number');
  const broken = row(3, 'u', 'x', { kind: 'complete' });
  delete broken.prompt;
  const e2 = thrown(() => heldOutCall(broken));
  assert.is(e2.code, 'INVALID_DATASET');
  assert.is(e2.message, 'dataset row 3 (task "u") cannot be used: it is a complete row without prompt');
});

test('rows that cannot be replayed or learned are refused with INVALID_DATASET naming the row, never a raw error', () => {
  const refused: Array<[string, (r: DatasetRow) => void, 'both' | 'held-out', string]> = [
    ['no maxTokens', (r) => void delete (r.params as Partial<DatasetRow['params']>).maxTokens, 'held-out',
      'dataset row 5 (task "t") cannot be used: its params.maxTokens is undefined of type undefined, not a positive integer'],
    ['maxTokens 0', (r) => void (r.params.maxTokens = 0), 'held-out',
      'dataset row 5 (task "t") cannot be used: its params.maxTokens is 0 of type number, not a positive integer'],
    ['params null', (r) => void (r.params = null as never), 'held-out', 'dataset row 5 (task "t") cannot be used: its params are null, not an object'],
    ['stop not strings', (r) => void (r.params.stop = [1] as never), 'held-out',
      'dataset row 5 (task "t") cannot be used: its params.stop is an array of type object, not an array of strings'],
    ['number content', (r) => void (r.messages = [{ role: 'user', content: 7 as never }]), 'both',
      'dataset row 5 (task "t") cannot be used: messages[0].content is 7 of type number, not a string'],
    ['empty role', (r) => void (r.messages = [{ role: '', content: 'x' }]), 'both',
      'dataset row 5 (task "t") cannot be used: messages[0].role is "" of type string, not a non-empty string'],
    ['message not an object', (r) => void (r.messages = ['hi' as never]), 'both',
      'dataset row 5 (task "t") cannot be used: messages[0] is "hi" of type string, not a { role, content } object'],
    ['messages not an array', (r) => void (r.messages = 5 as never), 'both', 'dataset row 5 (task "t") cannot be used: it is a chat row without messages'],
    ['answer not a string', (r) => void (r.answer = null as never), 'both', 'dataset row 5 (task "t") cannot be used: its answer is null, not a string'],
    ['unknown kind', (r) => void (r.kind = 'embed' as never), 'both', 'dataset row 5 (task "t") cannot be used: its kind is "embed", not "chat" or "complete"'],
    ['unreadable', (r) => void (r.unreadable = 'its input is not valid JSON (Unexpected token)'), 'both',
      'dataset row 5 (task "t") cannot be used: its input is not valid JSON (Unexpected token)'],
  ];
  for (const [name, spoil, where, message] of refused) {
    const r = row(5, 't', 'hello');
    spoil(r);
    const err = thrown(() => heldOutCall(r));
    assert.is(err.code, 'INVALID_DATASET', name);
    assert.is(err.message, message, name);
    if (where === 'both') {
      const e2 = thrown(() => rowExample(r));
      assert.is(e2.code, 'INVALID_DATASET', name);
      assert.is(e2.message, message, name);
    } else {
      assert.ok(rowExample(r), `${name}: training does not need the limits`);
    }
  }
});

test.run();
