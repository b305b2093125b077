// The distillation bench's chart, hand-written SVG like chart.ts (whose x axis
// is evenly spaced categories; this one is numeric): one panel per run, x =
// teacher calls so far, y in [0, 1]: the local share of the latest calls
// (one point per call: once tasks go local the teacher is rarely called, so the
// share climbs at an almost constant x), the current adapter's held-out
// similarity after each round (a step line; a dot per round, filled when the
// round promoted its candidate), the two goals as dashed lines, and a dotted
// line where the goal was reached.
import { esc, svgDocument, tickStep } from './chart.js';
import type { DistillRun } from './distill-section.js';

const W = 460;
const H = 320;
const M = { left: 54, right: 20, top: 34, bottom: 46 };
const SHARE = '#1f77b4';
const HELD_OUT = '#d62728';

function panel(run: DistillRun, goals: { share: number; similarity: number; window: number }, ox: number, oy: number): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const maxX = Math.max(10, ...run.calls.map((c) => c.teacherCalls));
  const step = tickStep(maxX);
  const right = Math.ceil(maxX / step) * step;
  const xAt = (v: number) => ox + M.left + (v / right) * pw;
  const yAt = (v: number) => oy + M.top + ph - v * ph;
  const out: string[] = [];
  const reached = run.reached ? `, ${Math.round(goals.share * 100)}% after ${run.reached.teacherCalls} teacher calls` : ', goal not reached';
  out.push(`<text x="${ox + W / 2}" y="${oy + 20}" text-anchor="middle" font-weight="bold">trainEvery ${run.trainEvery}, seed ${run.seed}${esc(reached)}</text>`);
  for (let v = 0; v <= 1.0001; v += 0.2) {
    const y = yAt(v).toFixed(1);
    out.push(`<line x1="${ox + M.left}" y1="${y}" x2="${ox + W - M.right}" y2="${y}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${ox + M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#555">${v.toFixed(1)}</text>`);
  }
  for (let v = 0; v <= right; v += step) {
    out.push(`<text x="${xAt(v).toFixed(1)}" y="${oy + H - M.bottom + 16}" text-anchor="middle" fill="#555">${v}</text>`);
  }
  out.push(`<line x1="${ox + M.left}" y1="${yAt(0)}" x2="${ox + W - M.right}" y2="${yAt(0)}" stroke="#888"/>`);
  out.push(`<text x="${ox + M.left + pw / 2}" y="${oy + H - 10}" text-anchor="middle" fill="#333">teacher calls</text>`);
  for (const [v, color] of [[goals.share, SHARE], [goals.similarity, HELD_OUT]] as const) {
    out.push(`<line x1="${ox + M.left}" y1="${yAt(v).toFixed(1)}" x2="${ox + W - M.right}" y2="${yAt(v).toFixed(1)}" stroke="${color}" stroke-dasharray="5 4" stroke-width="1"/>`);
  }
  // Where the goal was reached: the local share of the last 100 calls first at the goal.
  if (run.reached) {
    const x = xAt(run.reached.teacherCalls).toFixed(1);
    out.push(`<line x1="${x}" y1="${yAt(0)}" x2="${x}" y2="${yAt(1)}" stroke="#555" stroke-dasharray="2 3"/>`);
    out.push(`<text x="${x}" y="${(yAt(1) - 4).toFixed(1)}" text-anchor="middle" fill="#555" font-size="10">goal at ${run.reached.teacherCalls}</text>`);
  }
  // The local share: one point per call at (teacher calls so far, share of the latest calls).
  const share = run.calls.map((c) => `${xAt(c.teacherCalls).toFixed(1)},${yAt(c.share50).toFixed(1)}`);
  if (share.length > 1) out.push(`<polyline points="${share.join(' ')}" fill="none" stroke="${SHARE}" stroke-width="1.5"/>`);
  // Held-out similarity of the adapter in use: steps from round to round, up to the run's end.
  const rounds = run.rounds.filter((r) => r.heldOut !== null);
  if (rounds.length > 0) {
    const pts: string[] = [];
    rounds.forEach((r, i) => {
      const x = xAt(r.teacherCalls);
      if (i > 0) pts.push(`${x.toFixed(1)},${yAt(rounds[i - 1]!.heldOut!).toFixed(1)}`);
      pts.push(`${x.toFixed(1)},${yAt(r.heldOut!).toFixed(1)}`);
    });
    pts.push(`${xAt(run.teacherCalls).toFixed(1)},${yAt(rounds.at(-1)!.heldOut!).toFixed(1)}`);
    out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${HELD_OUT}" stroke-width="2"/>`);
    for (const r of rounds) {
      const fill = r.report.promoted ? HELD_OUT : 'white';
      out.push(`<circle cx="${xAt(r.teacherCalls).toFixed(1)}" cy="${yAt(r.heldOut!).toFixed(1)}" r="3.5" fill="${fill}" stroke="${HELD_OUT}"/>`);
    }
  }
  return out.join('\n');
}

export function distillChart(title: string, subtitle: string, runs: DistillRun[], goals: { share: number; similarity: number; window: number }): string {
  const head = 78;
  // Up to three panels a row.
  const perRow = Math.min(3, Math.max(1, runs.length));
  const width = Math.max(640, perRow * W);
  const height = head + Math.ceil(runs.length / perRow) * H + 10;
  const legend = [
    [SHARE, `local share of the last ${goals.window} calls (dashed: ${Math.round(goals.share * 100)}% goal)`],
    [HELD_OUT, `held-out similarity of the adapter in use, after each round (filled: promoted; dashed: ${goals.similarity})`],
  ].map(([color, label], i) => {
    const y = 56 + i * 14;
    return `<line x1="16" y1="${y}" x2="40" y2="${y}" stroke="${color}" stroke-width="2"/><text x="46" y="${y}" dominant-baseline="middle" font-size="11">${esc(label!)}</text>`;
  });
  return svgDocument(width, height, title, subtitle, [
    ...legend,
    ...runs.map((r, i) => panel(r, goals, (width - perRow * W) / 2 + (i % perRow) * W, head + Math.floor(i / perRow) * H)),
  ]);
}
