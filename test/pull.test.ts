// understudy pull against a loopback server: a full download with progress, a
// download cut off midway that resumes with a Range request, a server that
// ignores Range or whose file changed, sha256 checks (--sha256, Hugging Face's
// x-linked-etag, an ETag that is a sha256), HTTP errors, a stall, a body that is
// not GGUF, and Ctrl-C (in a child process).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pullModel } from '../src/models/pull.js';
import { readManifest } from '../src/models/models-dir.js';
import type { DownloadProgress } from '../src/models/download.js';
import { cli, rejection, storiesModel } from './helpers.js';
import { modelServer, sha256, type ModelServer } from './model-server.js';

const body = readFileSync(storiesModel);
const bodySha = sha256(body);
const HALF = 500_000;
let server: ModelServer;
let cdn: ModelServer;

test.before(async () => {
  server = await modelServer();
  cdn = await modelServer();
});
test.after(async () => {
  await server.close();
  await cdn.close();
});

const freshDir = () => mkdtempSync(join(tmpdir(), 'understudy-pull-'));
const fileSha = (path: string) => sha256(readFileSync(path));
const seenAt = (path: string) => server.seen.filter((s) => s.path === path);

test('a full download lands under its short name, with progress, a manifest entry and no part left', async () => {
  server.routes.set('/full/stories260K.gguf', { body, etag: '"v1"' });
  const dir = freshDir();
  const progress: DownloadProgress[] = [];
  const r = await pullModel(`${server.url}/full/stories260K.gguf`, { dir, onProgress: (p) => progress.push(p) });
  const path = join(dir, 'stories260K.gguf');
  assert.is(r.name, 'stories260K');
  assert.is(r.path, path);
  assert.is(r.size, body.length);
  assert.is(r.sha256, bodySha);
  assert.is(r.verifiedBy, undefined, 'an ETag that is no sha256 vouches for nothing');
  assert.is(fileSha(path), bodySha);
  assert.equal(readdirSync(dir).sort(), ['models.json', 'stories260K.gguf']);
  assert.ok(progress.length >= 2);
  assert.equal(progress[0], { received: 0, total: body.length, resumedFrom: 0 });
  assert.equal(progress.at(-1), { received: body.length, total: body.length, resumedFrom: 0 });
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i]!.received >= progress[i - 1]!.received);
  const entry = readManifest(dir).stories260K!;
  assert.equal({ ...entry, pulledAt: undefined }, { file: 'stories260K.gguf', size: body.length, sha256: bodySha, source: `${server.url}/full/stories260K.gguf`, pulledAt: undefined });
  assert.ok(!Number.isNaN(Date.parse(entry.pulledAt!)));
  // The same source again: nothing to download.
  const again = await pullModel(`${server.url}/full/stories260K.gguf`, { dir });
  assert.is(again.alreadyPresent, true);
  assert.is(seenAt('/full/stories260K.gguf').length, 1);
  // Another source under a taken name is refused.
  server.routes.set('/other/stories260K.gguf', { body });
  const taken = await rejection(pullModel(`${server.url}/other/stories260K.gguf`, { dir }));
  assert.is(taken.code, 'INVALID_ARGUMENT');
  assert.is(taken.message, `a model named "stories260K" is already in ${dir} (from ${server.url}/full/stories260K.gguf): ` +
    `choose another name with --name, or delete ${path}`);
});

test('a download cut off midway keeps its part and resumes with Range: bytes=N- from where it stopped', async () => {
  server.routes.set('/cut/stories.gguf', { body, etag: '"v1"', cut: { mode: 'drop', at: HALF, times: 1 } });
  const dir = freshDir();
  const part = join(dir, 'stories.gguf.part');
  const url = `${server.url}/cut/stories.gguf?token=SECRET`;
  const first = await rejection(pullModel(url, { dir }));
  assert.is(first.code, 'IO_ERROR');
  const kept = statSync(part).size;
  assert.ok(kept > 0 && kept <= HALF, `${kept} bytes kept`);
  assert.match(first.message, new RegExp(`^the download from ${server.url}/cut/stories\\.gguf failed \\(.+\\); ` +
    `${kept} bytes are kept in ${part.replace(/\./g, '\\.')}; run the same command again to resume$`));
  assert.not.match(first.message, /SECRET/);
  assert.ok(!existsSync(join(dir, 'stories.gguf')));
  const r = await pullModel(url, { dir });
  const resumed = seenAt('/cut/stories.gguf').at(-1)!;
  assert.equal(resumed, { path: '/cut/stories.gguf', status: 206, range: `bytes=${kept}-`, ifRange: '"v1"' });
  assert.is(r.resumedFrom, kept);
  assert.is(fileSha(r.path), bodySha);
  assert.is(r.sha256, bodySha);
  assert.ok(!existsSync(part) && !existsSync(`${part}.json`));
});

