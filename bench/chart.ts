// A hand-written SVG line chart, no dependency: one panel per model (their
// scales differ by orders of magnitude), x = number of parallel sequences
// (evenly spaced), y = total generation tokens/s from 0, one line per side.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface ChartSeries {
  label: string;
  color: string;
  /** One value per x; null where not measured. */
  values: (number | null)[];
}

export interface ChartPanel {
  title: string;
  x: number[];
  series: ChartSeries[];
}

const W = 420; // panel width
const H = 300; // panel height
const M = { left: 62, right: 30, top: 34, bottom: 46 };

/** Text made safe for SVG text and attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A round tick step giving about 5 ticks up to `max`. */
export function tickStep(max: number): number {
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  if (v >= 10_000) return `${(v / 1000).toFixed(v >= 100_000 ? 0 : 1)}k`;
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** An axis label: as few decimals as the step needs. */
function tick(v: number, step: number): string {
  if (v === 0) return '0';
  const [x, unit, s] = step >= 1000 ? [v / 1000, 'k', step / 1000] : [v, '', step];
  const decimals = Math.max(0, -Math.floor(Math.log10(s) + 1e-9));
  return `${x.toFixed(Number.isInteger(s) ? 0 : Math.max(1, decimals))}${unit}`;
}

function panel(p: ChartPanel, ox: number, oy: number): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const values = p.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const step = tickStep(Math.max(1e-9, ...values) * 1.1);
  const top = Math.ceil((Math.max(1e-9, ...values) * 1.1) / step) * step;
  const xAt = (i: number) => ox + M.left + (p.x.length === 1 ? pw / 2 : (i * pw) / (p.x.length - 1));
  const yAt = (v: number) => oy + M.top + ph - (v / top) * ph;
  const out: string[] = [];
  out.push(`<text x="${ox + W / 2}" y="${oy + 20}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  for (let v = 0; v <= top + step / 2; v += step) {
    const y = yAt(v).toFixed(1);
    out.push(`<line x1="${ox + M.left}" y1="${y}" x2="${ox + W - M.right}" y2="${y}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${ox + M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#555">${tick(v, step)}</text>`);
  }
  p.x.forEach((x, i) => {
    out.push(`<text x="${xAt(i).toFixed(1)}" y="${oy + H - M.bottom + 16}" text-anchor="middle" fill="#555">${x}</text>`);
  });
  out.push(`<line x1="${ox + M.left}" y1="${yAt(0)}" x2="${ox + W - M.right}" y2="${yAt(0)}" stroke="#888"/>`);
  out.push(`<text x="${ox + M.left + pw / 2}" y="${oy + H - 10}" text-anchor="middle" fill="#333">parallel sequences</text>`);
  out.push(`<text transform="translate(${ox + 14} ${oy + M.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">generation tokens/s (total)</text>`);
  p.series.forEach((s) => {
    const pts = s.values.map((v, i) => (v === null || !Number.isFinite(v) ? null : [xAt(i), yAt(v), v, i] as const));
    const segs = pts.filter((q) => q !== null).map((q) => `${q[0].toFixed(1)},${q[1].toFixed(1)}`);
    if (segs.length > 1) out.push(`<polyline points="${segs.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const q of pts) {
      if (!q) continue;
      out.push(`<circle cx="${q[0].toFixed(1)}" cy="${q[1].toFixed(1)}" r="3.5" fill="${s.color}"/>`);
      // The highest value at this x is labelled above its point, the others below.
      const highest = Math.max(...p.series.map((o) => o.values[q[3]] ?? -Infinity));
      const dy = q[2] >= highest ? -8 : 16;
      out.push(`<text x="${q[0].toFixed(1)}" y="${(q[1] + dy).toFixed(1)}" text-anchor="middle" fill="${s.color}" font-size="10">${fmt(q[2])}</text>`);
    }
  });
  return out.join('\n');
}

/** The whole chart: the panels side by side under a title, with a legend. */
export function parallelChart(title: string, subtitle: string, panels: ChartPanel[]): string {
  const head = 72;
  const width = Math.max(640, panels.length * W);
  const height = head + H + 10;
  const series = panels[0]?.series ?? [];
  const legend = series.map((s, i) => {
    const x = 16 + i * 190;
    return `<line x1="${x}" y1="58" x2="${x + 24}" y2="58" stroke="${s.color}" stroke-width="2"/>` +
      `<circle cx="${x + 12}" cy="58" r="3.5" fill="${s.color}"/>` +
      `<text x="${x + 30}" y="58" dominant-baseline="middle">${esc(s.label)}</text>`;
  });
  return svgDocument(width, height, title, subtitle, [
    ...legend,
    // Panels centred when fewer than the minimum width needs.
    ...panels.map((p, i) => panel(p, (width - panels.length * W) / 2 + i * W, head)),
  ]);
}

/** A white SVG document of `width` × `height`: a title and a subtitle at the top left, then `body`'s elements. */
export function svgDocument(width: number, height: number, title: string, subtitle: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="16" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="16" y="40" fill="#555" font-size="11">${esc(subtitle)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

export function writeChart(path: string, svg: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, svg);
}
