// Statistics, the printed tables and the results file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Stat {
  mean: number;
  /** Sample standard deviation (n - 1), as llama-bench reports it. */
  stddev: number;
  samples: number[];
}

export function summarize(samples: number[]): Stat {
  const n = samples.length;
  const mean = n ? samples.reduce((a, b) => a + b, 0) / n : NaN;
  const stddev = n > 1 ? Math.sqrt(samples.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, stddev, samples };
}

/** The goal for ours / llama.cpp. */
export const GOAL_RATIO = 0.95;

export interface ComparisonRow {
  model: string;
  test: string;
  llama: Stat;
  ours: Stat;
  ratio: number;
}

export function compare(model: string, test: string, llama: Stat, ours: Stat): ComparisonRow {
  return { model, test, llama, ours, ratio: ours.mean / llama.mean };
}

function fmt(s: Stat): string {
  return `${s.mean.toFixed(2)} ± ${s.stddev.toFixed(2)}`;
}

function table(header: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (rightAlign[i] ? `${'-'.repeat(w + 1)}:` : `-${'-'.repeat(w)}-`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** A figure whose runs spread by more than this share of the mean is flagged as noisy. */
export const NOISY_CV = 0.05;

export function noisy(r: ComparisonRow): boolean {
  return r.llama.stddev > NOISY_CV * r.llama.mean || r.ours.stddev > NOISY_CV * r.ours.mean;
}

function verdict(r: ComparisonRow): string {
  return `${r.ratio >= GOAL_RATIO ? 'ok' : `< ${GOAL_RATIO}`}${noisy(r) ? ' (noisy)' : ''}`;
}

export function comparisonTable(rows: ComparisonRow[]): string {
  return table(
    ['model', 'test', 'llama.cpp t/s', 'ours t/s', 'ours/llama.cpp', ''],
    rows.map((r) => [r.model, r.test, fmt(r.llama), fmt(r.ours), r.ratio.toFixed(3), verdict(r)]),
    [false, false, true, true, true, false],
  );
}

export interface ExtraRow {
  model: string;
  ttftMs: Stat;
  ttftJsMs: Stat;
  promptTokens: number;
  lagIdle: { p50: number; p99: number };
  lagGen: { p50: number; p99: number; max: number };
  streamTg: Stat;
  loadMs: number;
  peakRssMb: number;
}

export function extrasTable(rows: ExtraRow[]): string {
  return table(
    ['model', 'TTFT ms (native)', 'TTFT ms (JS chunk)', 'ev-loop lag p50/p99/max ms (idle p50/p99)', 'tg128 streamed t/s', 'load ms', 'peak RSS MB'],
    rows.map((r) => [
      r.model,
      `${fmt(r.ttftMs)} (${r.promptTokens} tok)`,
      fmt(r.ttftJsMs),
      `${r.lagGen.p50.toFixed(2)}/${r.lagGen.p99.toFixed(2)}/${r.lagGen.max.toFixed(2)} (${r.lagIdle.p50.toFixed(2)}/${r.lagIdle.p99.toFixed(2)})`,
      fmt(r.streamTg),
      r.loadMs.toFixed(0),
      r.peakRssMb.toFixed(0),
    ]),
    [false, true, true, true, true, true, true],
  );
}

export function writeResults(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
}