test('a server that ignores Range (200 to a Range request) starts the file over, cleanly', async () => {
  const route = { body, etag: '"v1"', cut: { mode: 'drop' as const, at: HALF, times: 1 } };
  server.routes.set('/norange/m.gguf', route);
  const dir = freshDir();
  await rejection(pullModel(`${server.url}/norange/m.gguf`, { dir }));
  const kept = statSync(join(dir, 'm.gguf.part')).size;
  server.routes.set('/norange/m.gguf', { ...route, ranges: false });
  const r = await pullModel(`${server.url}/norange/m.gguf`, { dir });
  assert.equal(seenAt('/norange/m.gguf').at(-1), { path: '/norange/m.gguf', status: 200, range: `bytes=${kept}-`, ifRange: '"v1"' });
  assert.is(r.resumedFrom, 0);
  assert.is(r.size, body.length);
  assert.is(fileSha(r.path), bodySha);
});

test('a file that changed since the part was written (another ETag) is downloaded again from zero', async () => {
  // A server that honours If-Range answers 200 with the new file...
  server.routes.set('/changed/a.gguf', { body, etag: '"v1"', cut: { mode: 'drop', at: HALF, times: 1 } });
  const dir = freshDir();
  await rejection(pullModel(`${server.url}/changed/a.gguf`, { dir }));
  server.routes.set('/changed/a.gguf', { body, etag: '"v2"' });
  const r = await pullModel(`${server.url}/changed/a.gguf`, { dir });
  assert.is(seenAt('/changed/a.gguf').at(-1)!.status, 200);
  assert.is(r.resumedFrom, 0);
  assert.is(fileSha(r.path), bodySha);
  // ...one that ignores If-Range sends the rest of the new file, which is refused: a fresh request follows.
  server.routes.set('/changed/b.gguf', { body, etag: '"v1"', cut: { mode: 'drop', at: HALF, times: 1 } });
  await rejection(pullModel(`${server.url}/changed/b.gguf`, { dir }));
  const kept = statSync(join(dir, 'b.gguf.part')).size;
  server.routes.set('/changed/b.gguf', { body, etag: '"v2"', ifRange: false });
  const b = await pullModel(`${server.url}/changed/b.gguf`, { dir });
  assert.equal(seenAt('/changed/b.gguf').slice(-2), [
    { path: '/changed/b.gguf', status: 206, range: `bytes=${kept}-`, ifRange: '"v1"' },
    { path: '/changed/b.gguf', status: 200 },
  ]);
  assert.is(b.resumedFrom, 0);
  assert.is(fileSha(b.path), bodySha);
});

test('a sha256 mismatch deletes the download and fails with MODEL_HASH_MISMATCH', async () => {
  server.routes.set('/hash/m.gguf', { body });
  const dir = freshDir();
  const wrong = '0'.repeat(64);
  const err = await rejection(pullModel(`${server.url}/hash/m.gguf`, { dir, sha256: wrong }));
  assert.is(err.code, 'MODEL_HASH_MISMATCH');
  assert.is(err.message, `sha256 of m.gguf from ${server.url}/hash/m.gguf is ${bodySha}, but --sha256 says ${wrong}; the download was deleted`);
  assert.equal(readdirSync(dir), []);
  // The right one passes, in upper case too.
  const r = await pullModel(`${server.url}/hash/m.gguf`, { dir, sha256: bodySha.toUpperCase() });
  assert.is(r.verifiedBy, '--sha256');
  const bad = await rejection(pullModel(`${server.url}/hash/m.gguf`, { dir: freshDir(), sha256: 'abc' }));
  assert.is(bad.code, 'INVALID_ARGUMENT');
  assert.is(bad.message, 'Expected 64 hexadecimal digits for sha256 but received "abc" of type string');
});

