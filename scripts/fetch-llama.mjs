#!/usr/bin/env node
// Fills vendor/llama.cpp with the pinned llama.cpp source.
//
// Source: the npm tarball of node-llama-cpp, which carries llama.cpp as a git
// bundle (llama/gitRelease.bundle). The tarball is fetched with `npm pack` (so the
// npm cache and registry settings apply), checked against a pinned sha256, and the
// bundle is cloned and trimmed to what our build and tests use. A stamp file
// records what was fetched and how it was trimmed; a second run with the same pin
// and trim does nothing.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PIN = {
  package: 'node-llama-cpp@3.22.1',
  sha256: 'a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f',
  commit: 'de3ff815ea7d559ee917f063901b8986f038abc6',
};
// Bumped whenever DROP or the KEEP_* lists change, so that a vendor/ trimmed by an
// older version of this script is fetched again (2: tools/completion kept;
// 3: tools/server, mtmd and ui kept for llama-server).
export const TRIM = 3;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'vendor', 'llama.cpp');
// Our own small changes to llama.cpp, applied in name order after the hash
// check; each file says why it exists. The stamp records their hashes, so a
// changed or new patch makes the next run fetch and apply again.
const patchDir = join(root, 'patches');

/** The patch files and their sha256, in the order they are applied. */
export function patchList() {
  if (!existsSync(patchDir)) return [];
  return readdirSync(patchDir).filter((f) => f.endsWith('.patch')).sort()
    .map((file) => ({ file, sha256: sha256(join(patchDir, file)) }));
}
const stamp = join(target, '.understudy-source.json');

// Paths removed after cloning: documentation, media, bindings in other languages,
// GPU backends we do not build, tools other than the reference ones our tests and
// benchmark run, and vocabularies that llama.cpp's own tokenizer test does not use.
const DROP = [
  '.git', '.github', '.devops', 'docs', 'media', 'gguf-py', 'benches', 'conversion', 'pocs',
  'grammars', 'prompts', 'requirements', 'licenses', 'app',
  // llama-server's Python tests and benchmarks, mtmd's sample media
  'tools/server/tests', 'tools/server/bench', 'tools/server/README-dev.md', 'tools/mtmd/tests',
  'tools/mtmd/test-1.jpeg', 'tools/mtmd/test-2.mp3', 'tools/mtmd/test-3.mp4',
  ...['cann', 'hexagon', 'sycl', 'opencl', 'vulkan', 'webgpu', 'openvino', 'et', 'zdnn',
    'zendnn', 'virtgpu', 'rpc', 'musa'].map((b) => `ggml/src/ggml-${b}`),
  'models/ggml-vocab-aquila.gguf', 'models/ggml-vocab-baichuan.gguf',
  'models/ggml-vocab-gpt-neox.gguf', 'models/ggml-vocab-nomic-bert-moe.gguf',
];
// completion is llama.cpp's llama-completion, which the LoRA tests run with --lora;
// server is llama-server, which the server benchmark compares ours with; it links
// mtmd (multimodal input) and ui (the web page it serves).
const KEEP_TOOLS = new Set(['CMakeLists.txt', 'llama-bench', 'batched-bench', 'quantize', 'completion', 'server', 'mtmd', 'ui']);
// Of the web UI only the templates that embed its assets stay: we build it
// without assets (LLAMA_BUILD_UI and LLAMA_USE_PREBUILT_UI off in CMakeLists.txt),
// so neither its Svelte sources nor npm are needed. The cmake script that
// writes the embedding is the one file of scripts/ we keep.
const KEEP_UI = new Set(['CMakeLists.txt', 'ui.cpp.in', 'ui.h.in']);
const KEEP_SCRIPTS = new Set(['ui-assets.cmake']);
const KEEP_EXAMPLES = new Set(['simple']);
// tests/CMakeLists.txt stays: it names the vocabularies llama.cpp's own tokenizer
// test runs on, which our tokenizer test reads.
const KEEP_TESTS = new Set(['CMakeLists.txt']);

function log(msg) {
  process.stderr.write(`[fetch-llama] ${msg}\n`);
}

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Whether a stamp file's text records this pin, this trim and these patches. */
export function stampIsCurrent(text) {
  try {
    const s = JSON.parse(text);
    return s.package === PIN.package && s.sha256 === PIN.sha256 && s.commit === PIN.commit && s.trim === TRIM &&
      JSON.stringify(s.patches ?? []) === JSON.stringify(patchList());
  } catch {
    return false;
  }
}

