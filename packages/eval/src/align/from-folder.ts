// `mtl-data from-folder`: an ImageFolder tree of arbitrary photos (any size, JPEG/PNG/WebP, EXIF orientation
// honoured) turned into a tree of 112×112 crops aligned to the insightface template, the layout from-rec
// writes, ready for `annotate`. A photo's crop is written atomically and kept on a rerun, so an
// interrupted conversion resumes.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import sharp from 'sharp';
import { listImageFolder } from '@mtlface/data';
import { decodeRgb, ALIGNED_SIDE, type AlignOptions, type FaceAligner } from './align.js';

export interface AlignFolderOptions {
  photos: string;
  out: string;
  aligner: FaceAligner;
  /** every face of a photo (`<stem>.jpg` the largest, then `<stem>-1.jpg`, …) instead of the largest only */
  allFaces?: boolean;
  /** detector and pass-through options; `size` is fixed at 112 */
  align?: Omit<AlignOptions, 'size' | 'largest'>;
  onProgress?: (done: number, total: number) => void;
}

export interface AlignFolderResult {
  readonly photos: number;
  /** crops written now */
  readonly written: number;
  /** photos whose crop an earlier run wrote */
  readonly kept: number;
  readonly noFace: string[];
  readonly unreadable: { file: string; reason: string }[];
  /** photos with more than one face (the largest taken unless allFaces) */
  readonly severalFaces: string[];
}

/** `<identity>/<stem>.jpg` (`-k` for the k-th face); the whole name is kept where two photos share a stem. */
function cropNamer(files: readonly string[]): (file: string, k: number) => string {
  const stems = new Map<string, number>();
  const stemOf = (f: string) => join(dirname(f), basename(f, extname(f)));
  for (const f of files) stems.set(stemOf(f), (stems.get(stemOf(f)) ?? 0) + 1);
  return (file, k) => {
    const stem = stems.get(stemOf(file))! > 1 ? file : stemOf(file);
    return `${stem}${k === 0 ? '' : `-${k}`}.jpg`;
  };
}

async function writeCrop(path: string, crop: Uint8Array, size: number): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const jpg = await sharp(crop, { raw: { width: size, height: size, channels: 3 } })
    .jpeg({ quality: 95 })
    .toBuffer();
  writeFileSync(`${path}.tmp`, jpg);
  renameSync(`${path}.tmp`, path);
}

export async function alignImageFolder(opts: AlignFolderOptions): Promise<AlignFolderResult> {
  const { images } = listImageFolder(opts.photos);
  const cropName = cropNamer(images.map((im) => im.file));
  const noFace: string[] = [];
  const severalFaces: string[] = [];
  const unreadable: { file: string; reason: string }[] = [];
  let written = 0;
  let kept = 0;
  for (const [i, im] of images.entries()) {
    opts.onProgress?.(i, images.length);
    if (existsSync(join(opts.out, cropName(im.file, 0)))) {
      kept++;
      continue;
    }
    let img;
    try {
      img = await decodeRgb(join(opts.photos, im.file));
    } catch (e) {
      unreadable.push({ file: im.file, reason: (e as Error).message });
      continue;
    }
    const faces = await opts.aligner.alignAll(img, { ...opts.align, size: ALIGNED_SIDE });
    if (faces.length === 0) noFace.push(im.file);
    if (faces.length > 1) severalFaces.push(im.file);
    const keep = opts.allFaces ? faces : faces.slice(0, 1);
    // the largest face last: its file marks the photo as done for a rerun
    for (let k = keep.length - 1; k >= 0; k--) {
      await writeCrop(join(opts.out, cropName(im.file, k)), keep[k]!.crop, ALIGNED_SIDE);
    }
    if (keep.length > 0) written++;
  }
  opts.onProgress?.(images.length, images.length);
  return { photos: images.length, written, kept, noFace, unreadable, severalFaces };
}
