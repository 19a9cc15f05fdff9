// Piscina worker: renders one identity's images (SVG → sharp → JPEG) and writes them.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { Rng, hash32 } from '../rng.js';
import { identityTraits } from './traits.js';
import { drawNuisance, renderFaceSvg, type AgeCues } from './render.js';

sharp.concurrency(1);
sharp.cache(false);

export interface SynthTask {
  seed: number;
  size: number;
  out: string;
  identity: number;
  /** How the skin cues of ageing are drawn (default 'demo'). */
  ageCues?: AgeCues;
  /** Relative file name and age of each image. */
  items: { file: string; age: number; index: number }[];
}

/** Encodes image `index` of `identity` as a JPEG (pure function of its arguments). */
export async function renderImage(
  seed: number,
  identity: number,
  index: number,
  age: number,
  size: number,
  cues: AgeCues = 'demo',
): Promise<Buffer> {
  const traits = identityTraits(seed, identity);
  const rng = new Rng(hash32(seed, identity, index, 0x1a6e));
  const nz = drawNuisance(rng);
  const svg = renderFaceSvg(traits, age, nz, rng, size, cues);
  return sharp(Buffer.from(svg))
    .flatten({ background: '#000' })
    .jpeg({ quality: nz.jpegQuality, chromaSubsampling: '4:2:0' })
    .toBuffer();
}

export default async function render(task: SynthTask): Promise<number> {
  let bytes = 0;
  await mkdir(join(task.out, 'images', String(task.identity).padStart(5, '0')), { recursive: true });
  for (const it of task.items) {
    const jpg = await renderImage(task.seed, task.identity, it.index, it.age, task.size, task.ageCues);
    await writeFile(join(task.out, it.file), jpg);
    bytes += jpg.length;
  }
  return bytes;
}
