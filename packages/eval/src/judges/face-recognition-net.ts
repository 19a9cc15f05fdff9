// face-api.js's face recognition network — dlib's ResNet-34-like face descriptor (29 convolutions, scale
// layers in place of batch norm, 150×150 input, 128-D output) — reimplemented on tfjs-core ops over the
// weights bundled in @vladmandic/face-api. Two faces are the same person when their descriptors are closer
// than FACE_API_MATCH_DISTANCE (Euclidean), face-api's own FaceMatcher default; dlib reports 99.38 % on LFW.
import * as tf from '@tensorflow/tfjs-core';
import { loadManifestWeights, take } from '../align/weights.js';
import { faceApiInput } from './age-gender-net.js';

const SIZE = 150;

/** face-api's default FaceMatcher threshold: descriptors closer than this are the same person. */
export const FACE_API_MATCH_DISTANCE = 0.6;

/** The residual stages: [block name, downsampling]. */
const BLOCKS: ReadonlyArray<readonly [string, boolean]> = [
  ['conv32_1', false],
  ['conv32_2', false],
  ['conv32_3', false],
  ['conv64_down', true],
  ['conv64_1', false],
  ['conv64_2', false],
  ['conv64_3', false],
  ['conv128_down', true],
  ['conv128_1', false],
  ['conv128_2', false],
  ['conv256_down', true],
  ['conv256_1', false],
  ['conv256_2', false],
  ['conv256_down_out', true],
];

export class FaceRecognitionNet {
  readonly #w: Map<string, tf.Tensor>;

  constructor(weights = loadManifestWeights('face_recognition_model')) {
    this.#w = weights;
  }

  /** convolution + bias, then the per-channel scale layer (x·w + b), then ReLU where asked */
  #conv(x: tf.Tensor4D, name: string, stride: number, relu: boolean): tf.Tensor4D {
    const pad = stride === 1 ? 'same' : 'valid';
    let y = tf.conv2d(x, take<tf.Rank.R4>(this.#w, `${name}/conv/filters`, 4), stride, pad);
    y = tf.add(y, take(this.#w, `${name}/conv/bias`, 1));
    y = tf.add(
      tf.mul(y, take(this.#w, `${name}/scale/weights`, 1)),
      take(this.#w, `${name}/scale/biases`, 1),
    );
    return relu ? tf.relu(y) : y;
  }

  #residual(x: tf.Tensor4D, name: string, down: boolean): tf.Tensor4D {
    let y = this.#conv(x, `${name}/conv1`, down ? 2 : 1, true);
    y = this.#conv(y, `${name}/conv2`, 1, false);
    let shortcut = x;
    if (down) {
      // the shortcut is a 2×2 average pool, widened with zero channels; an odd side leaves the strided
      // 'valid' convolution one row and column short, which are zero-filled at the bottom and right
      shortcut = tf.avgPool(x, 2, 2, 'valid');
      const [, sh, sw] = shortcut.shape;
      const [, yh, yw] = y.shape;
      if (sh !== yh || sw !== yw)
        y = tf.pad(y, [
          [0, 0],
          [0, sh - yh],
          [0, sw - yw],
          [0, 0],
        ]);
      if (shortcut.shape[3] !== y.shape[3])
        shortcut = tf.pad(shortcut, [
          [0, 0],
          [0, 0],
          [0, 0],
          [0, y.shape[3] - shortcut.shape[3]],
        ]);
    }
    return tf.relu(tf.add(y, shortcut)) as tf.Tensor4D;
  }

  /** Descriptors [N, 128] of RGB images [N, H, W, 3] in 0..255. */
  forward(images: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      let y = this.#conv(faceApiInput(images, SIZE), 'conv32_down', 2, true);
      y = tf.maxPool(y, 3, 2, 'valid');
      for (const [name, down] of BLOCKS) y = this.#residual(y, name, down);
      return tf.matMul(tf.mean(y, [1, 2]) as tf.Tensor2D, take<tf.Rank.R2>(this.#w, 'fc', 2));
    });
  }

  /** The descriptors as rows of one array (n × 128). */
  describe(images: tf.Tensor4D): Float32Array {
    const d = this.forward(images);
    const v = Float32Array.from(d.dataSync() as Float32Array);
    d.dispose();
    return v;
  }

  dispose(): void {
    for (const t of this.#w.values()) t.dispose();
  }
}

/** Euclidean distance between descriptors `i` and `j` of an n × dim array. */
export function descriptorDistance(
  descriptors: ArrayLike<number>,
  dim: number,
  i: number,
  j: number,
): number {
  let s = 0;
  for (let k = 0; k < dim; k++) {
    const d = descriptors[i * dim + k]! - descriptors[j * dim + k]!;
    s += d * d;
  }
  return Math.sqrt(s);
}
