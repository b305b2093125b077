// `understudy train` as a user runs it: the real binary on stories260K. One JSON
// object on stdout, the same losses as model.trainLora() in-process, progress
// on stderr (lines in a pipe, a bar on a terminal), bad lines named by their
// line number, usage errors, and Ctrl-C leaving no adapter behind.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../src/index.js';
import { planFromAdapter } from '../src/llama/lora-file.js';
import { cli, run, storiesModel, within } from './helpers.js';

const understudy = (...args: string[]) => run(process.execPath, [cli, ...args], 120_000);
const dir = mkdtempSync(join(tmpdir(), 'understudy-cli-train-'));
const HINT = 'Run `understudy --help` for usage.\n';

// Four prompt/completion lines and two lines as `understudy dataset export` writes
// them ({ messages, task }), with blank lines between: line numbers skip nothing.
const LINES = [
  JSON.stringify({ prompt: 'Once upon a time, there was a cat named', completion: ' Tom. Tom liked to play with a red ball.' }),
  '',
  JSON.stringify({ prompt: 'The little girl went to the', completion: ' park. She saw a big tree and a bird.' }),
  JSON.stringify({ prompt: 'One day, a boy found a', completion: ' box. In the box was a shiny toy car.' }),
  '   ',
  JSON.stringify({ prompt: 'The dog was very', completion: ' happy. He ran and jumped all day long.' }),
  JSON.stringify({ messages: [{ role: 'user', content: 'What did Lily bake?' }, { role: 'assistant', content: 'A cake with her mom.' }], task: 'qa' }),
  JSON.stringify({ messages: [{ role: 'user', content: 'Where did Ben swim?' }, { role: 'assistant', content: 'In the lake with Sam.' }], task: 'qa' }),
];
const data = join(dir, 'train.jsonl');
writeFileSync(data, LINES.join('\n') + '\n');
const COMMON = ['--model', storiesModel, '--data', data, '--window', '256', '--threads', '2', '--template', 'chatml'];
const OPTIONS = ['--lr', '2e-3', '--seed', '7', '--eval-split', '0.2', '--rank', '4', '--alpha', '16', '--targets', 'attn_q,ffn_up'];

const STEP_LINE = /^\[understudy\] epoch \d+\/\d+  step \d+\/\d+  loss \d+\.\d{4}  \d+ tokens\/s  ETA \d+(s|m\d\ds|h\d\dm)$/;
const EPOCH_LINE = /^\[understudy\] epoch (\d+)\/2 done  step \d+\/\d+  train loss \d+\.\d{4}  eval loss \d+\.\d{4}  \d+ tokens\/s  ETA \S+$/;

const first = join(dir, 'first.gguf');
let firstResult: Record<string, unknown>;

test('train prints one JSON object, the losses model.trainLora() gets, and writes a loadable adapter', async () => {
  const r = await understudy('train', ...COMMON, ...OPTIONS, '--out', first, '--epochs', '2');
  assert.is(r.code, 0, r.stderr);
  assert.ok(r.stdout.endsWith('\n') && r.stdout.indexOf('\n') === r.stdout.length - 1, r.stdout);
  firstResult = JSON.parse(r.stdout);
  assert.equal(Object.keys(firstResult).sort(),
    ['adapter', 'epochs', 'evalLoss', 'seconds', 'steps', 'tokens', 'tokensPerSecond', 'trainLoss']);
  assert.is(firstResult.adapter, first);
  assert.is(firstResult.epochs, 2);
  for (const key of ['tokens', 'tokensPerSecond', 'seconds', 'steps'] as const) {
    assert.ok(typeof firstResult[key] === 'number' && (firstResult[key] as number) > 0, key);
  }

  // Plain lines in a pipe: the first step, one line per epoch, no terminal codes.
  assert.not.match(r.stderr, /\x1b/);
  const lines = r.stderr.trimEnd().split('\n');
  assert.match(lines[0]!, STEP_LINE);
  const epochs = lines.filter((l) => EPOCH_LINE.test(l)).map((l) => EPOCH_LINE.exec(l)![1]);
  assert.equal(epochs, ['1', '2'], r.stderr);
  assert.ok(lines.every((l) => STEP_LINE.test(l) || EPOCH_LINE.test(l)), r.stderr);

  // The reference: the same examples and options through the API in this process.
  const model = await within(loadModel(storiesModel, { trainable: true }));
  try {
    const examples = LINES.filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
    const job = model.trainLora(examples, {
      out: join(dir, 'reference.gguf'), epochs: 2, window: 256, threads: 2, template: 'chatml',
      learningRate: 2e-3, seed: 7, evalSplit: 0.2, rank: 4, alpha: 16, targets: ['attn_q', 'ffn_up'],
    });
    const reference = await within(job.result, 120_000);
    assert.is(firstResult.steps, reference.steps);
    assert.is(firstResult.tokens, reference.tokens);
    assert.equal(firstResult.trainLoss, reference.trainLoss);
    assert.equal(firstResult.evalLoss, reference.evalLoss);
    // The adapter loads, and records the shape asked for.
    const adapter = await within(model.loadLora(first));
    await adapter.dispose();
  } finally {
    model.dispose();
  }
  const plan = await planFromAdapter(first, storiesModel);
  assert.is(plan.rank, 4);
  assert.is(plan.alpha, 16);
  assert.equal(plan.targets, ['attn_q', 'ffn_up']);
  assert.is(plan.steps, firstResult.steps);
});

