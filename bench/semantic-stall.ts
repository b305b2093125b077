// The semantic index and the event loop: the longest stall of the main thread
// while a task's index of 50k entries is rebuilt from the cache rows (its files
// lost), while it is saved periodically as entries keep coming, and while a
// verified index is reopened. Before the index moved its heavy work to a
// Piscina worker, the rebuild ran on the event loop (61 s frozen at 50k) and a
// save stalled it for 100-240 ms every 5 s.
//
//   npm run build && node --expose-gc --import tsx bench/semantic-stall.ts [--size 50000] [--dim 384] [--adds-per-second 50] [--legacy FILE]
//
// A stall is the longest gap between ticks of a 1 ms interval timer (and, for
// comparison, perf_hooks.monitorEventLoopDelay's max). --legacy FILE measures
// an older SemanticIndex module with the synchronous API instead, for the
// "before" figures: `git show c4a2b78:src/router/semantic-index.ts >
// node_modules/.cache/legacy-semantic-index.ts` (inside the repository, so that
// its imports resolve). Prints one JSON object; nothing is asserted.
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import type { AnswerCache as AnswerCacheType } from '../src/router/answer-cache.js';
import type { SemanticIndex as SemanticIndexType } from '../src/router/semantic-index.js';
import type { Db } from '../src/router/store.js';
import { repoRoot } from './models.js';
import { rng } from './ours.js';

// The compiled package (npm run build), as users run it: under tsx, the
// worker's TypeScript would be compiled on the fly, partly on the event loop's time.
const dist = join(repoRoot, 'dist', 'router');
if (!existsSync(join(dist, 'semantic-worker.js'))) {
  console.error('bench/semantic-stall.ts measures the compiled package: run `npm run build` first');
  process.exit(2);
}
const { AnswerCache } = await import(pathToFileURL(join(dist, 'answer-cache.js')).href) as typeof import('../src/router/answer-cache.js');
const { SemanticIndex } = await import(pathToFileURL(join(dist, 'semantic-index.js')).href) as typeof import('../src/router/semantic-index.js');
const { openDatabase } = await import(pathToFileURL(join(dist, 'store.js')).href) as typeof import('../src/router/store.js');
type AnswerCache = AnswerCacheType;
type SemanticIndex = SemanticIndexType;

export interface Stall {
  /** Longest gap between two ticks of a 1 ms interval, in ms: how long the event loop was blocked. */
  maxGapMs: number;
  /**
   * Longest time the event loop was busy (running callbacks, not waiting for
   * events) between two ticks, in ms (performance.eventLoopUtilization): what
   * our own code blocked, apart from the time the OS gave the CPU to other
   * processes while the loop waited, which a busy machine adds to maxGapMs.
   */
  maxBusyMs: number;
  /**
   * Longest CPU time the main thread itself ran between two ticks, in ms (Linux:
   * /proc/self/task/<pid>/schedstat): a busy callback the OS preempted counts in
   * maxBusyMs for its whole wall time, here only for the time it really ran.
   */
  maxOnCpuMs?: number;
  /** Longest garbage-collection pause (PerformanceObserver 'gc'), in ms. */
  maxGcMs: number;
  /** Start times of gaps over 20 ms (ms since the watch began), at most 20. */
  longGaps: number[];
  /** Share of the span the event loop was busy (performance.eventLoopUtilization): a long gap at low use was the OS, not us. */
  utilization: number;
  /** monitorEventLoopDelay's max and p99 over the same span, in ms. */
  delayMaxMs: number;
  delayP99Ms: number;
  seconds: number;
}

