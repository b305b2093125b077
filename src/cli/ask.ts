// `understudy ask` and `understudy dataset`: the router from the command line,
// configured by UNDERSTUDY_* variables (flags win over them). The router is the
// package's, with the distillation loop: `ask` answers with the adapter a round
// promoted, as a long-running router would.
import type { Router } from '../router/router.js';
import { createRouter } from '../train/attach.js';
import { ROUTER_FLAGS, routerOptions } from './router-flags.js';
import { parse, toNumber, UsageError } from './usage.js';

export async function askCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...ROUTER_FLAGS,
    task: { type: 'string' },
    system: { type: 'string' },
    route: { type: 'string' },
    'max-tokens': { type: 'string', short: 'n' },
    temperature: { type: 'string' },
    stop: { type: 'string', multiple: true },
  });
  if (positionals.length !== 1) throw new UsageError('ask takes one PROMPT argument');
  // One prompt, then close(): an automatic round could never finish here (close() aborts it), so none starts.
  const router = await createRouter({ ...routerOptions(values), training: { auto: false } });
  try {
    const messages = [
      ...(typeof values.system === 'string' ? [{ role: 'system', content: values.system }] : []),
      { role: 'user', content: positionals[0]! },
    ];
    const stream = router.chat({
      messages,
      stream: true,
      ...(typeof values.task === 'string' ? { task: values.task } : {}),
      ...(typeof values.route === 'string' ? { route: values.route as never } : {}),
      ...(values['max-tokens'] !== undefined ? { maxTokens: toNumber(values['max-tokens'], '--max-tokens', true) } : {}),
      ...(values.temperature !== undefined ? { temperature: toNumber(values.temperature, '--temperature', false) } : {}),
      ...(Array.isArray(values.stop) ? { stop: values.stop.filter((s): s is string => typeof s === 'string') } : {}),
    });
    for await (const piece of stream) process.stdout.write(piece);
    process.stdout.write('\n');
    await router.idle();
    return 0;
  } finally {
    await router.close();
  }
}

export async function datasetCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...ROUTER_FLAGS, task: { type: 'string' }, out: { type: 'string', short: 'o' } });
  const [action] = positionals;
  if (action !== 'export' && action !== 'tasks') throw new UsageError('dataset takes "export --out FILE" or "tasks"');
  // Reading the dataset needs no model and no remote: a stand-in backend keeps the router from loading one.
  let router: Router | undefined;
  try {
    router = await createRouter({ ...routerOptions(values), model: undefined, local: false, quiet: true, useApi: true, remote: STANDIN, embedder: false });
    if (action === 'tasks') {
      for (const { task, rows } of router.datasetTasks()) {
        const r = router.readiness(task);
        const readiness = r.readiness === null ? '-' : r.readiness.toFixed(3);
        process.stdout.write(`${task}\t${rows} rows\treadiness ${readiness} over ${r.comparisons}${r.ready ? '\tlocal' : ''}\n`);
      }
      return 0;
    }
    if (typeof values.out !== 'string') throw new UsageError('dataset export needs --out FILE');
    const n = await router.exportDataset(values.out, typeof values.task === 'string' ? { task: values.task } : {});
    process.stderr.write(`understudy: wrote ${n} rows to ${values.out}\n`);
    return 0;
  } finally {
    await router?.close();
  }
}

const STANDIN = {
  kind: 'mock' as const,
  model: 'none',
  answer: () => Promise.reject(new Error('not used')),
  health: async () => ({ ok: true, latencyMs: 0, detail: 'stand-in' }),
  close: async () => {},
};