test('on a terminal, a progress bar; --resume continues the adapter and counts its steps', async () => {
  const resumed = join(dir, 'resumed.gguf');
  const stdout = join(dir, 'resumed.json');
  const typescript = join(dir, 'typescript');
  // script(1) gives the command a terminal; stdout still goes to a file.
  const command = [process.execPath, cli, 'train', ...COMMON, '--resume', first, '--out', resumed, '--epochs', '1']
    .map((a) => `'${a}'`).join(' ') + ` > '${stdout}'`;
  const r = await new Promise<{ code: number | null }>((resolve) => {
    execFile('script', ['-qec', command, typescript], { timeout: 120_000 }, (err) => resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0 }));
  });
  const terminal = readFileSync(typescript, 'utf8');
  assert.is(r.code, 0, terminal);
  assert.match(terminal, /\x1b\[/);
  assert.match(terminal, /epoch 1\/1 \[[^\]\n]+\] step \d+\/\d+ \| loss \d+\.\d{4} \| \d+ tokens\/s \| ETA \S+/);
  assert.match(terminal, /epoch 1\/1 done  step \d+\/\d+  train loss /);
  const result = JSON.parse(readFileSync(stdout, 'utf8'));
  assert.is(result.adapter, resumed);
  assert.is(result.epochs, 1);
  const plan = await planFromAdapter(resumed, storiesModel);
  assert.is(plan.rank, 4);
  assert.equal(plan.targets, ['attn_q', 'ffn_up']);
  assert.is(plan.steps, (firstResult.steps as number) + result.steps);
});

function dataFile(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

const good = JSON.stringify({ prompt: 'Once upon a', completion: ' time' });

test('a line that is not JSON: INVALID_DATASET naming the line, exit 1, no adapter', async () => {
  const broken = '{"prompt": "x",';
  const path = dataFile('broken.jsonl', [good, '', good, broken, good]);
  let parseError = '';
  try {
    JSON.parse(broken);
  } catch (err) {
    parseError = (err as Error).message;
  }
  const out = join(dir, 'broken.gguf');
  const r = await understudy('train', '--model', storiesModel, '--data', path, '--out', out);
  assert.is(r.code, 1);
  assert.is(r.stderr, `understudy: error [INVALID_DATASET]: ${path} line 4: not valid JSON (${parseError})\n`);
  assert.is(r.stdout, '');
  assert.not.ok(existsSync(out));
});

test('an example the trainer refuses: its line number (blank lines counted), exit 1, no adapter', async () => {
  const out = join(dir, 'refused.gguf');
  const cases: Array<[string[], string]> = [
    [[good, '', '', good, JSON.stringify({ prompt: 'a', completion: 5 })], 'line 5: expected string for completion but received 5 of type number'],
    [['', good, '7'], 'line 3: expected { messages }, { prompt, completion } or { tokens, mask } object for line 3 but received 7 of type number'],
    [[good, JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], task: 'qa' })],
      'line 2: has no assistant message, so nothing to learn: end the conversation with { role: "assistant", content: <the answer> }'],
    // 300 words of prompt do not fit a window of 256 tokens.
    [['', JSON.stringify({ prompt: 'Once '.repeat(300), completion: ' time' })],
      'line 2: is 304 tokens long, longer than the window of 256 tokens: raise --window (the model was trained on 2048), or shorten or split the example'],
  ];
  for (const [lines, message] of cases) {
    const path = dataFile('refused.jsonl', lines);
    const r = await understudy('train', '--model', storiesModel, '--data', path, '--out', out, '--template', 'chatml');
    assert.is(r.code, 1, r.stderr);
    assert.is(r.stderr, `understudy: error [INVALID_DATASET]: ${path} ${message}\n`);
    assert.is(r.stdout, '');
    assert.not.ok(existsSync(out));
  }
  // Without --template, {"messages"} lines need the model's own template, which stories260K lacks.
  const path = dataFile('chat.jsonl', [good, LINES[6]!]);
  const r = await understudy('train', '--model', storiesModel, '--data', path, '--out', out);
  assert.is(r.code, 1, r.stderr);
  assert.is(r.stderr, `understudy: error [TEMPLATE_MISSING]: ${path} has {"messages"} lines but the model has no chat template: pass --template NAME (such as chatml, llama3, gemma)\n`);
  assert.not.ok(existsSync(out));
});

