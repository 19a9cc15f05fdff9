// Line charts as SVG (rasterised by sharp, as the ageing grid's labels are): a title, axes with
// 1-2-5 ticks, axis labels and a legend. Pure: data in, SVG text out.
import { escapeXml } from './svg.js';

export interface Series {
  name: string;
  /** [x, y] pairs in x order; non-finite y values are gaps in the data (skipped). */
  points: Array<[number, number]>;
}

export interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
  /** Base-2 logarithmic y axis (a loss scale moves in powers of two). */
  log2?: boolean;
  /** `small`: one of a grid of small multiples (one curve each, no legend). */
  small?: boolean;
  /** Noisy per-iteration values: a long series is drawn faint with its moving mean over it. */
  smooth?: boolean;
}

export const PANEL_WIDTH = 800;
export const PANEL_HEIGHT = 340;
export const SMALL_WIDTH = 400;
export const SMALL_HEIGHT = 250;
/** A series longer than this is drawn faint, with its moving mean over it. */
const SMOOTH_ABOVE = 60;
const FONT = 'font-family="DejaVu Sans, sans-serif"';
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** About `count` round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e7) return String(v); // a loss scale of 65536 reads as such
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

/**
 * At most `max` points per series: the mean of each run of consecutive points (a 36,000-iteration
 * run has far more points than the chart has pixels).
 */
export function downsample(points: Array<[number, number]>, max: number): Array<[number, number]> {
  if (points.length <= max) return points;
  const per = Math.ceil(points.length / max);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < points.length; i += per) {
    const chunk = points.slice(i, i + per);
    out.push([
      chunk.reduce((s, p) => s + p[0], 0) / chunk.length,
      chunk.reduce((s, p) => s + p[1], 0) / chunk.length,
    ]);
  }
  return out;
}

/** The trailing mean over `k` points (fewer at the start). */
export function movingMean(points: Array<[number, number]>, k: number): Array<[number, number]> {
  let sum = 0;
  return points.map(([x, y], i) => {
    sum += y - (i >= k ? points[i - k]![1] : 0);
    return [x, sum / Math.min(i + 1, k)];
  });
}

/** One panel as an SVG group at offset (`left`, `top`). */
export function panelSvg(panel: Panel, top = 0, left = 0): string {
  const [width, height] = panel.small ? [SMALL_WIDTH, SMALL_HEIGHT] : [PANEL_WIDTH, PANEL_HEIGHT];
  const MARGIN = { left: 78, right: panel.small ? 20 : 170, top: 36, bottom: 48 };
  const w = width - MARGIN.left - MARGIN.right;
  const h = height - MARGIN.top - MARGIN.bottom;
  const ty = (v: number): number => (panel.log2 ? Math.log2(v) : v);
  const window = (n: number): number =>
    panel.smooth && n > SMOOTH_ABOVE ? Math.max(2, Math.round(n / 40)) : 0;
  const series = panel.series.map((s) => {
    const raw = s.points.filter(
      ([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!panel.log2 || y > 0),
    );
    const k = window(raw.length);
    return {
      name: s.name,
      k,
      points: downsample(raw, 2 * w),
      mean: k > 0 ? downsample(movingMean(raw, k), 2 * w) : null,
    };
  });
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => ty(p[1]));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (!(x1 > x0)) [x0, x1] = [x0 - 1, x0 + 1];
  if (!(y1 > y0)) [y0, y1] = [y0 - 1, y0 + 1];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  const px = (x: number): number => MARGIN.left + ((x - x0) / (x1 - x0)) * w;
  const py = (y: number): number => MARGIN.top + h - ((ty(y) - y0) / (y1 - y0)) * h;
  const parts: string[] = [
    `<text x="${MARGIN.left + w / 2}" y="22" text-anchor="middle" ${FONT} font-size="${panel.small ? 13 : 15}" font-weight="bold" fill="#111">${escapeXml(panel.title)}</text>`,
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${w}" height="${h}" fill="none" stroke="#444"/>`,
  ];
  for (const t of niceTicks(x0, x1, 6)) {
    const x = px(t).toFixed(1);
    parts.push(
      `<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + h}" stroke="#e4e4e4"/>`,
      `<text x="${x}" y="${MARGIN.top + h + 16}" text-anchor="middle" ${FONT} font-size="11" fill="#333">${fmt(t)}</text>`,
    );
  }
  const yTicks = panel.log2
    ? niceTicks(Math.ceil(y0), Math.floor(y1), 5)
        .filter(Number.isInteger)
        .map((e) => 2 ** e)
    : niceTicks(y0, y1, 5);
  for (const t of yTicks) {
    const y = py(t).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" y1="${y}" x2="${MARGIN.left + w}" y2="${y}" stroke="#e4e4e4"/>`,
      `<text x="${MARGIN.left - 6}" y="${Number(y) + 4}" text-anchor="end" ${FONT} font-size="11" fill="#333">${fmt(t)}</text>`,
    );
  }
  parts.push(
    `<text x="${MARGIN.left + w / 2}" y="${height - 10}" text-anchor="middle" ${FONT} font-size="12" fill="#111">iteration</text>`,
    `<text transform="translate(18 ${MARGIN.top + h / 2}) rotate(-90)" text-anchor="middle" ${FONT} font-size="12" fill="#111">${escapeXml(panel.yLabel + (panel.log2 ? ' (log scale)' : ''))}</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const line = (pts: Array<[number, number]>, extra: string): string =>
      `<polyline fill="none" stroke="${color}" ${extra} points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`;
    if (s.mean) {
      parts.push(line(s.points, 'stroke-width="1" stroke-opacity="0.3"'), line(s.mean, 'stroke-width="1.8"'));
      if (i === 0)
        parts.push(
          `<text x="${MARGIN.left + w - 4}" y="${MARGIN.top + 14}" text-anchor="end" ${FONT} font-size="10" fill="#666">faint: each iteration; line: mean of ${s.k}</text>`,
        );
    } else if (s.points.length > 0) parts.push(line(s.points, 'stroke-width="1.5"'));
    // A sparse series (validation every few hundred iterations) shows its measured points.
    if (s.points.length <= 60)
      for (const [x, y] of s.points)
        parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
    const ly = MARGIN.top + 10 + i * 18;
    if (!panel.small)
      parts.push(
        `<line x1="${MARGIN.left + w + 12}" y1="${ly}" x2="${MARGIN.left + w + 32}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
        `<text x="${MARGIN.left + w + 38}" y="${ly + 4}" ${FONT} font-size="11" fill="#111">${escapeXml(s.name)}</text>`,
      );
  });
  return `<g transform="translate(${left} ${top})">${parts.join('')}</g>`;
}

/** Panels on a white page, row by row: small multiples two to a row, full panels one. */
export function chartSvg(panels: Panel[]): string {
  const small = panels.every((p) => p.small);
  const [pw, ph, columns] = small ? [SMALL_WIDTH, SMALL_HEIGHT, 2] : [PANEL_WIDTH, PANEL_HEIGHT, 1];
  const width = pw * Math.min(columns, panels.length);
  const height = ph * Math.ceil(panels.length / columns);
  const body = panels.map((p, i) => panelSvg(p, Math.floor(i / columns) * ph, (i % columns) * pw)).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#fff"/>${body}</svg>`;
}
