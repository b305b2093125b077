// `understudy train --from-cache-dir DIR` as a user runs it: the real binary,
// stories260K as the local model (and, by default, as the embedder), over a
// dataset the router logged from a teacher on loopback. One round's report as
// JSON on stdout, agreeing with what `adapters list` and the manifest then
// say; a bar on a terminal, lines in a pipe, nothing with --quiet; Ctrl-C
// aborting the round with no adapter left; usage errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AdapterInfo, RoundReport } from '../src/router/learner.js';
import { createRouter } from '../src/index.js';
import { cli, storiesModel } from './helpers.js';
import { API_KEY, freshDir } from './router-fixture.js';
import { startTeacher, type Teacher } from './teacher.js';

const HINT = 'Run `understudy --help` for usage.\n';
const NAMES = ['Anna', 'Ben', 'Cleo', 'Dan', 'Eva', 'Finn', 'Gus', 'Hana'];
// A first round that learns the teacher's fixed answers well enough that its
// promotion does not hinge on rounding: the gate (src/train/gate.ts) promotes
// only when the per-prompt gain over the 6 held-out prompts is beyond chance,
// and the margin is measured with stories260K's own embeddings. Measured
// (2 cores, ~3 s): held-out 0.83 → 0.99, per-prompt gain 0.158 ± 0.032, where
// 4 epochs at 0.01 on answers that repeat the name gave 0.86 → 0.91, 0.049 ±
// 0.024. The answers are not all exact: under the chatml template the CLI
// applies to stories260K the loss stays near 1.2 however long it trains, and
// more epochs do not raise the score further. Then a second round that does little.
const LEARN = ['--model', storiesModel, '--epochs', '10', '--lr', '0.015', '--threads', '2'];
const BRIEF = ['--model', storiesModel, '--epochs', '1', '--threads', '2'];

let teacher: Teacher;
let dir: string;
test.before(async () => {
  teacher = await startTeacher({
    answer: ({ messages }) => {
      const text = messages?.at(-1)?.content ?? '';
      // One answer per task, the same whatever the name: what stories260K can learn in seconds.
      return text.startsWith('Greet') ? 'Hello, my friend.' : 'Someone is here.';
    },
  });
  // The dataset, logged by a router that only has the remote: 8 rows in each of two tasks. The
  // stop at a newline is replayed with the held-out prompts, so the local answer ends with the line.
  dir = freshDir('cli-distill');
  const router = await createRouter({ cacheDir: dir, apiBase: teacher.url, apiModel: 'teacher-1', apiKey: API_KEY, local: false, embedder: false, quiet: true, env: {} });
  try {
    for (const name of NAMES) {
      await router.chat({ task: 'greet', messages: [{ role: 'user', content: `Greet a friend. Say hello to ${name}.` }], maxTokens: 32, stop: ['\n'] });
      await router.chat({ task: 'shout', messages: [{ role: 'user', content: `Shout that someone came. Point to ${name}.` }], maxTokens: 32, stop: ['\n'] });
    }
  } finally {
    await router.close();
  }
});
test.after(async () => {
  await teacher.close();
});

// Only PATH from this machine: its own UNDERSTUDY_* variables must not leak in.
function understudy(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH!, ...env }, encoding: 'utf8', timeout: 180_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Rounds the manifest counts, all base models together. */
function manifestRounds(): number {
  const models = JSON.parse(readFileSync(join(dir, 'adapters', 'manifest.json'), 'utf8')).models as Record<string, { rounds: number }>;
  return Object.values(models).reduce((n, m) => n + m.rounds, 0);
}

const REPORT_KEYS = ['after', 'before', 'durationMs', 'evalMs', 'lastRowId', 'loss', 'parent', 'promoted', 'reason', 'round', 'rows',
  'skippedRows', 'steps', 'tasks', 'trainMs', 'trigger', 'version'];
let first: RoundReport;

