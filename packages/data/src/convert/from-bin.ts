import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { openOutputDir, removeCreated, writeAtomically } from './output.js';
import { readPickle, type PickleValue } from './pickle.js';

export interface FromBinResult {
  images: number;
  pairs: number;
  positives: number;
}

const isJpeg = (b: Uint8Array): boolean => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/**
 * insightface verification set (`lfw.bin`, `agedb_30.bin`, …: pickle of ([encoded images], [same?]),
 * pairs = images 2k, 2k+1) → `<out>/00001.jpg…` (JPEGs copied as they are, other formats
 * re-encoded) and `<out>/pairs.txt` with `a b 1|-1` per pair.
 */
export async function fromBin(file: string, out: string, onProgress?: (done: number, total: number) => void): Promise<FromBinResult> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    throw new Error(`${file}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  const root = readPickle(buf, file);
  const parts: PickleValue[] | undefined = Array.isArray(root) ? root : undefined;
  if (parts === undefined || parts.length < 2 || !Array.isArray(parts[0]) || !Array.isArray(parts[1])) {
    throw new Error(`${file}: expected a pickle of (list of images, list of flags)`);
  }
  const images = parts[0];
  const flags = parts[1];
  if (images.length !== 2 * flags.length) {
    throw new Error(`${file}: ${images.length} images for ${flags.length} pair flags; expected ${2 * flags.length}`);
  }
  flags.forEach((f, k) => {
    if (typeof f !== 'boolean' && f !== 0 && f !== 1) throw new Error(`${file}: pair flag ${k} is not a boolean`);
  });
  images.forEach((img, i) => {
    if (!(img instanceof Uint8Array)) throw new Error(`${file}: image ${i} is not a bytes object`);
  });
  const width = Math.max(5, String(images.length).length);
  const name = (i: number): string => `${String(i + 1).padStart(width, '0')}.jpg`;
  const dir = await openOutputDir(out);
  const written: string[] = [];
  try {
    for (let i = 0; i < images.length; i++) {
      const img = images[i] as Uint8Array;
      let jpg: Uint8Array;
      if (isJpeg(img)) jpg = img;
      else {
        try {
          jpg = await sharp(img).jpeg({ quality: 95 }).toBuffer();
        } catch (err) {
          throw new Error(`${file}: image ${i} (${img.length} bytes) cannot be decoded: ${(err as Error).message}`, { cause: err });
        }
      }
      const dst = join(out, name(i));
      await writeAtomically(dst, jpg);
      written.push(dst);
      onProgress?.(i + 1, images.length);
    }
    const lines = flags.map((f, k) => `${name(2 * k)} ${name(2 * k + 1)} ${f ? 1 : -1}`);
    await writeAtomically(join(out, 'pairs.txt'), lines.join('\n') + '\n');
  } catch (err) {
    // A verification set is useless without all its pairs: take back what this run made.
    let undone = await removeCreated(dir);
    if (undone === '') {
      await Promise.all(written.map((f) => unlink(f).catch(() => undefined)));
      undone = `; removed the ${written.length} images this run had written to ${out}`;
    }
    throw new Error(`${(err as Error).message}${undone}`, { cause: err });
  }
  return { images: images.length, pairs: flags.length, positives: flags.filter((f) => f === true || f === 1).length };
}
