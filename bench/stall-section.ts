// `npm run bench -- --only stall`: the semantic index's event-loop stalls at
// 50k entries (rebuild, periodic saves, one save, reopen), measured by
// bench/semantic-stall.ts in a child of its own (it needs --expose-gc and the
// compiled package, and must not share its event loop with the other sections).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './models.js';

/** The goal: no phase blocks the event loop for longer than this. */
export const STALL_GOAL_MS = 50;
const PHASES = ['rebuild', 'periodic', 'save', 'reopen'] as const;

export interface StallResult {
  size: number;
  phases: Record<string, { maxGapMs: number; maxOnCpuMs?: number; seconds?: number }>;
}

export function runStallBench(size: number, log: (s: string) => void): StallResult | null {
  const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: repoRoot, stdio: 'inherit' });
  if (tsc.status !== 0) {
    log('bench: the TypeScript build failed: the stall section is left out');
    return null;
  }
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join('bench', 'semantic-stall.ts'), '--size', String(size), '--dim', '384'],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    log(`bench: bench/semantic-stall.ts exited with ${r.status ?? r.signal}: the stall section is left out`);
    return null;
  }
  const out = JSON.parse(r.stdout) as Record<string, { maxGapMs: number; maxOnCpuMs?: number; seconds?: number }>;
  const phases: StallResult['phases'] = {};
  for (const p of PHASES) if (out[p]) phases[p] = { maxGapMs: out[p].maxGapMs, maxOnCpuMs: out[p].maxOnCpuMs, seconds: out[p].seconds };
  return { size, phases };
}

export function printStall(s: StallResult): void {
  console.log(`\nsemantic index of ${s.size} entries: longest event-loop stall per phase (goal < ${STALL_GOAL_MS} ms)`);
  for (const [phase, p] of Object.entries(s.phases)) {
    const cpu = p.maxOnCpuMs === undefined ? '' : `, main thread on CPU ${p.maxOnCpuMs.toFixed(1)} ms`;
    console.log(`  ${phase.padEnd(9)} ${p.maxGapMs.toFixed(1).padStart(7)} ms${cpu}${p.maxGapMs < STALL_GOAL_MS ? '' : '  (over the goal)'}`);
  }
}
