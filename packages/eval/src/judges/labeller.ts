// The age/gender labeller `mtl-data annotate` uses: face images read from disk in batches and labelled by
// face-api's age/gender network. An image that cannot be decoded is answered with its reason, not thrown.
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import type { LabelResult } from '@mtlface/data';
import { AgeGenderNet } from './age-gender-net.js';

const SIDE = 112;

/**
 * One image as 112×112 RGB bytes, upright by its EXIF orientation; a non-square image is fitted into a
 * centred black square first, as face-api pads its inputs.
 */
export async function readJudgeInput(path: string | Uint8Array, side = SIDE): Promise<Uint8Array> {
  const px = await sharp(path, { failOn: 'error' })
    .rotate()
    .removeAlpha()
    .toColourspace('srgb')
    .resize(side, side, { fit: 'contain', background: '#000' })
    .raw()
    .toBuffer();
  return new Uint8Array(px.buffer, px.byteOffset, px.byteLength);
}

export class FaceApiLabeller {
  readonly #net = new AgeGenderNet();

  /** Labels face images (aligned crops work best: what from-rec and from-folder write). */
  async label(paths: string[]): Promise<LabelResult[]> {
    const pixels = await Promise.all(
      paths.map((p) =>
        readJudgeInput(p).then(
          (px) => px,
          (e: Error) => e.message,
        ),
      ),
    );
    const good = pixels.flatMap((px, i) => (typeof px === 'string' ? [] : [i]));
    const data = new Uint8Array(good.length * SIDE * SIDE * 3);
    good.forEach((i, k) => data.set(pixels[i] as Uint8Array, k * SIDE * SIDE * 3));
    const out: LabelResult[] = pixels.map((px) => ({ error: typeof px === 'string' ? px : '' }));
    if (good.length > 0) {
      const x = tf.tensor4d(data, [good.length, SIDE, SIDE, 3], 'int32');
      const r = this.#net.predict(x);
      x.dispose();
      good.forEach((i, k) => (out[i] = { age: r.age[k]!, gender: r.male[k]! > 0.5 ? 1 : 0 }));
    }
    return out;
  }

  dispose(): void {
    this.#net.dispose();
  }
}
