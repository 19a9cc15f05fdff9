// The "tiny face detector" of face-api.js (a Tiny-YOLOv2 with depthwise-separable convolutions, one face
// class, 5 anchors), reimplemented on tfjs-core ops over the weights bundled in @vladmandic/face-api.
import * as tf from '@tensorflow/tfjs-core';
import { loadManifestWeights, take } from './weights.js';

export interface FaceBox {
  /** pixels in the original image */
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly score: number;
}

const ANCHORS: ReadonlyArray<readonly [number, number]> = [
  [1.603231, 2.094468],
  [6.041143, 7.080126],
  [2.882459, 3.518061],
  [4.266906, 5.178857],
  [9.041765, 10.66308],
];
const MEAN_RGB = [117.001, 114.697, 97.404] as const;

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
const leaky = (x: tf.Tensor4D): tf.Tensor4D => tf.maximum(x, tf.mul(x, 0.1));

export function iou(a: FaceBox, b: FaceBox): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / (a.width * a.height + b.width * b.height - inter);
}

/** Greedy non-maximum suppression: keep the best box, drop those overlapping it by more than `iouMax`. */
export function nonMaxSuppression(boxes: readonly FaceBox[], iouMax: number): FaceBox[] {
  const kept: FaceBox[] = [];
  for (const b of [...boxes].sort((p, q) => q.score - p.score)) {
    if (kept.every((k) => iou(k, b) <= iouMax)) kept.push(b);
  }
  return kept;
}

export class TinyFaceDetector {
  readonly #w: Map<string, tf.Tensor>;

  constructor(weights = loadManifestWeights('tiny_face_detector_model')) {
    this.#w = weights;
  }

  #sep(x: tf.Tensor4D, name: string): tf.Tensor4D {
    const padded = tf.pad(x, [
      [0, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    const y = tf.separableConv2d(
      padded,
      take<tf.Rank.R4>(this.#w, `${name}/depthwise_filter`, 4),
      take<tf.Rank.R4>(this.#w, `${name}/pointwise_filter`, 4),
      1,
      'valid',
    );
    return leaky(tf.add(y, take(this.#w, `${name}/bias`, 1)));
  }

  /** Raw output grid [cells, cells, 25] for an RGB image (uint8 values, any size). */
  #forward(rgb: tf.Tensor3D, inputSize: number): tf.Tensor3D {
    return tf.tidy(() => {
      const [h, w] = rgb.shape;
      const side = Math.max(h, w);
      // pad to a square at the bottom/right, as face-api does for the detector, then resize
      let x = tf.pad(tf.cast(rgb, 'float32'), [
        [0, side - h],
        [0, side - w],
        [0, 0],
      ]) as tf.Tensor3D;
      x = tf.image.resizeBilinear(x, [inputSize, inputSize], false, false);
      let y = tf.div(tf.sub(tf.expandDims(x, 0), tf.tensor1d([...MEAN_RGB])), 255) as tf.Tensor4D;
      y = leaky(
        tf.add(
          tf.conv2d(y, take<tf.Rank.R4>(this.#w, 'conv0/filters', 4), 1, 'valid'),
          take(this.#w, 'conv0/bias', 1),
        ),
      );
      for (const name of ['conv1', 'conv2', 'conv3', 'conv4', 'conv5']) {
        y = tf.maxPool(y, 2, 2, 'same');
        y = this.#sep(y, name);
      }
      y = tf.maxPool(y, 2, 1, 'same');
      y = tf.add(
        tf.conv2d(y, take<tf.Rank.R4>(this.#w, 'conv8/filters', 4), 1, 'valid'),
        take(this.#w, 'conv8/bias', 1),
      );
      return tf.squeeze(y, [0]) as tf.Tensor3D;
    });
  }

  /**
   * Faces in an RGB image ([H, W, 3], values 0..255), best first, after non-maximum suppression.
   * `inputSize` is the network side (a multiple of 32; larger finds smaller faces).
   */
  detect(
    rgb: tf.Tensor3D,
    opts: { inputSize?: number; scoreThreshold?: number; iouThreshold?: number } = {},
  ): FaceBox[] {
    const inputSize = opts.inputSize ?? 416;
    const threshold = opts.scoreThreshold ?? 0.5;
    const out = this.#forward(rgb, inputSize);
    const [cells] = out.shape;
    const v = out.dataSync();
    out.dispose();
    const [h, w] = rgb.shape;
    const side = Math.max(h, w);
    const boxes: FaceBox[] = [];
    for (let row = 0; row < cells; row++) {
      for (let col = 0; col < cells; col++) {
        for (let k = 0; k < ANCHORS.length; k++) {
          const o = (row * cells + col) * 25 + k * 5;
          const score = sigmoid(v[o + 4]!);
          if (score <= threshold) continue;
          const cx = ((col + sigmoid(v[o]!)) / cells) * side;
          const cy = ((row + sigmoid(v[o + 1]!)) / cells) * side;
          const bw = ((Math.exp(v[o + 2]!) * ANCHORS[k]![0]) / cells) * side;
          const bh = ((Math.exp(v[o + 3]!) * ANCHORS[k]![1]) / cells) * side;
          boxes.push({ x: cx - bw / 2, y: cy - bh / 2, width: bw, height: bh, score });
        }
      }
    }
    return nonMaxSuppression(boxes, opts.iouThreshold ?? 0.4);
  }

  dispose(): void {
    for (const t of this.#w.values()) t.dispose();
  }
}
