// Runs fuzz cases in child processes, so a case that kills its process (a
// native abort, a segfault, V8 running out of memory) is counted and named
// instead of taking the test with it. A worker prints "CASE <i> <what>" before
// each case and "RESULT <i> <json>" after it (stdout to a pipe is synchronous
// in Node on Linux, so the line is out before the case can crash); when a child
// dies, the case it had started is the culprit, and a fresh child goes on from
// the next case.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { root } from '../helpers.js';

export type Outcome = 'ok' | 'coded' | 'uncoded' | 'signal' | 'exit' | 'hang';
export interface CaseResult { index: number; what: string; outcome: Outcome; code?: string; detail: string }

export interface RunOptions {
  /** Worker script, relative to the repository root. */
  worker: string;
  /** Extra arguments after --from and --to. */
  args?: string[];
  from?: number;
  to: number;
  /** A child that prints nothing for this long is killed and its case counted as a hang. */
  idleMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** The exit code api-worker.ts uses to end itself after reporting a stalled case. */
export const STALL_EXIT = 3;

export async function runCases(o: RunOptions): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  let next = o.from ?? 0;
  while (next < o.to) {
    const { done, finished, culprit, last, signal, code, hung, stderr } = await runChild(o, next, results);
    if (done) break;
    if (culprit === undefined) {
      // The one expected exit between cases: a worker ends itself (exit code STALL_EXIT) after
      // printing the RESULT of a case that stalled, so that what it left running cannot affect the
      // next cases; go on after that case.
      if (!finished && !hung && signal === null && code === STALL_EXIT && last !== undefined && last >= next) { next = last + 1; continue; }
      // Died before starting a case: nothing to blame, so stop rather than loop.
      if (last === undefined || last < next) {
        results.push({ index: next, what: '(worker start)', outcome: hung ? 'hang' : signal ? 'signal' : 'exit', detail: `${hung ? 'no progress' : signal ?? `exit ${code}`}: ${stderr.slice(-800)}` });
        break;
      }
      // Any other death or hang with no case open (between cases, or in the teardown after FINISHED)
      // is a problem too: blame the last case, since what it left behind is the likeliest cause.
      results.push({
        index: last,
        what: finished ? '(teardown)' : `(after this case) ${results.find((r) => r.index === last)?.what ?? ''}`,
        outcome: hung ? 'hang' : signal ? 'signal' : 'exit',
        detail: `${hung ? 'no progress' : signal ?? `exit ${code}`}: ${stderr.slice(-800)}`,
      });
      if (finished) break;
      next = last + 1;
      continue;
    }
    const outcome: Outcome = hung ? 'hang' : signal ? 'signal' : 'exit';
    results.push({ index: culprit.index, what: culprit.what, outcome, detail: `${hung ? 'no progress' : signal ?? `exit ${code}`}: ${stderr.slice(-800)}` });
    next = culprit.index + 1;
  }
  return results.sort((a, b) => a.index - b.index);
}

function runChild(o: RunOptions, from: number, results: CaseResult[]) {
  return new Promise<{ done: boolean; finished: boolean; culprit?: { index: number; what: string }; last?: number; signal: string | null; code: number | null; hung: boolean; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', o.worker, '--from', String(from), '--to', String(o.to), ...(o.args ?? [])], {
      cwd: root,
      env: { ...process.env, UNDERSTUDY_LOG_LEVEL: 'none', ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let current: { index: number; what: string } | undefined;
    let last: number | undefined;
    let finished = false;
    let hung = false;
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, o.idleMs ?? 30_000);
    };
    idle();
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    createInterface({ input: child.stdout }).on('line', (line) => {
      idle();
      const m = /^(CASE|RESULT|FINISHED) ?(\d+)? ?(.*)$/.exec(line);
      if (!m) return;
      if (m[1] === 'CASE') current = { index: Number(m[2]), what: m[3] ?? '' };
      else if (m[1] === 'RESULT') {
        const r = JSON.parse(m[3]!) as Omit<CaseResult, 'index' | 'what'>;
        results.push({ index: Number(m[2]), what: current?.what ?? '', ...r });
        last = Number(m[2]);
        current = undefined;
      } else finished = true;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ done: finished && code === 0 && signal === null && !hung, finished, culprit: current, last, signal, code, hung, stderr });
    });
  });
}

/** Counts by outcome, and the lines worth reading: every death, hang and uncoded failure. */
export function summarize(results: CaseResult[]): { counts: Record<string, number>; codes: Record<string, number>; problems: string[] } {
  const counts: Record<string, number> = {};
  const codes: Record<string, number> = {};
  const problems: string[] = [];
  for (const r of results) {
    counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
    if (r.outcome === 'coded' && r.code) codes[r.code] = (codes[r.code] ?? 0) + 1;
    if (r.outcome !== 'ok' && r.outcome !== 'coded') problems.push(`case ${r.index} (${r.what}): ${r.outcome}: ${r.detail.trim().split('\n').slice(-6).join(' | ')}`);
  }
  return { counts, codes, problems };
}