function alreadyThere() {
  return existsSync(stamp) && stampIsCurrent(readFileSync(stamp, 'utf8'));
}

// A refetch (a new trim, or --force) writes every file anew. Files whose content
// did not change get back their old modification time, so that a build folder
// made from the old tree recompiles only what changed, not all of llama.cpp.
function keepUnchangedTimes(fresh, old) {
  for (const name of readdirSync(fresh)) {
    const f = join(fresh, name);
    const o = join(old, name);
    let before;
    try {
      before = lstatSync(o);
    } catch {
      continue; // new in this trim
    }
    const now = lstatSync(f);
    if (now.isDirectory() && before.isDirectory()) {
      keepUnchangedTimes(f, o);
    } else if (now.isFile() && before.isFile() && now.size === before.size && readFileSync(f).equals(readFileSync(o))) {
      utimesSync(f, before.atime, before.mtime);
    }
  }
}

function trim(dir) {
  for (const p of DROP) rmSync(join(dir, p), { recursive: true, force: true });
  const keeps = [['tools', KEEP_TOOLS], ['tools/ui', KEEP_UI], ['scripts', KEEP_SCRIPTS], ['examples', KEEP_EXAMPLES], ['tests', KEEP_TESTS]];
  for (const [sub, keep] of keeps) {
    for (const name of readdirSync(join(dir, sub))) {
      if (!keep.has(name)) rmSync(join(dir, sub, name), { recursive: true, force: true });
    }
  }
  // Our build adds the reference tools itself; their parent lists must not name
  // the folders removed above.
  writeFileSync(join(dir, 'tools', 'CMakeLists.txt'), '# trimmed by understudy: tools are added by the top-level build\n');
  writeFileSync(join(dir, 'examples', 'CMakeLists.txt'), '# trimmed by understudy: examples are added by the top-level build\n');
}

export function fetchLlama({ force = false } = {}) {
  if (!force && alreadyThere()) {
    log(`vendor/llama.cpp is already at ${PIN.commit.slice(0, 12)}`);
    return target;
  }
  const work = mkdtempSync(join(tmpdir(), 'understudy-llama-'));
  try {
    log(`fetching ${PIN.package} with npm pack`);
    const out = execFileSync('npm', ['pack', PIN.package, '--silent', '--pack-destination', work], {
      cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
    }).trim().split('\n').pop();
    const tgz = join(work, out);
    const got = sha256(tgz);
    if (got !== PIN.sha256) {
      throw new Error(`sha256 mismatch for ${PIN.package}: expected ${PIN.sha256}, got ${got}`);
    }
    execFileSync('tar', ['-xzf', tgz, '-C', work, 'package/llama/gitRelease.bundle']);
    const staging = join(work, 'llama.cpp');
    log('cloning the llama.cpp bundle');
    execFileSync('git', ['-c', 'advice.detachedHead=false', 'clone', '--quiet', join(work, 'package/llama/gitRelease.bundle'), staging], { stdio: 'inherit' });
    const head = execFileSync('git', ['-C', staging, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    if (head !== PIN.commit) throw new Error(`bundle HEAD is ${head}, expected ${PIN.commit}`);
    const patches = patchList();
    for (const { file } of patches) {
      log(`applying patches/${file}`);
      execFileSync('git', ['-C', staging, 'apply', '--whitespace=nowarn', join(patchDir, file)], { stdio: 'inherit' });
    }
    trim(staging);
    if (existsSync(target)) keepUnchangedTimes(staging, target);
    writeFileSync(join(staging, '.understudy-source.json'), JSON.stringify({ ...PIN, trim: TRIM, patches }, null, 2) + '\n');
    rmSync(target, { recursive: true, force: true });
    rmSync(join(root, 'vendor'), { recursive: true, force: true });
    execFileSync('mkdir', ['-p', join(root, 'vendor')]);
    renameSync(staging, target);
    log(`vendor/llama.cpp ready at ${PIN.commit.slice(0, 12)}`);
    return target;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    fetchLlama({ force: process.argv.includes('--force') });
  } catch (err) {
    log(`error: ${err.message}`);
    process.exit(1);
  }
}
