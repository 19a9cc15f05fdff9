// A run's per-iteration JSON lines (`losses.jsonl`: {"iter": 1, "id_loss": …, "lr": …}) as the
// charts `mtl-face plot` and the end of a run draw: losses per task, learning rates and the loss
// scale, throughput, validation accuracy. Whatever the file does not carry is named, not invented.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import sharp from 'sharp';
import { dirname, join } from 'node:path';
import { chartSvg, type Panel, type Series } from './charts.js';

/** Every numeric column of the file by name, as (iteration, value) points in file order. */
export function readLossLog(path: string): Map<string, Array<[number, number]>> {
  const columns = new Map<string, Array<[number, number]>>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue; // an empty or torn line (a crash mid-append)
    }
    const iter = record.iter;
    if (typeof iter !== 'number') continue;
    for (const [k, v] of Object.entries(record)) {
      if (k === 'iter' || typeof v !== 'number') continue;
      const col = columns.get(k) ?? [];
      col.push([iter, v]);
      columns.set(k, col);
    }
  }
  return columns;
}

type Kind = 'fr' | 'fas' | 'lr' | 'scale' | 'throughput' | 'validation';

/** Which chart a column belongs on, from its name (the release's names and ours). */
export function columnKind(name: string): Kind {
  if (/^val/.test(name)) return 'validation';
  if (/(^|_)lr$/.test(name)) return 'lr';
  if (/scale/.test(name)) return 'scale';
  if (/img|images|throughput/.test(name)) return 'throughput';
  if (/^(fas|d\d|d_|g_)/.test(name)) return 'fas';
  return 'fr';
}

export interface ChartFile {
  file: string;
  panels: Panel[];
}

/** The charts a log supports, and one note for each kind of curve it lacks. */
export function planCharts(columns: Map<string, Array<[number, number]>>): {
  charts: ChartFile[];
  missing: string[];
} {
  const of = (kind: Kind): Series[] =>
    [...columns].filter(([k]) => columnKind(k) === kind).map(([name, points]) => ({ name, points }));
  // One small panel per loss: the terms differ by orders of magnitude (the release logs them unweighted).
  const losses: Panel[] = (['fr', 'fas'] as const).flatMap((kind) =>
    of(kind).map((series) => ({
      title: `${kind === 'fr' ? 'AIFR' : 'FAS'}: ${series.name}`,
      yLabel: series.name.endsWith('logit') ? 'discriminator output' : 'loss',
      series: [series],
      small: true,
      smooth: true,
    })),
  );
  const schedule: Panel[] = [];
  if (of('lr').length) schedule.push({ title: 'Learning rate', yLabel: 'learning rate', series: of('lr') });
  if (of('scale').length)
    schedule.push({ title: 'Loss scale', yLabel: 'loss scale', series: of('scale'), log2: true });
  const charts: ChartFile[] = [];
  if (losses.length) charts.push({ file: 'losses.png', panels: losses });
  if (schedule.length) charts.push({ file: 'schedule.png', panels: schedule });
  if (of('throughput').length)
    charts.push({
      file: 'throughput.png',
      panels: [{ title: 'Throughput', yLabel: 'images / s', series: of('throughput'), smooth: true }],
    });
  if (of('validation').length)
    charts.push({
      file: 'validation.png',
      panels: [{ title: 'Validation', yLabel: 'accuracy', series: of('validation') }],
    });
  const missing: string[] = [];
  const lacks = (kind: Kind, what: string): void => void (of(kind).length === 0 && missing.push(what));
  lacks('fr', 'no face recognition losses');
  lacks('fas', 'no FAS losses');
  lacks('lr', 'no learning rate');
  lacks('scale', 'no loss scale');
  lacks('throughput', 'no img/s');
  lacks('validation', 'no validation accuracy');
  return { charts, missing };
}

/** Draws the charts of `logFile` into `outDir`; returns the files written and what was not there. */
export async function plotLossLog(
  logFile: string,
  outDir: string,
): Promise<{ written: string[]; missing: string[]; iterations: number }> {
  const columns = readLossLog(logFile);
  // Throughput, step time and validation live beside the losses (steps.jsonl), when the run wrote them.
  const steps = join(dirname(logFile), 'steps.jsonl');
  if (existsSync(steps)) for (const [k, v] of readLossLog(steps)) if (!columns.has(k)) columns.set(k, v);
  if (columns.size === 0) throw new Error(`${logFile}: no iteration records ({"iter": …} lines)`);
  const { charts, missing } = planCharts(columns);
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const c of charts) {
    const path = join(outDir, c.file);
    await sharp(Buffer.from(chartSvg(c.panels)))
      .png()
      .toFile(path);
    written.push(path);
  }
  const iterations = Math.max(...[...columns.values()].flatMap((pts) => pts.map((p) => p[0])));
  return { written, missing, iterations };
}