test('on a terminal: a progress bar, the round line, and the report as one JSON object; adapters list agrees', async () => {
  const stdout = join(dir, '..', `${dir.split('/').at(-1)}-report.json`);
  const typescript = join(dir, '..', `${dir.split('/').at(-1)}-typescript`);
  // script(1) gives the command a terminal; stdout still goes to a file. The environment is cleared as above.
  const command = ['env', '-i', `PATH=${process.env.PATH}`, process.execPath, cli, 'train', '--from-cache-dir', dir, ...LEARN]
    .map((a) => `'${a}'`).join(' ') + ` > '${stdout}'`;
  const r = await new Promise<{ code: number | string }>((resolve) => {
    execFile('script', ['-qec', command, typescript], { timeout: 180_000 }, (err) => {
      const code = (err as { code?: unknown } | null)?.code;
      resolve({ code: err ? (typeof code === 'string' ? code : Number(code ?? 1)) : 0 });
    });
  });
  if (r.code === 'ENOENT') {
    assert.unreachable('script(1) is not installed (util-linux; the bsdutils package on Debian and Ubuntu): this test needs it to give the CLI a terminal');
  }
  assert.ok(existsSync(typescript), `script(1) exited with ${r.code} and wrote no typescript file`);
  const terminal = readFileSync(typescript, 'utf8');
  assert.is(r.code, 0, terminal);
  assert.match(terminal, /\x1b\[/);
  assert.match(terminal, /round 1 \[[^\]\n]+\] step \d+\/\d+ \| epoch (?:[1-9]|10)\/10 \| loss \d+\.\d{4} \| ETA \S+/);
  assert.match(terminal, /\[understudy\] round 1: answering the held-out prompts with the current adapter/);
  assert.match(terminal, /\[understudy\] round 1: answering the held-out prompts with the candidate/);
  assert.match(terminal, /\[understudy\] train   round 1  \d+ rows  2 tasks  [\d.]+ s  held-out \d\.\d\d → \d\.\d\d  promoted v1/);

  const text = readFileSync(stdout, 'utf8');
  assert.ok(text.endsWith('}\n') && text.indexOf('\n') === text.length - 1, text);
  first = JSON.parse(text);
  assert.equal(Object.keys(first).sort(), REPORT_KEYS);
  assert.is(first.round, 1);
  assert.is(first.trigger, 'manual');
  assert.is(first.parent, null);
  assert.equal(first.tasks.map((t) => t.task).sort(), ['greet', 'shout']);
  // Every row is on one side: 8 distinct prompts per task, each task keeping at least 2 held out.
  for (const t of first.tasks) {
    assert.is(t.trainRows + t.heldOutRows, 8, t.task);
    assert.ok(t.heldOutRows >= 2, t.task);
    assert.ok(typeof t.before === 'number' && typeof t.after === 'number', t.task);
  }
  // Short rows: none is left out.
  assert.is(first.skippedRows, 0);
  assert.is(first.rows, first.tasks.reduce((n, t) => n + t.trainRows, 0));
  assert.is(first.lastRowId, 16);
  assert.ok(first.steps > 0 && typeof first.loss === 'number');

  const listed = await understudy(['adapters', 'list', '--json', '--cache-dir', dir, '--model', storiesModel]);
  assert.is(listed.code, 0, listed.stderr);
  const list = JSON.parse(listed.stdout) as AdapterInfo[];
  assert.ok(first.promoted, first.reason);
  assert.is(first.version, 1);
  assert.ok(first.after! >= first.before! + 0.01, first.reason);
  assert.match(first.reason, /^mean improved \d\.\d\d → \d\.\d\d \(per-prompt gain \d\.\d{3} ± \d\.\d{3} over 6 held-out prompts\)$/);
  assert.equal(list.map((a) => [a.version, a.status, a.parent, a.rowsUsed]), [[1, 'current', null, first.rows]]);
  assert.equal(list[0]!.heldOut, { before: first.before, after: first.after });
  assert.ok(existsSync(join(dir, 'adapters', 'v1.gguf')));
  assert.is(manifestRounds(), 1);
});

test('in a pipe: plain lines and the round line, no terminal codes; the next round starts from the promoted adapter', async () => {
  const r = await understudy(['train', '--from-cache-dir', dir, ...BRIEF]);
  assert.is(r.code, 0, r.stderr);
  assert.not.match(r.stderr, /\x1b/);
  const lines = r.stderr.trimEnd().split('\n');
  // The router applies the promoted adapter when it starts, and says so.
  assert.equal(lines.slice(0, 2), ['[understudy] adapters  using v1', '[understudy] round 2: started']);
  assert.ok(lines.includes('[understudy] round 2: training the candidate adapter'), r.stderr);
  assert.ok(lines.some((l) => /^\[understudy\] round 2: epoch 1\/1  step \d+\/\d+  loss \d+\.\d{4}  ETA \S+$/.test(l)), r.stderr);
  assert.match(lines.at(-1)!, /^\[understudy\] train   round 2  /);
  const second = JSON.parse(r.stdout) as RoundReport;
  assert.is(second.round, 2);
  assert.is(second.parent, 1);
  assert.is(manifestRounds(), 2);
});

