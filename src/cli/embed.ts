// `understudy embed`: one JSON array (a unit-length vector) per text, one per line.
import { loadModel } from '../llama/model.js';
import { parse, requireModel, toNumber, UsageError } from './usage.js';

export async function embedCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string', short: 'm' },
    truncate: { type: 'boolean' },
    'context-size': { type: 'string', short: 'c' },
    threads: { type: 'string', short: 't' },
  });
  const path = requireModel(values.model);
  if (positionals.length === 0) throw new UsageError('embed takes one or more TEXT arguments');
  const model = await loadModel(path);
  try {
    const context = await model.createContext({
      embeddings: true,
      contextSize: toNumber(values['context-size'], '--context-size', true),
      threads: toNumber(values.threads, '--threads', true),
    });
    const vectors = await context.embed(positionals, { truncate: Boolean(values.truncate) });
    for (const v of vectors) process.stdout.write(JSON.stringify(Array.from(v)) + '\n');
    return 0;
  } finally {
    model.dispose();
  }
}