/** Watches the event loop until stop(). */
export function watchStalls(): { stop(): Stall } {
  // Garbage left by what ran before is collected now, not counted as a stall of what is measured.
  (globalThis as { gc?: () => void }).gc?.();
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  let last = started;
  let maxGap = 0;
  let maxBusy = 0;
  let lastElu = performance.eventLoopUtilization();
  const schedstat = `/proc/self/task/${process.pid}/schedstat`;
  // Read into one buffer and parsed by hand: the watch must not make the garbage whose collection it would then count.
  const fd = existsSync(schedstat) ? openSync(schedstat, 'r') : undefined;
  const bytes = Buffer.alloc(128);
  const onCpu = fd === undefined ? undefined : () => {
    const n = readSync(fd, bytes, 0, bytes.length, 0);
    let ns = 0;
    for (let i = 0; i < n && bytes[i]! >= 48 && bytes[i]! <= 57; i++) ns = ns * 10 + bytes[i]! - 48;
    return ns / 1e6;
  };
  let lastCpu = onCpu?.() ?? 0;
  let maxOnCpu = 0;
  const longGaps: number[] = [];
  const tick = (now: number) => {
    if (now - last > 20) longGaps.push(Math.round(last - started));
    maxGap = Math.max(maxGap, now - last);
    last = now;
    const current = performance.eventLoopUtilization();
    maxBusy = Math.max(maxBusy, current.active - lastElu.active);
    lastElu = current;
    if (onCpu) {
      const cpu = onCpu();
      maxOnCpu = Math.max(maxOnCpu, cpu - lastCpu);
      lastCpu = cpu;
    }
  };
  const timer = setInterval(() => tick(performance.now()), 1);
  let maxGc = 0;
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) maxGc = Math.max(maxGc, e.duration);
  });
  gcs.observe({ entryTypes: ['gc'] });
  return {
    stop() {
      clearInterval(timer);
      histogram.disable();
      gcs.disconnect();
      tick(performance.now());
      if (fd !== undefined) closeSync(fd);
      return {
        maxGapMs: maxGap, maxBusyMs: maxBusy, maxGcMs: maxGc, ...(onCpu ? { maxOnCpuMs: maxOnCpu } : {}), longGaps: longGaps.slice(0, 20), utilization: performance.eventLoopUtilization(elu).utilization,
        delayMaxMs: histogram.max / 1e6, delayP99Ms: histogram.percentile(99) / 1e6, seconds: (performance.now() - started) / 1000,
      };
    },
  };
}

const TASK = 'bench';
const SIGNATURE = 'bench-signature';
const USAGE = { promptTokens: 30, completionTokens: 20, totalTokens: 50 };

function randomUnit(dim: number, next: () => number): Float32Array {
  const v = new Float32Array(dim);
  let n = 0;
  for (let i = 0; i < dim; i++) n += (v[i] = next() - 0.5) ** 2;
  n = Math.sqrt(n);
  for (let i = 0; i < dim; i++) v[i]! /= n;
  return v;
}

