// `--lora PATH[:SCALE]` (repeatable), shared by generate and chat.
import type { Context } from '../llama/context.js';
import type { Model } from '../llama/model.js';
import { UsageError } from './usage.js';
import { isDecimal, showValue } from '../validate.js';

export function parseLoraFlags(values: unknown): Array<{ path: string; scale: number }> {
  const list = values === undefined ? [] : (values as string[]);
  return list.map((spec) => {
    // PATH:SCALE splits at the last colon, unless what follows it is part of a path (C:\x, a/b:c/d).
    const colon = spec.lastIndexOf(':');
    const tail = colon < 0 ? undefined : spec.slice(colon + 1);
    const hasScale = tail !== undefined && !/[\\/]/.test(tail);
    const path = hasScale ? spec.slice(0, colon) : spec;
    if (path === '') throw new UsageError(`--lora expects PATH or PATH:SCALE, got ${showValue(spec)}`);
    if (!hasScale) return { path, scale: 1 };
    if (!isDecimal(tail)) {
      throw new UsageError(`--lora scale must be a decimal number, got ${showValue(tail)} in ${showValue(spec)}`);
    }
    return { path, scale: Number(tail) };
  });
}

export async function applyLoras(model: Model, context: Context, specs: Array<{ path: string; scale: number }>): Promise<void> {
  for (const { path, scale } of specs) {
    await context.setLora(await model.loadLora(path), scale);
  }
}