test('missing files: IO_ERROR before any training', async () => {
  const missing = join(dir, 'missing.jsonl');
  const a = await understudy('train', '--model', storiesModel, '--data', missing, '--out', join(dir, 'x.gguf'));
  assert.is(a.code, 1);
  assert.is(a.stderr, `understudy: error [IO_ERROR]: data file not found: ${missing}\n`);
  const folder = join(dir, 'no-such-folder');
  const b = await understudy('train', '--model', storiesModel, '--data', data, '--out', join(folder, 'x.gguf'));
  assert.is(b.code, 1);
  assert.is(b.stderr, `understudy: error [IO_ERROR]: cannot write the adapter to ${join(folder, 'x.gguf')}: the folder ${folder} does not exist\n`);
  const empty = dataFile('empty.jsonl', ['', '  ']);
  const c = await understudy('train', '--model', storiesModel, '--data', empty, '--out', join(dir, 'x.gguf'));
  assert.is(c.code, 1);
  assert.is(c.stderr, `understudy: error [INVALID_DATASET]: ${empty} has no examples: give one {"messages": [...]} or {"prompt": "...", "completion": "..."} object per line\n`);
});

test('usage errors: a missing --model, --data or --out, a bad number; exit 2', async () => {
  const out = join(dir, 'x.gguf');
  const cases: Array<[string[], string]> = [
    [['--data', data, '--out', out], '--model PATH is required'],
    [['--model', storiesModel, '--out', out], '--data FILE.jsonl is required'],
    [['--model', storiesModel, '--data', data], '--out ADAPTER.gguf is required'],
    [['--model', storiesModel, '--data', data, '--out', out, '--lr', 'fast'], '--lr expects a number such as 0.001 or 1e-3, got "fast"'],
    [['--model', storiesModel, '--data', data, '--out', out, '--epochs', '2.5'], '--epochs expects an integer, got "2.5"'],
    [['--model', storiesModel, '--data', data, '--out', out, '--targets', 'attn_q,'], '--targets expects names separated by commas, such as attn_q,ffn_up, got "attn_q,"'],
  ];
  for (const [args, message] of cases) {
    const r = await understudy('train', ...args);
    assert.is(r.code, 2, r.stderr);
    assert.is(r.stderr, `understudy: ${message}\n${HINT}`);
    assert.is(r.stdout, '');
  }
  assert.not.ok(existsSync(out));
});

test('Ctrl-C stops training after the current step: ABORTED, exit 130, no adapter file', async () => {
  const sub = mkdtempSync(join(dir, 'sigint-'));
  const out = join(sub, 'adapter.gguf');
  const child = spawn(process.execPath, [cli, 'train', ...COMMON, '--out', out, '--epochs', '200'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let sent = false;
  child.stdout.on('data', (d) => (stdout += d));
  // One Ctrl-C, once the first step has been reported (a second would end the process at once).
  child.stderr.on('data', (d) => {
    stderr += d;
    if (!sent && /step \d+\/\d+/.test(stderr)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const [code, signal] = await within(new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s]))),
    120_000, 'the interrupted train command');
  assert.ok(sent, stderr);
  assert.is(signal, null);
  assert.is(code, 130, stderr);
  assert.ok(stderr.endsWith(`understudy: error [ABORTED]: training was stopped by Ctrl-C; no adapter was written to ${out}\n`), stderr);
  assert.match(stderr, /\[understudy\] stopping after the current step/);
  assert.is(stdout, '');
  // Nothing at all is left beside it: no adapter, no temp file.
  assert.equal(readdirSync(sub), []);
});

test.run();