test('--quiet: nothing on stderr; a dataset with no rows is a skipped round, exit 0', async () => {
  const empty = freshDir('cli-distill-empty');
  const r = await understudy(['train', '--from-cache-dir', empty, '--quiet', ...BRIEF]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stderr, '');
  const report = JSON.parse(r.stdout) as RoundReport;
  assert.equal([report.round, report.rows, report.promoted, report.version, report.tasks], [1, 0, false, null, []]);
  assert.match(report.reason, /not enough data/);
});

test('Ctrl-C aborts the round: ABORTED, exit 130, no adapter file, no candidate, no manifest change', async () => {
  const before = readFileSync(join(dir, 'adapters', 'manifest.json'), 'utf8');
  const files = readdirSync(join(dir, 'adapters')).sort();
  // Enough epochs that the round is still training when the signal comes.
  const child = spawn(process.execPath, [cli, 'train', '--from-cache-dir', dir, '--model', storiesModel, '--epochs', '500', '--threads', '2'],
    { env: { PATH: process.env.PATH! }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (d) => { stdout += d; });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  await new Promise<void>((resolve) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.includes('training the candidate adapter')) resolve();
    });
    child.on('close', () => resolve());
  });
  child.kill('SIGINT');
  const code = await exited;
  clearTimeout(timer);
  assert.is(code, 130, stderr);
  assert.ok(stderr.endsWith('understudy: error [ABORTED]: the round was stopped by Ctrl-C; no adapter was promoted\n'), stderr);
  assert.is(stdout, '');
  assert.is(readFileSync(join(dir, 'adapters', 'manifest.json'), 'utf8'), before);
  assert.equal(readdirSync(join(dir, 'adapters')).sort(), files);
});

test('usage errors exit 2; a cache directory that does not exist is IO_ERROR', async () => {
  const data = join(dir, 'train.jsonl');
  const cases: Array<[string[], Record<string, string>, string]> = [
    [['--from-cache-dir', dir, '--model', storiesModel, '--data', data], {}, '--data cannot be used with --from-cache-dir: a round trains on the dataset the router logged in the cache directory'],
    [['--from-cache-dir', dir, '--model', storiesModel, '--out', 'a.gguf'], {}, '--out cannot be used with --from-cache-dir: a promoted adapter goes to the cache directory\'s adapters/ folder (see `understudy adapters list`)'],
    [['--from-cache-dir', dir, '--model', storiesModel, '--resume', 'a.gguf'], {}, '--resume cannot be used with --from-cache-dir: a round continues the current adapter of the model by itself'],
    [['--model', storiesModel, '--data', data, '--out', 'a.gguf', '--quiet'], {}, '--quiet goes with --from-cache-dir'],
    [['--from-cache-dir', dir], {}, 'train --from-cache-dir needs the local model: --model PATH or UNDERSTUDY_MODEL'],
    [['--from-cache-dir', ''], {}, '--from-cache-dir expects a folder, got ""'],
    [['--from-cache-dir', dir, '--model', storiesModel, 'extra'], {}, 'train takes no positional arguments, got "extra"'],
    [['--from-cache-dir', dir, '--epochs', '1.5'], { UNDERSTUDY_MODEL: storiesModel }, '--epochs expects an integer, got "1.5"'],
    [['--from-cache-dir', dir, '--model', storiesModel, '--epochs', '0'], {}, 'Expected integer between 1 and 100000 for --epochs but received 0 of type number'],
    [['--from-cache-dir', dir, '--model', storiesModel, '--lr', 'fast'], {}, '--lr expects a number such as 0.001 or 1e-3, got "fast"'],
  ];
  for (const [args, env, message] of cases) {
    const r = await understudy(['train', ...args], env);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stderr, `understudy: ${message}\n${HINT}`);
    assert.is(r.stdout, '');
  }
  const missing = join(dir, 'missing');
  const r = await understudy(['train', '--from-cache-dir', missing, '--model', storiesModel]);
  assert.is(r.code, 1);
  assert.is(r.stderr, `understudy: error [IO_ERROR]: cache directory not found: ${missing}\n`);
  assert.not.ok(existsSync(missing));
});

test.run();
