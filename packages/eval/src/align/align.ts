// Face alignment for faces that are not already insightface crops: detect the face, find five landmarks,
// and warp the image by the least-squares similarity transform onto the 112×112 template.
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import {
  estimateSimilarity,
  templateForSize,
  warpAffine,
  type Point,
  type SimilarityTransform,
} from './similarity-transform.js';
import { FaceLandmarks68Tiny, fivePoints } from './landmarks68.js';
import { TinyFaceDetector, type FaceBox } from './tiny-face-detector.js';

export class AlignError extends Error {
  constructor(
    readonly source: string,
    readonly reason: 'no face' | 'several faces',
    readonly faces: number,
  ) {
    super(
      reason === 'no face' ? `${source}: no face found` : `${source}: ${faces} faces found, expected one`,
    );
    this.name = 'AlignError';
  }
}

export interface AlignedFace {
  /** size×size×3 RGB bytes */
  readonly crop: Uint8Array;
  readonly size: number;
  readonly box: FaceBox;
  /** the five points in the source image (eyes, nose tip, mouth corners) */
  readonly points: Point[];
  readonly transform: SimilarityTransform;
}

export interface AlignOptions {
  /** output side, 112 by default (the template is scaled for other sizes) */
  size?: number;
  /** detector network side, a multiple of 32 (default 416) */
  detectorSize?: number;
  scoreThreshold?: number;
  /** with several faces, align the largest one instead of failing */
  largest?: boolean;
}

export async function decodeRgb(
  input: string | Uint8Array,
): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(input, { failOn: 'error' })
    .rotate()
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
  };
}

export class FaceAligner {
  readonly #detector = new TinyFaceDetector();
  readonly #landmarks = new FaceLandmarks68Tiny();

  /** Aligns the one face of an image (file path or encoded bytes; `name` labels errors). */
  async align(
    input: string | Uint8Array,
    opts: AlignOptions = {},
    name = typeof input === 'string' ? input : 'image',
  ): Promise<AlignedFace> {
    let img: Awaited<ReturnType<typeof decodeRgb>>;
    try {
      img = await decodeRgb(input);
    } catch (err) {
      throw new Error(`${name}: cannot decode (${(err as Error).message})`, { cause: err });
    }
    return this.alignRgb(img.data, img.width, img.height, opts, name);
  }

  /**
   * Aligns the one face of an interleaved RGB image. Detection runs on a copy scaled down to the
   * detector's side (the network sees no more than that anyway); landmarks and the warp use full resolution.
   */
  async alignRgb(
    data: Uint8Array,
    width: number,
    height: number,
    opts: AlignOptions = {},
    name = 'image',
  ): Promise<AlignedFace> {
    const size = opts.size ?? 112;
    const detectorSize = opts.detectorSize ?? 416;
    const scale = Math.min(1, detectorSize / Math.max(width, height));
    const dw = Math.max(1, Math.round(width * scale));
    const dh = Math.max(1, Math.round(height * scale));
    const small =
      scale < 1
        ? await sharp(data, { raw: { width, height, channels: 3 } })
            .resize(dw, dh, { fit: 'fill' })
            .raw()
            .toBuffer()
        : data;
    const smallRgb = tf.tensor3d(
      new Uint8Array(small.buffer, small.byteOffset, small.byteLength),
      [dh, dw, 3],
      'int32',
    );
    let found: FaceBox[];
    try {
      found = this.#detector.detect(smallRgb, {
        inputSize: detectorSize,
        ...(opts.scoreThreshold !== undefined ? { scoreThreshold: opts.scoreThreshold } : {}),
      });
    } finally {
      smallRgb.dispose();
    }
    const sx = width / dw;
    const sy = height / dh;
    const faces = found.map((b) => ({
      x: b.x * sx,
      y: b.y * sy,
      width: b.width * sx,
      height: b.height * sy,
      score: b.score,
    }));
    if (faces.length === 0) throw new AlignError(name, 'no face', 0);
    if (faces.length > 1 && !opts.largest) throw new AlignError(name, 'several faces', faces.length);
    const box = faces.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
    const rgb = tf.tensor3d(data, [height, width, 3], 'int32');
    let points: Point[];
    try {
      points = fivePoints(this.#landmarks.detect(rgb, box));
    } finally {
      rgb.dispose();
    }
    const transform = estimateSimilarity(points, templateForSize(size));
    return { crop: warpAffine(data, width, height, 3, transform, size), size, box, points, transform };
  }

  dispose(): void {
    this.#detector.dispose();
    this.#landmarks.dispose();
  }
}
