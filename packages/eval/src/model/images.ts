// A set of aligned face crops held in memory as one NHWC float array (the layout of a training Batch).
import { decodeResize, toFloatRgb } from '@mtlface/data';

export interface FaceImages {
  readonly n: number;
  /** side in pixels */
  readonly size: number;
  /** n·size·size·3 values, NHWC RGB in [-1, 1] */
  readonly images: Float32Array;
}

export function faceImages(images: Float32Array, size: number): FaceImages {
  const per = size * size * 3;
  if (images.length % per !== 0)
    throw new Error(`${images.length} values is not a whole number of ${size}×${size}×3 images`);
  return { n: images.length / per, size, images };
}

/** Rows [start, end) of a set, without copying. */
export function sliceImages(set: FaceImages, start: number, end: number): FaceImages {
  const per = set.size * set.size * 3;
  return { n: end - start, size: set.size, images: set.images.subarray(start * per, end * per) };
}

/**
 * Decodes image files (or encoded bytes) into one set, resized to `size`. A file that fails to decode is
 * reported by name.
 */
export async function loadFaceImages(
  sources: ReadonlyArray<string | Uint8Array>,
  size: number,
): Promise<FaceImages> {
  const per = size * size * 3;
  const out = new Float32Array(sources.length * per);
  for (let i = 0; i < sources.length; i++) {
    const src = sources[i]!;
    try {
      toFloatRgb(await decodeResize(src, size), false, out, i * per);
    } catch (err) {
      const name = typeof src === 'string' ? src : `image ${i}`;
      throw new Error(`${name}: cannot decode (${(err as Error).message})`, { cause: err });
    }
  }
  return { n: sources.length, size, images: out };
}
