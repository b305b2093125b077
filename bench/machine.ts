// What the results file records about the machine and the trees measured, and
// the check that nothing else is using the CPUs.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './models.js';

function git(args: string[]): string | null {
  try {
    return execFileSync('git', ['--no-optional-locks', ...args], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function gitInfo(): { commit: string | null; dirty: boolean } {
  return { commit: git(['rev-parse', 'HEAD']), dirty: (git(['status', '--porcelain']) ?? '') !== '' };
}

/** vendor/llama.cpp/.understudy-source.json: which llama.cpp the addon and tools were built from. */
export function llamaCppSource(): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(join(repoRoot, 'vendor', 'llama.cpp', '.understudy-source.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

export function loadavg(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

/** Share of all cores busy over the next second (0-1): other work skews every figure. */
export async function cpuBusy(): Promise<number> {
  const sum = () => os.cpus().reduce((a, c) => {
    const t = c.times;
    return { busy: a.busy + t.user + t.nice + t.sys + t.irq, total: a.total + t.user + t.nice + t.sys + t.irq + t.idle };
  }, { busy: 0, total: 0 });
  const a = sum();
  await new Promise((r) => setTimeout(r, 1000));
  const b = sum();
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}

export function machineInfo(extra: Record<string, unknown>): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(), cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, availableParallelism: os.availableParallelism(),
    os: `${os.type()} ${os.release()}`, platform: process.platform, arch: process.arch, totalMemoryMb: Math.round(os.totalmem() / 2 ** 20),
    node: process.version, ...extra,
  };
}

export interface Contention {
  /** Half-second samples taken (after each phase's first 2.5 s). */
  samples: number;
  /** Samples in which other programs used more than a quarter of a core. */
  contended: number;
  /** The most cores other programs used in one sample. */
  maxOtherCores: number;
}

// Processes being measured (the children run.ts starts), with this one.
const watched = new Set<number>();

/** Counts `pid`'s CPU time as ours until the returned function is called. */
export function watchPid(pid: number | undefined): () => void {
  if (pid === undefined) return () => {};
  watched.add(pid);
  return () => watched.delete(pid);
}

/** CPU time (clock ticks) of all cores, busy, from /proc/stat; of one process, from /proc/PID/stat. */
function busyTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  return f[0]! + f[1]! + f[2]! + f[5]! + f[6]!; // user nice system irq softirq (not idle, iowait, steal)
}
function processTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime stime, all threads
}

/**
 * Twice a second (Linux only), the CPU time all cores spent busy minus the time
 * of the processes measured (watchPid) and of this one: what other programs
 * took. Busy shares alone cannot show them (ggml's threads keep every core busy
 * anyway, and spin), nor can thread counts (the measured sides run different
 * numbers of threads). Samples where the set of processes changed are skipped.
 */
export function contentionMonitor(): { phase(label: string): void; stop(): Record<string, Contention> } {
  const byPhase: Record<string, Contention> = {};
  const hz = 100; // USER_HZ: /proc's clock ticks per second on Linux
  let current: Contention | undefined;
  let since = 0;
  let last: { t: number; busy: number; ours: number; pids: string } | undefined;
  const sample = () => {
    try {
      const pids = [process.pid, ...watched];
      const now = { t: performance.now(), busy: busyTicks(), ours: pids.reduce((a, p) => a + processTicks(p), 0), pids: pids.join(',') };
      const prev = last;
      last = now;
      // A phase opens with a child starting (node, tsx's esbuild, node-llama-cpp's binary check): not competition.
      if (!prev || prev.pids !== now.pids || !current || now.t - since < 2500) return;
      const other = (now.busy - prev.busy - (now.ours - prev.ours)) / hz / ((now.t - prev.t) / 1000);
      current.samples++;
      if (other > 0.25) current.contended++;
      current.maxOtherCores = Math.max(current.maxOtherCores, Math.round(other * 100) / 100);
    } catch {
      last = undefined; // not Linux, or a process ended between the reads
    }
  };
  const timer = setInterval(sample, 500);
  timer.unref();
  return {
    phase(label) {
      current = byPhase[label] ??= { samples: 0, contended: 0, maxOtherCores: 0 };
      since = performance.now();
    },
    stop() {
      clearInterval(timer);
      return byPhase;
    },
  };
}
