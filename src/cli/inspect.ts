// `understudy tokenize`, `understudy info` and `understudy doctor`: read-only looks
// at a model and at the build.
import { loadModel } from '../llama/model.js';
import { cpuCode, systemInfo } from '../llama/system.js';
import { bindingChoice } from '../llama/binding.js';
import { hnswlibUnavailable, loadHnswlib } from '../router/hnsw-module.js';
import { loadSqlite, sqliteUnavailable } from '../router/sqlite-module.js';
import { parse, requireModel, UsageError } from './usage.js';
import { showValue } from '../validate.js';

export async function tokenizeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string', short: 'm' },
    'vocab-only': { type: 'boolean' },
    'no-special': { type: 'boolean' },
    'parse-special': { type: 'boolean' },
  });
  const path = requireModel(values.model);
  if (positionals.length !== 1) throw new UsageError('tokenize takes exactly one TEXT argument (quote it)');
  const model = await loadModel(path, { vocabOnly: Boolean(values['vocab-only']) });
  try {
    const tokens = model.tokenize(positionals[0], {
      addSpecial: !values['no-special'],
      parseSpecial: Boolean(values['parse-special']),
    });
    process.stdout.write(JSON.stringify(tokens) + '\n');
    return 0;
  } finally {
    model.dispose();
  }
}

export async function infoCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string', short: 'm' },
    'vocab-only': { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`info takes no positional arguments, got ${showValue(positionals[0])}`);
  const model = await loadModel(requireModel(values.model), { vocabOnly: Boolean(values['vocab-only']) });
  try {
    process.stdout.write(JSON.stringify(model.info, null, 2) + '\n');
    return 0;
  } finally {
    model.dispose();
  }
}

export async function doctorCommand(argv: string[]): Promise<number> {
  const { positionals } = parse(argv, {});
  if (positionals.length > 0) throw new UsageError('doctor takes no arguments');
  const info = systemInfo();
  const choice = bindingChoice();
  const out = {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    build: info.gpu,
    // Which binary loaded and why (UNDERSTUDY_BINDING, the package's own build, or a platform package).
    binary: { path: choice.path, source: choice.source, package: choice.packageName ?? null, reason: choice.reason },
    // The CPU code in use: a prebuilt package's variant for this CPU (or UNDERSTUDY_CPU_VARIANT's), else the addon's own.
    cpu: cpuCode(),
    llamaCommit: info.llamaCommit,
    backends: info.backends,
    devices: info.devices,
    gpuOffload: info.supportsGpuOffload,
    mmap: info.supportsMmap,
    features: info.features.trim(),
    // hnswlib-node is optional (it compiles from source): without it the semantic cache stays off.
    semanticCache: hnswlibStatus(),
    // better-sqlite3 is optional too (its binary comes from GitHub or a compiler): without it the router cannot start.
    routerStores: sqliteStatus(),
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  return 0;
}

function sqliteStatus(): string {
  const l = loadSqlite();
  return l.module ? 'available (better-sqlite3 loaded)' : `unavailable, so the router cannot start: ${sqliteUnavailable(l.error)}`;
}

function hnswlibStatus(): string {
  const hnsw = loadHnswlib();
  return hnsw.module ? 'available (hnswlib-node loaded)' : `unavailable: ${hnswlibUnavailable(hnsw.error)}`;
}
