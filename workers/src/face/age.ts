// `mtl-face age FACE... --out grid.png`: each input face re-rendered at every target age group by the
// checkpoint's generator, one row per input (the input first, then the groups from young to old).
import type { Command } from 'commander';
import sharp from 'sharp';
import { initBackend } from '@mtlface/backend';
import { AGE_GROUP_THRESHOLDS, isAgeGroupCount } from '@mtlface/data';
import { ageSeries, type FaceImages } from '@mtlface/eval/model';
import { createAligner, loadFaceModel, readFaces } from './face-model.js';

interface AgeOptions {
  checkpoint: string;
  out: string;
  cell?: string;
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

export function register(program: Command): void {
  program
    .command('age')
    .description('render faces at every target age group: one row per input, groups young → old')
    .argument('<faces...>', 'face images (aligned crops, or photos with --align)')
    .requiredOption('--checkpoint <c>', 'a checkpoint with a generator (FAS or joint training)')
    .requiredOption('--out <png>', 'where to write the grid')
    .option('--cell <px>', 'side of each cell in the PNG (default: the model input, at least 112)')
    .option('--align', 'detect and align the faces first')
    .option('--backend <name>', 'tfjs backend: auto, native, wasm, cpu', 'auto')
    .action(async (faces: string[], o: AgeOptions) => {
      try {
        await run(faces, o);
      } catch (e) {
        console.error(`mtl-face age: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}

async function run(paths: string[], o: AgeOptions): Promise<void> {
  await initBackend({ backend: o.backend as 'auto', log: (l) => console.error(l) });
  const model = loadFaceModel(o.checkpoint);
  const aligner = o.align ? await createAligner() : undefined;
  try {
    if (!model.age)
      throw new Error(`${model.source}: no generator in this checkpoint (train FAS or joint first)`);
    const faces = await readFaces(paths, model.inputSize, aligner);
    const targets = Array.from({ length: model.groups }, (_, g) => g);
    const aged = ageSeries(model, faces, targets);
    const grid = composeGrid(faces, aged);
    const cell = o.cell !== undefined ? Number(o.cell) : Math.max(112, model.inputSize);
    if (!Number.isInteger(cell) || cell < 8)
      throw new Error(`--cell must be an integer ≥ 8, got "${o.cell}"`);
    const scale = cell / model.inputSize;
    await sharp(Buffer.from(grid.data), { raw: { width: grid.width, height: grid.height, channels: 3 } })
      .resize(Math.round(grid.width * scale), Math.round(grid.height * scale), { kernel: 'cubic' })
      .png()
      .toFile(o.out);
    console.log(`${o.out}: ${paths.length} rows; columns: input, ${groupLabels(model.groups).join(', ')}`);
  } finally {
    aligner?.dispose();
    model.dispose();
  }
}
