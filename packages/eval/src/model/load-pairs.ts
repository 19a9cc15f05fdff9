// Reading a pairs list and its images from disk into a PairsSet.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseAnnotations } from '@mtlface/data';
import { indexPairs, parsePairs } from '../pairs-file.js';
import { loadFaceImages, type FaceImages } from './images.js';
import type { PairsSet } from './pairs.js';

export interface LoadPairsOptions {
  /** image side the model takes */
  size: number;
  /** directory the file names are relative to (default: the pairs file's directory) */
  root?: string;
  /**
   * Annotation list (`id file age gender`) giving the images' ages, for the age-gap table. By default
   * `all.txt` beside the pairs file is used when it exists (the synthetic set writes one).
   */
  annotations?: string | false;
  name?: string;
  /** how to read the images (default: decode and resize); e.g. detect and align them first */
  readImages?: (paths: string[], size: number) => Promise<FaceImages>;
}

export async function loadPairsSet(pairsFile: string, opts: LoadPairsOptions): Promise<PairsSet> {
  const root = resolve(opts.root ?? dirname(pairsFile));
  const { files, pairs, same } = indexPairs(parsePairs(readFileSync(pairsFile, 'utf8'), pairsFile));
  const images = await (opts.readImages ?? loadFaceImages)(
    files.map((f) => join(root, f)),
    opts.size,
  );
  const annFile =
    opts.annotations === false ? undefined : (opts.annotations ?? join(dirname(pairsFile), 'all.txt'));
  let ages: Float64Array | undefined;
  if (annFile && (opts.annotations !== undefined || existsSync(annFile))) {
    const byFile = new Map(
      parseAnnotations(readFileSync(annFile, 'utf8'), annFile).map((e) => [e.file, e.age]),
    );
    const missing = files.find((f) => !byFile.has(f));
    if (missing !== undefined && opts.annotations !== undefined) {
      throw new Error(`${annFile}: no age for ${missing} (named in ${pairsFile})`);
    }
    if (missing === undefined) ages = Float64Array.from(files, (f) => byFile.get(f)!);
  }
  return {
    name: opts.name ?? basename(pairsFile).replace(/\.[^.]*$/, ''),
    images,
    pairs,
    same,
    ...(ages ? { ages } : {}),
  };
}