/** The synchronous API of the index before the worker (for --legacy). */
interface LegacyIndex {
  nearest(task: string, embedding: Float32Array, signature: string): unknown;
  add(task: string, id: number, embedding: Float32Array, signature: string): void;
  save(): void;
  close(): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    size: { type: 'string', default: '50000' }, dim: { type: 'string', default: '384' },
    'adds-per-second': { type: 'string', default: '50' }, 'idle-seconds': { type: 'string', default: '5' }, 'save-seconds': { type: 'string', default: '12' },
    legacy: { type: 'string' },
  } });
  const size = Number(values.size);
  const dim = Number(values.dim);
  const addsPerSecond = Number(values['adds-per-second']);
  const log = (m: string) => console.error(m);
  const dir = mkdtempSync(join(tmpdir(), 'understudy-bench-stall-'));
  const next = rng(7);
  try {
    // 1. The rows: `size` entries of one task, as the router files them.
    const db: Db = openDatabase(dir, 'cache.db', false);
    let index: SemanticIndex | LegacyIndex | undefined;
    const cache = new AnswerCache(db, { maxEntries: size * 2, onRemove: (rows) => (index as SemanticIndex | undefined)?.remove(rows) });
    let t0 = performance.now();
    db.transaction(() => {
      for (let i = 0; i < size; i++) {
        cache.put({ key: `k${i}`, task: TASK, signature: SIGNATURE, answer: `answer ${i}`, usage: USAGE, model: 'mock', embedding: randomUnit(dim, next) });
      }
    })();
    const fillSeconds = (performance.now() - t0) / 1000;
    log(`filled ${size} rows of dimension ${dim} in ${fillSeconds.toFixed(1)} s`);

    // 2. What reading every embedding on the main thread costs (the old rebuild did), all at once and a page at a time.
    t0 = performance.now();
    const readAll = db.prepare('SELECT id, embedding, signature FROM entries WHERE task = ? AND embedding IS NOT NULL').all(TASK).length;
    const readAllMs = performance.now() - t0;
    const page = db.prepare('SELECT id, embedding, signature FROM entries WHERE task = ? AND embedding IS NOT NULL AND id > ? ORDER BY id LIMIT 1000');
    let maxPageMs = 0;
    for (let from = 0; ;) {
      const p0 = performance.now();
      const rows = page.all(TASK, from) as { id: number }[];
      maxPageMs = Math.max(maxPageMs, performance.now() - p0);
      if (rows.length < 1000) break;
      from = rows[rows.length - 1]!.id;
    }
    log(`reading ${readAll} embeddings on the main thread: ${readAllMs.toFixed(0)} ms at once, ${maxPageMs.toFixed(1)} ms for the slowest page of 1000`);

    // 0. The noise floor: the same watch over an idle event loop (on a busy machine the OS alone makes gaps).
    const idle = watchStalls();
    await sleep(Number(values['idle-seconds']) * 1000);
    const noiseFloor = idle.stop();
    log(`idle event loop over ${noiseFloor.seconds.toFixed(0)} s: longest gap ${noiseFloor.maxGapMs.toFixed(1)} ms (busy ${noiseFloor.maxBusyMs.toFixed(1)} ms, on CPU ${noiseFloor.maxOnCpuMs?.toFixed(1)} ms, GC ${noiseFloor.maxGcMs.toFixed(1)} ms)`);

    const query = randomUnit(dim, next);
    const semanticDir = join(dir, 'semantic');
    const legacy = values.legacy
      ? (await import(pathToFileURL(resolve(values.legacy)).href) as { SemanticIndex: new (dir: string, cache: AnswerCache, onError: (e: unknown) => void) => LegacyIndex }).SemanticIndex
      : undefined;
    const make = () => legacy
      ? new legacy(semanticDir, cache, (err) => { throw err; })
      : new SemanticIndex(semanticDir, db, { onError: (err) => { throw err; }, onWarning: log });

    // 3. The first lookup of a task whose index files are missing: a rebuild from every row.
    //    Lookups keep coming every 10 ms meanwhile; they miss until the index is whole.
    index = make();
    let watch = watchStalls();
    t0 = performance.now();
    let lookups = 0;
    let missed = 0;
    let slowestLookupMs = 0;
    let stop = false;
    const looking = (async () => {
      while (!stop) {
        const l0 = performance.now();
        const hit = await index!.nearest(TASK, query, SIGNATURE);
        slowestLookupMs = Math.max(slowestLookupMs, performance.now() - l0);
        lookups++;
        if (!hit) missed++;
        await sleep(10);
      }
    })();
    if (index instanceof SemanticIndex) {
      await index.nearest(TASK, query, SIGNATURE);
      await index.opened(TASK);
    } else {
      index.nearest(TASK, query, SIGNATURE);
    }
    const rebuildSeconds = (performance.now() - t0) / 1000;
    await sleep(50);
    stop = true;
    await looking;
    const rebuild = { ...watch.stop(), rebuildSeconds, lookups, missed, slowestLookupMs };
    log(`rebuild of ${size}: ${rebuildSeconds.toFixed(1)} s; longest stall ${rebuild.maxGapMs.toFixed(1)} ms (busy ${rebuild.maxBusyMs.toFixed(1)} ms, on CPU ${rebuild.maxOnCpuMs?.toFixed(1)} ms, GC ${rebuild.maxGcMs.toFixed(1)} ms); ${lookups} lookups meanwhile, ${missed} missed, slowest ${slowestLookupMs.toFixed(0)} ms`);

    // 4. Periodic saves (every 5 s after a change) while entries keep coming.
    const saveSeconds = Number(values['save-seconds']);
    let added = 0;
    let slowestAddMs = 0;
    let slowestPutMs = 0;
    watch = watchStalls();
    const until = performance.now() + saveSeconds * 1000;
    while (performance.now() < until) {
      const v = randomUnit(dim, next);
      const p0 = performance.now();
      const id = cache.put({ key: `new${added}`, task: TASK, signature: SIGNATURE, answer: `new ${added}`, usage: USAGE, model: 'mock', embedding: v });
      const a0 = performance.now();
      index.add(TASK, id, v, SIGNATURE);
      slowestAddMs = Math.max(slowestAddMs, performance.now() - a0);
      slowestPutMs = Math.max(slowestPutMs, a0 - p0);
      added++;
      await sleep(1000 / addsPerSecond);
    }
    const periodic = { ...watch.stop(), added, slowestAddMs, slowestPutMs };
    log(`periodic saves over ${saveSeconds} s with ${added} adds: longest stall ${periodic.maxGapMs.toFixed(1)} ms (busy ${periodic.maxBusyMs.toFixed(1)} ms, on CPU ${periodic.maxOnCpuMs?.toFixed(1)} ms, GC ${periodic.maxGcMs.toFixed(1)} ms) (slowest index.add ${slowestAddMs.toFixed(1)} ms, slowest cache.put ${slowestPutMs.toFixed(1)} ms)`);

    // 5. One explicit save of the whole index, and 6. reopening the saved (verified) index.
    index.add(TASK, cache.put({ key: 'last', task: TASK, signature: SIGNATURE, answer: 'last', usage: USAGE, model: 'mock', embedding: query }), query, SIGNATURE);
    watch = watchStalls();
    t0 = performance.now();
    await index.save();
    const saveMs = performance.now() - t0;
    const save = { ...watch.stop(), saveMs };
    log(`one save: ${saveMs.toFixed(0)} ms; longest stall ${save.maxGapMs.toFixed(1)} ms (busy ${save.maxBusyMs.toFixed(1)} ms, on CPU ${save.maxOnCpuMs?.toFixed(1)} ms, GC ${save.maxGcMs.toFixed(1)} ms)`);
    await index.close();

    index = make();
    watch = watchStalls();
    t0 = performance.now();
    if (index instanceof SemanticIndex) {
      await index.nearest(TASK, query, SIGNATURE);
      await index.opened(TASK);
    } else {
      index.nearest(TASK, query, SIGNATURE);
    }
    const reopen = { ...watch.stop(), reopenMs: performance.now() - t0, hit: (await index.nearest(TASK, query, SIGNATURE)) !== undefined };
    log(`reopening the saved index: ${reopen.reopenMs.toFixed(0)} ms; longest stall ${reopen.maxGapMs.toFixed(1)} ms (busy ${reopen.maxBusyMs.toFixed(1)} ms, on CPU ${reopen.maxOnCpuMs?.toFixed(1)} ms, GC ${reopen.maxGcMs.toFixed(1)} ms)`);
    await index.close();
    cache.close();
    db.close();
    process.stdout.write(`${JSON.stringify({ implementation: legacy ? 'legacy (synchronous)' : 'worker', size, dim, fillSeconds,
      mainThreadRead: { allMs: readAllMs, slowestPageMs: maxPageMs }, noiseFloor, rebuild, periodic, save, reopen }, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
