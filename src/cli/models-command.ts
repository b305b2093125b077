// `understudy models [--json]`: what `understudy pull` put in the models
// directory (and any other .gguf file there), by short name.
import { listModels, modelsDir } from '../models/models-dir.js';
import { showValue } from '../validate.js';
import { bytes } from './pull-progress.js';
import { parse, UsageError } from './usage.js';

export async function modelsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, 'models-dir': { type: 'string' } });
  if (positionals.length > 0) throw new UsageError(`models takes no arguments, got ${showValue(positionals[0])}`);
  if (values['models-dir'] === '') throw new UsageError('--models-dir expects a value, got ""');
  const dir = typeof values['models-dir'] === 'string' ? values['models-dir'] : modelsDir();
  const models = listModels(dir);
  if (values.json === true) {
    const out = models.map((m) => ({ name: m.name, path: m.path, size: m.size, sha256: m.sha256 ?? null, source: m.source ?? null, pulledAt: m.pulledAt ?? null }));
    process.stdout.write(`${JSON.stringify({ dir, models: out })}\n`);
    return 0;
  }
  if (models.length === 0) {
    process.stdout.write(`no models in ${dir} (\`understudy pull\` fetches one)\n`);
    return 0;
  }
  const rows = models.map((m) => [m.name, bytes(m.size), m.sha256 ? m.sha256.slice(0, 12) : '-', (m.pulledAt ?? '-').slice(0, 10), m.source ?? '-']);
  const header = ['NAME', 'SIZE', 'SHA256', 'PULLED', 'SOURCE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n(in ${dir})\n`);
  return 0;
}
