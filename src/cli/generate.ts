// `understudy generate`: streams a continuation to stdout, statistics to stderr.
import { loadModel } from '../llama/model.js';
import type { GpuLayers } from '../llama/system.js';
import { applyLoras, parseLoraFlags } from './lora-flag.js';
import { parse, requireModel, toNumber, UsageError } from './usage.js';
import { showValue } from '../validate.js';

export async function generateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string', short: 'm' },
    'max-tokens': { type: 'string', short: 'n' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    'min-p': { type: 'string' },
    'repeat-penalty': { type: 'string' },
    seed: { type: 'string' },
    stop: { type: 'string', multiple: true },
    'ignore-eos': { type: 'boolean' },
    lora: { type: 'string', multiple: true },
    'context-size': { type: 'string', short: 'c' },
    threads: { type: 'string', short: 't' },
    'gpu-layers': { type: 'string' },
  });
  const path = requireModel(values.model);
  if (positionals.length === 0) throw new UsageError('PROMPT is required');
  const prompt = positionals.join(' ');
  const loras = parseLoraFlags(values.lora);
  const model = await loadModel(path, { gpuLayers: gpuLayers(values['gpu-layers']) });
  const context = await model.createContext({
    contextSize: toNumber(values['context-size'], '--context-size', true),
    threads: toNumber(values.threads, '--threads', true),
  });
  await applyLoras(model, context, loras);
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    const generation = context.generate(prompt, {
      maxTokens: toNumber(values['max-tokens'], '--max-tokens', true),
      temperature: toNumber(values.temperature, '--temperature', false),
      topK: toNumber(values['top-k'], '--top-k', true),
      topP: toNumber(values['top-p'], '--top-p', false),
      minP: toNumber(values['min-p'], '--min-p', false),
      repeatPenalty: toNumber(values['repeat-penalty'], '--repeat-penalty', false),
      seed: toNumber(values.seed, '--seed', true),
      stop: values.stop as string[] | undefined,
      ignoreEos: Boolean(values['ignore-eos']),
      signal: abort.signal,
    });
    try {
      for await (const text of generation) process.stdout.write(text);
    } catch (err) {
      // Ctrl-C: what was generated stays on stdout; exit as interrupted programs do.
      if (abort.signal.aborted) {
        process.stderr.write('\n[understudy] interrupted\n');
        return 130;
      }
      throw err;
    }
    const r = await generation.result;
    if (process.stdout.isTTY) process.stdout.write('\n');
    const t = r.timings;
    process.stderr.write(
      `[understudy] prompt ${r.usage.promptTokens} tokens in ${t.promptMs.toFixed(1)} ms (${t.promptTokensPerSecond.toFixed(1)} t/s), ` +
      `generated ${r.usage.completionTokens} tokens in ${t.generationMs.toFixed(1)} ms (${t.generationTokensPerSecond.toFixed(1)} t/s), ` +
      `first token ${t.firstTokenMs.toFixed(1)} ms, stop: ${r.stopReason}\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    model.dispose();
  }
}

function gpuLayers(value: unknown): GpuLayers | undefined {
  if (value === undefined || value === 'auto' || value === 'max') return value as GpuLayers | undefined;
  const n = toNumber(value, '--gpu-layers', true);
  if (n === undefined || n < 0) throw new UsageError(`--gpu-layers expects a non-negative integer, auto or max, got ${showValue(value)}`);
  return n;
}
