// The log lines of the distillation loop, in the router's one-line style:
//   [understudy] train   round 3  212 rows  4 tasks  38 s  held-out 0.61 → 0.78  promoted v3
//   [understudy] train   round 4  230 rows  4 tasks  41 s  held-out 0.78 → 0.71  kept v3: task=greet dropped 0.81 → 0.52 (more than 0.05)
//   [understudy] adapters  rolled back v3 → v2
import type { RoundReport } from '../router/learner.js';

function score(value: number | null): string {
  return value === null ? '-' : value.toFixed(2);
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** `v3`, or `base model` for version 0 / null. */
export function versionName(version: number | null): string {
  return version === null || version === 0 ? 'base model' : `v${version}`;
}

export function roundLine(r: RoundReport): string {
  const parts = [
    `[understudy] train   round ${r.round}`,
    `${r.rows} rows${r.skippedRows > 0 ? ` (${r.skippedRows} skipped)` : ''}`,
    `${r.tasks.length} task${r.tasks.length === 1 ? '' : 's'}`,
    seconds(r.durationMs),
    `held-out ${score(r.before)} → ${score(r.after)}`,
  ];
  parts.push(r.promoted ? `promoted v${r.version}` : `kept ${versionName(r.parent)}: ${r.reason}`);
  return parts.join('  ');
}

export function rollbackLine(from: number, to: number | null): string {
  return `[understudy] adapters  rolled back v${from} → ${versionName(to)}`;
}

export function loadedLine(version: number): string {
  return `[understudy] adapters  using v${version}`;
}
