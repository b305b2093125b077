// `--lora PATH[:SCALE]` (repeatable), shared by generate and chat.
import type { Context } from '../llama/context.js';
import type { Model } from '../llama/model.js';
import { toNumber, UsageError } from './usage.js';

export function parseLoraFlags(values: unknown): Array<{ path: string; scale: number }> {
  const list = values === undefined ? [] : (values as string[]);
  return list.map((spec) => {
    const m = /^(.*?)(?::(-?[\d.]+))?$/.exec(spec);
    if (!m || m[1] === '') throw new UsageError(`--lora expects PATH or PATH:SCALE, got ${JSON.stringify(spec)}`);
    return { path: m[1], scale: m[2] === undefined ? 1 : toNumber(m[2], '--lora scale', false)! };
  });
}

export async function applyLoras(model: Model, context: Context, specs: Array<{ path: string; scale: number }>): Promise<void> {
  for (const { path, scale } of specs) {
    await context.setLora(await model.loadLora(path), scale);
  }
}
