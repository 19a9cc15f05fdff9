// `mtl-face age FACE... --out grid.png`: each input face re-rendered at every target age group by the
// checkpoint's generator, one row per input (the input first, then the groups from young to old).
import type { Command } from 'commander';
import sharp from 'sharp';
import { initBackend } from '@mtlface/backend';
import { AGE_GROUP_THRESHOLDS, isAgeGroupCount } from '@mtlface/data';
import { ageSeries, type FaceImages } from '@mtlface/eval/model';
import { createAligner, loadFaceModel, readFaces } from './face-model.js';
import { reportErrors, backendOption } from './cli.js';
import { escapeXml } from '../plot/svg.js';

interface AgeOptions {
  checkpoint: string;
  out: string;
  cell?: string;
  ages?: string;
  labels: boolean;
  align?: boolean;
  backend: string;
}

/** "0-10", "11-20", …, "61+" for the spec's thresholds. */
export function groupLabels(groups: number): string[] {
  if (!isAgeGroupCount(groups)) return Array.from({ length: groups }, (_, g) => `group ${g}`);
  const t = AGE_GROUP_THRESHOLDS[groups];
  return Array.from({ length: groups }, (_, g) =>
    g === 0 ? `0-${t[0]}` : g === t.length ? `${t[g - 1]! + 1}+` : `${t[g - 1]! + 1}-${t[g]}`,
  );
}

/**
 * One RGB byte grid: rows = faces, columns = the source then its aged versions. `aged` holds each face's
 * `cols − 1` versions consecutively (as ageSeries returns them).
 */
export function composeGrid(
  sources: FaceImages,
  aged: FaceImages,
): { data: Uint8Array; width: number; height: number } {
  const s = sources.size;
  const perFace = aged.n / sources.n;
  const cols = perFace + 1;
  const width = cols * s;
  const height = sources.n * s;
  const data = new Uint8Array(width * height * 3);
  const toByte = (v: number) => Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
  for (let r = 0; r < sources.n; r++) {
    for (let c = 0; c < cols; c++) {
      const src = c === 0 ? sources.images : aged.images;
      const index = c === 0 ? r : r * perFace + (c - 1);
      for (let y = 0; y < s; y++) {
        for (let x = 0; x < s; x++) {
          for (let k = 0; k < 3; k++) {
            data[((r * s + y) * width + c * s + x) * 3 + k] = toByte(src[((index * s + y) * s + x) * 3 + k]!);
          }
        }
      }
    }
  }
  return { data, width, height };
}

/** Height in pixels of the label row above a grid of `cell`-pixel cells. */
export function headerHeight(cell: number): number {
  return Math.max(14, Math.round(cell * 0.28));
}

/**
 * SVG overlay for a grid of `rows` × `columns.length` cells of `cell` px under a `headerHeight(cell)` row:
 * each column's label centred above it and, where `rowNotes[r]` is given, that note on a dark band at the
 * bottom of row r's first cell (e.g. the source face's real age).
 */
export function gridLabelsSvg(
  cell: number,
  rows: number,
  columns: string[],
  rowNotes: (string | undefined)[] = [],
): string {
  const head = headerHeight(cell);
  const width = cell * columns.length;
  const height = head + rows * cell;
  const font = Math.max(9, Math.round(head * 0.55));
  const parts = columns.map(
    (c, i) =>
      `<text x="${i * cell + cell / 2}" y="${Math.round(head * 0.72)}" text-anchor="middle" font-family="DejaVu Sans, sans-serif" font-size="${font}" fill="#111">${escapeXml(c)}</text>`,
  );
  const band = Math.round(font * 1.35);
  rowNotes.forEach((note, r) => {
    if (note === undefined || r >= rows) return;
    const y = head + (r + 1) * cell - band;
    parts.push(
      `<rect x="0" y="${y}" width="${cell}" height="${band}" fill="#000" fill-opacity="0.55"/>`,
      `<text x="${cell / 2}" y="${y + Math.round(band * 0.75)}" text-anchor="middle" font-family="DejaVu Sans, sans-serif" font-size="${font}" fill="#fff">${escapeXml(note)}</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** Parses `--ages 19,34,…` (one real age per input face, in order). */
export function parseAges(text: string, faces: number): number[] {
  const ages = text.split(',').map((a) => a.trim());
  if (ages.length !== faces)
    throw new Error(`--ages lists ${ages.length} age(s) for ${faces} face(s): give one per face, in order`);
  return ages.map((a, i) => {
    const v = Number(a);
    if (a === '' || !Number.isFinite(v) || v < 0)
      throw new Error(`--ages: item ${i + 1} "${a}" is not an age`);
    return v;
  });
}

export function register(program: Command): void {
  program
    .command('age')
    .description('render faces at every target age group: one row per input, groups young → old')
    .argument('<faces...>', 'face images (aligned crops, or photos with --align)')
    .requiredOption('--checkpoint <c>', 'a checkpoint with a generator (FAS or joint training)')
    .requiredOption('--out <png>', 'where to write the grid')
    .option('--cell <px>', 'side of each cell in the PNG (default: the model input, at least 112)')
    .option(
      '--ages <list>',
      "the input faces' real ages, comma-separated in order: shown on each row's input",
    )
    .option('--no-labels', 'no label row (column = input, then the target age groups) above the grid')
    .option('--align', 'detect and align the faces first')
    .addOption(backendOption())
    .action(reportErrors('age', run));
}

async function run(paths: string[], o: AgeOptions): Promise<void> {
  await initBackend({ backend: o.backend as 'auto', log: (l) => console.error(l) });
  const model = loadFaceModel(o.checkpoint);
  const aligner = o.align ? await createAligner() : undefined;
  try {
    if (!model.age)
      throw new Error(`${model.source}: no generator in this checkpoint (train FAS or joint first)`);
    const ages = o.ages !== undefined ? parseAges(o.ages, paths.length) : undefined;
    const faces = await readFaces(paths, model.inputSize, aligner);
    const targets = Array.from({ length: model.groups }, (_, g) => g);
    const aged = ageSeries(model, faces, targets);
    const grid = composeGrid(faces, aged);
    const cell = o.cell !== undefined ? Number(o.cell) : Math.max(112, model.inputSize);
    if (!Number.isInteger(cell) || cell < 8)
      throw new Error(`--cell must be an integer ≥ 8, got "${o.cell}"`);
    const scale = cell / model.inputSize;
    const width = Math.round(grid.width * scale);
    const height = Math.round(grid.height * scale);
    const image = sharp(Buffer.from(grid.data), {
      raw: { width: grid.width, height: grid.height, channels: 3 },
    }).resize(width, height, { kernel: 'cubic' });
    const columns = ['input', ...groupLabels(model.groups)];
    if (o.labels) {
      const head = headerHeight(cell);
      const notes = ages?.map((a) => `age ${a}`) ?? [];
      await sharp({ create: { width, height: height + head, channels: 3, background: '#fff' } })
        .composite([
          { input: await image.png().toBuffer(), left: 0, top: head },
          { input: Buffer.from(gridLabelsSvg(cell, faces.n, columns, notes)), left: 0, top: 0 },
        ])
        .png()
        .toFile(o.out);
    } else await image.png().toFile(o.out);
    console.log(`${o.out}: ${paths.length} rows; columns: ${columns.join(', ')}`);
  } finally {
    aligner?.dispose();
    model.dispose();
  }
}
