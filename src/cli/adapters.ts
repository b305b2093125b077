// `understudy adapters list|rollback`: the adapters distillation promoted into
// a cache directory, read and rolled back through the registry itself (no
// model is loaded and no router made: the model file is only hashed for its
// base key). A router already running keeps the adapter it applied until it
// restarts, or until its own router.rollback().
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveSettings } from '../router/config.js';
import type { AdapterInfo } from '../router/learner.js';
import { baseModelKey } from '../train/base-key.js';
import { AdapterRegistry } from '../train/registry.js';
import { showValue } from '../validate.js';
import { parse, UsageError } from './usage.js';

export async function adaptersCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    'cache-dir': { type: 'string' },
    model: { type: 'string', short: 'm' },
    json: { type: 'boolean' },
  });
  const [action, ...rest] = positionals;
  if (action !== 'list' && action !== 'rollback') {
    throw new UsageError(action === undefined ? 'adapters takes "list" or "rollback"' : `adapters takes "list" or "rollback", got ${showValue(action)}`);
  }
  if (rest.length > 0) throw new UsageError(`adapters ${action} takes no other arguments, got ${showValue(rest[0])}`);
  for (const flag of ['cache-dir', 'model'] as const) {
    if (values[flag] === '') throw new UsageError(`--${flag} expects a path, got ""`);
  }
  // The router's own resolution: flags win over UNDERSTUDY_CACHE_DIR / UNDERSTUDY_MODEL, then './.understudy'.
  const settings = resolveSettings({
    ...(typeof values['cache-dir'] === 'string' ? { cacheDir: values['cache-dir'] } : {}),
    ...(typeof values.model === 'string' ? { model: values.model } : {}),
  });
  const cacheDir = resolve(settings.cacheDir);
  const json = values.json === true;
  const warn = (message: string) => process.stderr.write(`understudy: warning: ${message}\n`);

  if (action === 'list') {
    const baseKey = settings.model ? (await baseModelKey(settings.model)).key : undefined;
    // Listing never makes folders: no manifest means no adapters yet.
    const list = existsSync(join(cacheDir, 'adapters', 'manifest.json')) ? AdapterRegistry.open(cacheDir, warn).list(baseKey) : [];
    if (json) process.stdout.write(`${JSON.stringify(list)}\n`);
    else if (list.length === 0) process.stdout.write(`no adapters in ${join(cacheDir, 'adapters')}${baseKey ? ` for ${settings.model}` : ''}\n`);
    else process.stdout.write(table(list));
    return 0;
  }

  if (!settings.model) throw new UsageError('adapters rollback needs the base model whose adapter to roll back: --model PATH or UNDERSTUDY_MODEL');
  const { key } = await baseModelKey(settings.model);
  const { from, to } = AdapterRegistry.open(cacheDir, warn).rollback(key);
  if (json) {
    process.stdout.write(`${JSON.stringify({ from, to })}\n`);
  } else {
    const now = to ? `v${to.version} is current (${to.file})` : `the base model is in use (${from.baseName ?? settings.model})`;
    process.stdout.write(`rolled back v${from.version}: ${now}\n`);
  }
  return 0;
}

const HEADER = ['version', 'status', 'parent', 'base model', 'rows', 'held-out', 'created'];

/** A plain table, columns padded to their widest cell, for a terminal or `column`-free reading. */
function table(list: AdapterInfo[]): string {
  const rows = list.map((a) => [
    `v${a.version}`,
    a.status,
    a.parent === null ? 'base' : `v${a.parent}`,
    `${a.baseName ?? '?'} (${a.baseModel})`,
    String(a.rowsUsed),
    `${score(a.heldOut.before)} → ${score(a.heldOut.after)}`,
    // Seconds are enough to tell rounds apart; the JSON keeps the full time.
    a.createdAt.replace(/\.\d+Z$/, 'Z'),
  ]);
  const all = [HEADER, ...rows];
  const widths = HEADER.map((_, i) => Math.max(...all.map((r) => [...r[i]!].length)));
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

function score(value: number | null): string {
  return value === null ? '-' : value.toFixed(2);
}
