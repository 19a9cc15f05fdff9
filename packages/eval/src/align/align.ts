// Face alignment for faces that are not already insightface crops: detect the face at several detector
// scales, find five landmarks, and warp the image by the least-squares similarity transform onto the
// 112×112 template. An image that already is such a crop is passed through untouched.
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
import { mergeDetections } from './merge-detections.js';

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
  /** the input was taken as an aligned crop and not sent to the detector */
  readonly passthrough: boolean;
}

/**
 * Detector input sides searched by default. The tiny detector's anchors span about 50–340 px at its input
 * side, so one side finds faces in a band of sizes only (at 416 a face filling a 512 px portrait is too big,
 * one a tenth of a group photo too small); the union of these five finds rendered faces from 10 % to 95 %
 * of the frame (test `faces from 10 % to 95 % of the frame are found`).
 */
export const DETECTOR_PYRAMID: readonly number[] = [128, 224, 320, 416, 608];

/** The side of the crops insightface's sets ship (faces_emore, CASIA, the verification .bin files). */
export const ALIGNED_SIDE = 112;

export interface AlignOptions {
  /** output side, 112 by default (the template is scaled for other sizes) */
  size?: number;
  /** one detector input side (a multiple of 32) instead of the pyramid */
  detectorSize?: number;
  /** the detector input sides to search (default DETECTOR_PYRAMID); detections of all are merged */
  detectorSizes?: readonly number[];
  scoreThreshold?: number;
  /** with several faces, align the largest one instead of failing */
  largest?: boolean;
  /**
   * true: the input is an aligned crop, passed through; false: always detect; default: a 112×112 input
   * is taken as aligned (the form the public face sets come in; the detector misses such tight crops).
   */
  aligned?: boolean;
}

export interface RgbImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** Decodes any image sharp reads to interleaved RGB, turned upright by its EXIF orientation. */
export async function decodeRgb(input: string | Uint8Array): Promise<RgbImage> {
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

function detectorSizes(opts: AlignOptions): readonly number[] {
  const sizes =
    opts.detectorSize !== undefined ? [opts.detectorSize] : (opts.detectorSizes ?? DETECTOR_PYRAMID);
  for (const s of sizes) {
    if (!Number.isInteger(s) || s < 32 || s % 32 !== 0)
      throw new Error(`detector size ${s} is not a positive multiple of 32`);
  }
  return sizes;
}

async function resizeRgb(img: RgbImage, width: number, height: number): Promise<Uint8Array> {
  const out = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: 'fill' })
    .raw()
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
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
    const img = await decodeNamed(input, name);
    return this.alignRgb(img.data, img.width, img.height, opts, name);
  }

  /** Aligns the one face of an interleaved RGB image (the largest with `largest`). */
  async alignRgb(
    data: Uint8Array,
    width: number,
    height: number,
    opts: AlignOptions = {},
    name = 'image',
  ): Promise<AlignedFace> {
    const img = { data, width, height };
    if (isAlignedInput(img, opts)) return this.#passthrough(img, opts.size ?? ALIGNED_SIDE);
    const faces = await this.detect(img, opts);
    if (faces.length === 0) throw new AlignError(name, 'no face', 0);
    if (faces.length > 1 && !opts.largest) throw new AlignError(name, 'several faces', faces.length);
    return this.alignBox(img, faces[0]!, opts.size ?? ALIGNED_SIDE);
  }

  /** Every face of an image, largest first (an aligned input is its one face); none is not an error. */
  async alignAll(img: RgbImage, opts: AlignOptions = {}): Promise<AlignedFace[]> {
    if (isAlignedInput(img, opts)) return [await this.#passthrough(img, opts.size ?? ALIGNED_SIDE)];
    const faces = await this.detect(img, opts);
    const out: AlignedFace[] = [];
    for (const box of faces) out.push(this.alignBox(img, box, opts.size ?? ALIGNED_SIDE));
    return out;
  }

  /**
   * The faces of an image, largest first: the detector runs at every side of the pyramid on a copy scaled
   * down to that side (the network sees no more than that anyway), and the detections are merged.
   */
  async detect(img: RgbImage, opts: AlignOptions = {}): Promise<FaceBox[]> {
    const found: FaceBox[] = [];
    for (const inputSize of detectorSizes(opts)) {
      const scale = Math.min(1, inputSize / Math.max(img.width, img.height));
      const dw = Math.max(1, Math.round(img.width * scale));
      const dh = Math.max(1, Math.round(img.height * scale));
      const small = scale < 1 ? await resizeRgb(img, dw, dh) : img.data;
      const rgb = tf.tensor3d(small, [dh, dw, 3], 'int32');
      let boxes: FaceBox[];
      try {
        boxes = this.#detector.detect(rgb, {
          inputSize,
          ...(opts.scoreThreshold !== undefined ? { scoreThreshold: opts.scoreThreshold } : {}),
        });
      } finally {
        rgb.dispose();
      }
      const sx = img.width / dw;
      const sy = img.height / dh;
      for (const b of boxes)
        found.push({ x: b.x * sx, y: b.y * sy, width: b.width * sx, height: b.height * sy, score: b.score });
    }
    return mergeDetections(found).sort((a, b) => b.width * b.height - a.width * a.height);
  }

  /** Landmarks in `box` at full resolution, then the similarity warp onto the template of side `size`. */
  alignBox(img: RgbImage, box: FaceBox, size = ALIGNED_SIDE): AlignedFace {
    const rgb = tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
    let points: Point[];
    try {
      points = fivePoints(this.#landmarks.detect(rgb, box));
    } finally {
      rgb.dispose();
    }
    const transform = estimateSimilarity(points, templateForSize(size));
    const crop = warpAffine(img.data, img.width, img.height, 3, transform, size);
    return { crop, size, box, points, transform, passthrough: false };
  }

  async #passthrough(img: RgbImage, size: number): Promise<AlignedFace> {
    const crop = img.width === size && img.height === size ? img.data : await resizeRgb(img, size, size);
    // the crop's own template points, mapped back into the input
    const sx = img.width / size;
    const sy = img.height / size;
    return {
      crop,
      size,
      box: { x: 0, y: 0, width: img.width, height: img.height, score: 1 },
      points: templateForSize(size).map(([x, y]): Point => [x * sx, y * sy]),
      transform: estimateSimilarity(
        templateForSize(size).map(([x, y]): Point => [x * sx, y * sy]),
        templateForSize(size),
      ),
      passthrough: true,
    };
  }

  dispose(): void {
    this.#detector.dispose();
    this.#landmarks.dispose();
  }
}

/** Whether an image is taken as an already aligned crop under `opts.aligned` (see AlignOptions). */
export function isAlignedInput(img: { width: number; height: number }, opts: AlignOptions = {}): boolean {
  return opts.aligned ?? (img.width === ALIGNED_SIDE && img.height === ALIGNED_SIDE);
}

async function decodeNamed(input: string | Uint8Array, name: string): Promise<RgbImage> {
  try {
    return await decodeRgb(input);
  } catch (err) {
    throw new Error(`${name}: cannot decode (${(err as Error).message})`, { cause: err });
  }
}
