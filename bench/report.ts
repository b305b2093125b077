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
  /** node-llama-cpp on the same test, when it was measured. */
  nlc?: Stat;
}

export function compare(model: string, test: string, llama: Stat, ours: Stat, nlc?: Stat): ComparisonRow {
  return { model, test, llama, ours, ratio: ours.mean / llama.mean, nlc };
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
  const nlc = rows.some((r) => r.nlc);
  const header = ['model', 'test', 'llama.cpp t/s', 'ours t/s', 'ours/llama.cpp', ''];
  if (nlc) header.push('node-llama-cpp t/s', 'ours/node-llama-cpp');
  return table(
    header,
    rows.map((r) => {
      const cells = [r.model, r.test, fmt(r.llama), fmt(r.ours), r.ratio.toFixed(3), verdict(r)];
      if (nlc) cells.push(r.nlc ? fmt(r.nlc) : '-', r.nlc ? (r.ours.mean / r.nlc.mean).toFixed(1) : '-');
      return cells;
    }),
    [false, false, true, true, true, false, true, true],
  );
}

/** The goal for ours / llama-batched-bench at PARALLEL_GOAL_AT sequences. */
export const PARALLEL_GOAL = 0.9;
export const PARALLEL_GOAL_AT = [4, 16];

export interface ParallelRow {
  model: string;
  sequences: number;
  llamaTg: Stat;
  oursTg: Stat;
  llamaPp: Stat;
  oursPp: Stat;
}

function parallelVerdict(r: ParallelRow): string {
  const ratio = r.oursTg.mean / r.llamaTg.mean;
  const noise = r.llamaTg.stddev > NOISY_CV * r.llamaTg.mean || r.oursTg.stddev > NOISY_CV * r.oursTg.mean ? ' (noisy)' : '';
  if (!PARALLEL_GOAL_AT.includes(r.sequences)) return noise.trim();
  return `${ratio >= PARALLEL_GOAL ? 'ok' : `< ${PARALLEL_GOAL}`}${noise}`;
}

export function parallelTable(rows: ParallelRow[]): string {
  return table(
    ['model', 'sequences', 'llama-batched-bench S_TG t/s', 'ours t/s', 'ours/llama.cpp', '', 'prompts S_PP t/s: llama.cpp / ours'],
    rows.map((r) => [
      r.model, String(r.sequences), fmt(r.llamaTg), fmt(r.oursTg), (r.oursTg.mean / r.llamaTg.mean).toFixed(3), parallelVerdict(r),
      `${r.llamaPp.mean.toFixed(1)} / ${r.oursPp.mean.toFixed(1)}`,
    ]),
    [false, true, true, true, true, false, true],
  );
}

export function parallelBelowGoal(rows: ParallelRow[]): ParallelRow[] {
  return rows.filter((r) => PARALLEL_GOAL_AT.includes(r.sequences) && r.oursTg.mean / r.llamaTg.mean < PARALLEL_GOAL);
}

type Lag = { p50: number; p99: number; max: number };
const lagCell = (l: Lag) => `${l.p50.toFixed(2)} / ${l.p99.toFixed(2)} / ${l.max.toFixed(2)}`;

export interface ServingRow {
  model: string;
  lag: { sequences: number; complete: Lag; streamed: Lag; streamedTgTps: number; idle: Lag } | null;
  embeddings: { texts: number; tokens: number; textsPerSecond: Stat; tokensPerSecond: Stat } | null;
}

/** Event-loop lag while many sequences generate, and embeddings per second (ours only). */
export function servingTable(rows: ServingRow[]): string {
  return table(
    ['model', 'ev-loop lag p50 / p99 / max ms: complete()', 'streamed (t/s)', 'idle p50 / p99', 'embeddings texts/s', 'embedding tokens/s'],
    rows.map(({ model, lag, embeddings: e }) => [
      lag ? `${model} (${lag.sequences} seq)` : model,
      lag ? lagCell(lag.complete) : '-',
      lag ? `${lagCell(lag.streamed)} (${lag.streamedTgTps.toFixed(1)})` : '-',
      lag ? `${lag.idle.p50.toFixed(2)} / ${lag.idle.p99.toFixed(2)}` : '-',
      e ? `${fmt(e.textsPerSecond)}` : '-',
      e ? `${fmt(e.tokensPerSecond)} (${e.texts} texts, ${e.tokens} tok)` : '-',
    ]),
    [false, true, true, true, true, true],
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