test("hf: follows Hugging Face's redirect, checks x-linked-etag, and sends HF_TOKEN to the hub only", async () => {
  cdn.routes.set('/blob/xyz', { body, etag: '"cdn-etag"' });
  const hub = (file: string, sha: string) => server.routes.set(`/hub/owner/repo/resolve/main/${file}`, {
    body, redirect: `${cdn.url}/blob/xyz?X-Amz-Signature=SIGNED`, headers: { 'x-linked-etag': `"${sha}"`, etag: '"not-a-sha"' },
  });
  hub('good.gguf', bodySha);
  const env = { UNDERSTUDY_HF_ENDPOINT: `${server.url}/hub`, HF_TOKEN: 'hf_secret_token' };
  const dir = freshDir();
  const r = await pullModel('hf:owner/repo/good.gguf', { dir, env });
  assert.is(r.verifiedBy, 'x-linked-etag');
  assert.is(r.name, 'good');
  assert.is(r.source, `${server.url}/hub/owner/repo/resolve/main/good.gguf`);
  assert.is(fileSha(r.path), bodySha);
  assert.is(seenAt('/hub/owner/repo/resolve/main/good.gguf').at(-1)!.authorization, 'Bearer hf_secret_token');
  assert.is(cdn.seen.at(-1)!.authorization, undefined, 'the token does not follow the redirect to the CDN');
  // A revision, and a hash that does not match.
  server.routes.set('/hub/owner/repo/resolve/v1.0/bad.gguf', { body, headers: { 'x-linked-etag': `"${'ab'.repeat(32)}"` } });
  const err = await rejection(pullModel('hf:owner/repo/bad.gguf@v1.0', { dir, env }));
  assert.is(err.code, 'MODEL_HASH_MISMATCH');
  assert.is(err.message, `sha256 of bad.gguf from ${server.url}/hub/owner/repo/resolve/v1.0/bad.gguf is ${bodySha}, ` +
    `but the server's x-linked-etag says ${'ab'.repeat(32)}; the download was deleted`);
  assert.ok(!existsSync(join(dir, 'bad.gguf')) && !existsSync(join(dir, 'bad.gguf.part')));
  const malformed = await rejection(pullModel('hf:owner/good.gguf', { dir, env }));
  assert.is(malformed.code, 'INVALID_ARGUMENT');
  assert.is(malformed.message, 'Expected hf:OWNER/REPO/FILE.gguf[@REVISION] for source but received "hf:owner/good.gguf" of type string');
});

test('an ETag that is a sha256 is checked too', async () => {
  server.routes.set('/etag/m.gguf', { body, etag: `"${bodySha}"` });
  const r = await pullModel(`${server.url}/etag/m.gguf`, { dir: freshDir() });
  assert.is(r.verifiedBy, 'etag');
  server.routes.set('/etag/wrong.gguf', { body, etag: `"${'c'.repeat(64)}"` });
  const err = await rejection(pullModel(`${server.url}/etag/wrong.gguf`, { dir: freshDir() }));
  assert.is(err.code, 'MODEL_HASH_MISMATCH');
});

test('HTTP errors are coded and name the URL without its query', async () => {
  const dir = freshDir();
  const missing = await rejection(pullModel(`${server.url}/nothing/here.gguf?token=SECRET`, { dir }));
  assert.is(missing.code, 'MODEL_NOT_FOUND');
  assert.is(missing.message, `HTTP 404 from ${server.url}/nothing/here.gguf: no such file`);
  server.routes.set('/gated/m.gguf', { body, status: 401 });
  const gated = await rejection(pullModel(`${server.url}/gated/m.gguf`, { dir }));
  assert.is(gated.code, 'IO_ERROR');
  assert.is(gated.message, `HTTP 401 from ${server.url}/gated/m.gguf (a gated or private repository needs HF_TOKEN, and access granted on its page)`);
  server.routes.set('/broken/m.gguf', { body, status: 503 });
  const broken = await rejection(pullModel(`${server.url}/broken/m.gguf`, { dir }));
  assert.is(broken.code, 'IO_ERROR');
  assert.is(broken.message, `HTTP 503 from ${server.url}/broken/m.gguf`);
  assert.equal(readdirSync(dir), []);
});

test('a server that stops sending fails with the stall error and keeps the part for a resume', async () => {
  server.routes.set('/stall/m.gguf', { body, etag: '"v1"', cut: { mode: 'stall', at: HALF, times: 1 } });
  const dir = freshDir();
  const part = join(dir, 'm.gguf.part');
  const err = await rejection(pullModel(`${server.url}/stall/m.gguf`, { dir, stallMs: 300 }));
  assert.is(err.code, 'IO_ERROR');
  assert.is(err.message, `the download from ${server.url}/stall/m.gguf stalled: no data for 0.3 s; ${HALF} bytes are kept in ${part}; ` +
    'run the same command again to resume');
  assert.is(statSync(part).size, HALF);
  const r = await pullModel(`${server.url}/stall/m.gguf`, { dir });
  assert.is(r.resumedFrom, HALF);
  // A server that never answers at all.
  server.routes.set('/hang/m.gguf', { body, hang: true });
  const silent = await rejection(pullModel(`${server.url}/hang/m.gguf`, { dir: freshDir(), stallMs: 200 }));
  assert.is(silent.code, 'IO_ERROR');
  assert.is(silent.message, `the download from ${server.url}/hang/m.gguf stalled: no data for 0.2 s; run the same command again to resume`);
  assert.is(fileSha(r.path), bodySha);
});

test('a body that is not GGUF fails with INVALID_MODEL_FILE and leaves nothing', async () => {
  server.routes.set('/page/m.gguf', { body: Buffer.from('<html>sign in</html>') });
  const dir = freshDir();
  const err = await rejection(pullModel(`${server.url}/page/m.gguf`, { dir }));
  assert.is(err.code, 'INVALID_MODEL_FILE');
  assert.is(err.message, `not a GGUF file: ${server.url}/page/m.gguf starts with "<htm", expected "GGUF"; the download was deleted`);
  assert.equal(readdirSync(dir), []);
});

test('names: --name wins; a file name that cannot be a name asks for one', async () => {
  server.routes.set('/download', { body });
  const dir = freshDir();
  const err = await rejection(pullModel(`${server.url}/download`, { dir, name: 'a/b' }));
  assert.is(err.code, 'INVALID_ARGUMENT');
  assert.is(err.message, 'Expected a model name (letters, digits, ".", "_" and "-", without .gguf) for name but received "a/b" of type string');
  const r = await pullModel(`${server.url}/download`, { dir, name: 'tiny-stories' });
  assert.is(r.path, join(dir, 'tiny-stories.gguf'));
  const scheme = await rejection(pullModel('ftp://example.com/m.gguf', { dir }));
  assert.is(scheme.code, 'INVALID_ARGUMENT');
  assert.is(scheme.message, 'Expected hf:OWNER/REPO/FILE.gguf[@REVISION] or an http(s) URL for source but received "ftp://example.com/m.gguf" of type string');
});

function child(args: string[], env: Record<string, string>) {
  const proc = spawn(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    proc.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { proc, done };
}

test('understudy pull: a progress bar (bytes, rate, ETA) when asked for, and one line on stdout', async () => {
  server.routes.set('/cli/stories260K.gguf', { body });
  const dir = freshDir();
  const { done } = child(['pull', '--progress', '--sha256', bodySha, `${server.url}/cli/stories260K.gguf`], { UNDERSTUDY_MODELS_DIR: dir });
  const r = await done;
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `pulled stories260K: ${join(dir, 'stories260K.gguf')} (1.1 MiB; sha256 ${bodySha}, verified against --sha256)\n`);
  assert.match(r.stderr, /\[[█░]+\] 100% \| 1\.1 MiB \/ 1\.1 MiB \| [\d.]+ (B|KiB|MiB|GiB)\/s \| ETA \d+s/);
  // Without a terminal and without --progress: no bar.
  server.routes.set('/cli/quiet.gguf', { body });
  const quiet = await child(['pull', `${server.url}/cli/quiet.gguf`, '--models-dir', dir], {}).done;
  assert.is(quiet.code, 0, quiet.stderr);
  assert.is(quiet.stderr, '');
  assert.is(quiet.stdout, `pulled quiet: ${join(dir, 'quiet.gguf')} (1.1 MiB; sha256 ${bodySha}, no hash to verify against)\n`);
  const missing = await child(['pull', `${server.url}/cli/none.gguf`, '--models-dir', dir], {}).done;
  assert.is(missing.code, 1);
  assert.is(missing.stderr, `understudy: error [MODEL_NOT_FOUND]: HTTP 404 from ${server.url}/cli/none.gguf: no such file\n`);
  const usage = await child(['pull'], {}).done;
  assert.is(usage.code, 2);
  assert.is(usage.stderr, 'understudy: pull needs a source: hf:OWNER/REPO/FILE.gguf or an http(s) URL\nRun `understudy --help` for usage.\n');
  const timeout = await child(['pull', '--timeout', '0', `${server.url}/cli/quiet.gguf`], {}).done;
  assert.is(timeout.code, 2);
  assert.is(timeout.stderr, 'understudy: --timeout expects a positive number of seconds, got "0"\nRun `understudy --help` for usage.\n');
});

test('understudy pull: Ctrl-C keeps the part for a resume and exits 130', async () => {
  server.routes.set('/sigint/m.gguf', { body, etag: '"v1"', cut: { mode: 'stall', at: HALF, times: 1 } });
  const dir = freshDir();
  const part = join(dir, 'm.gguf.part');
  const { proc, done } = child(['pull', `${server.url}/sigint/m.gguf`, '--timeout', '120'], { UNDERSTUDY_MODELS_DIR: dir });
  // Waits until the first half is on disk (the server then sends nothing more).
  for (let i = 0; i < 600 && !(existsSync(part) && statSync(part).size === HALF); i++) await new Promise((r) => setTimeout(r, 50));
  proc.kill('SIGINT');
  const r = await done;
  assert.is(r.code, 130, r.stderr);
  assert.is(r.stderr, `understudy: pull interrupted: download aborted; ${HALF} bytes are kept in ${part}; run the same command again to resume\n`);
  assert.is(statSync(part).size, HALF);
  const resumed = await pullModel(`${server.url}/sigint/m.gguf`, { dir });
  assert.is(resumed.resumedFrom, HALF);
  assert.is(fileSha(resumed.path), bodySha);
});

test.run();
