// face-api.js's age and gender network — a small Xception (entry flow of two reduction blocks, two
// residual main blocks, an exit reduction block; all depthwise-separable) over a 112×112 face, average
// pooled, then a linear age regression and a two-way gender softmax — reimplemented on tfjs-core ops over the
// weights bundled in @vladmandic/face-api (trained on real photos: UTKFace). Nothing is downloaded.
import * as tf from '@tensorflow/tfjs-core';
import { loadManifestWeights, take } from '../align/weights.js';
import type { FaceImages } from '../model/images.js';

const SIZE = 112;
const MEAN_RGB = [122.782, 117.001, 104.298] as const;

/** [-1, 1] model input → the 0..255 pixels face-api expects. */
export const toPixels = (x: tf.Tensor4D): tf.Tensor4D => tf.mul(tf.add(x, 1), 127.5);

export interface AgeGender {
  /** years */
  readonly age: Float32Array;
  /** probability that the face is male */
  readonly male: Float32Array;
}

/** RGB images [N, H, W, 3] in 0..255 → the network's input: centred square, 112 px, mean removed, /255. */
export function faceApiInput(images: tf.Tensor4D, size: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w] = images.shape;
    let x = tf.cast(images, 'float32') as tf.Tensor4D;
    if (h !== w) {
      // face-api pads the short side with zeros: round(d/2) after it, the rest before
      const d = Math.abs(h - w);
      const after = Math.round(d / 2);
      x = tf.pad(
        x,
        h > w
          ? [
              [0, 0],
              [0, 0],
              [d - after, after],
              [0, 0],
            ]
          : [
              [0, 0],
              [d - after, after],
              [0, 0],
              [0, 0],
            ],
      );
    }
    if (x.shape[1] !== size) x = tf.image.resizeBilinear(x, [size, size], false, false);
    return tf.div(tf.sub(x, tf.tensor1d([...MEAN_RGB])), 255);
  });
}

export class AgeGenderNet {
  readonly #w: Map<string, tf.Tensor>;

  constructor(weights = loadManifestWeights('age_gender_model')) {
    this.#w = weights;
  }

  #conv(x: tf.Tensor4D, name: string, stride: number): tf.Tensor4D {
    const y = tf.conv2d(x, take<tf.Rank.R4>(this.#w, `${name}/filters`, 4), stride, 'same');
    return tf.add(y, take(this.#w, `${name}/bias`, 1));
  }

  #sep(x: tf.Tensor4D, name: string): tf.Tensor4D {
    const y = tf.separableConv2d(
      x,
      take<tf.Rank.R4>(this.#w, `${name}/depthwise_filter`, 4),
      take<tf.Rank.R4>(this.#w, `${name}/pointwise_filter`, 4),
      1,
      'same',
    );
    return tf.add(y, take(this.#w, `${name}/bias`, 1));
  }

  /** Two separable convolutions, a strided max pool, plus a strided 1×1 projection of the input. */
  #reduction(x: tf.Tensor4D, name: string, activateInput: boolean): tf.Tensor4D {
    let y = this.#sep(activateInput ? tf.relu(x) : x, `${name}/separable_conv0`);
    y = this.#sep(tf.relu(y), `${name}/separable_conv1`);
    y = tf.maxPool(y, 3, 2, 'same');
    return tf.add(y, this.#conv(x, `${name}/expansion_conv`, 2));
  }

  #main(x: tf.Tensor4D, name: string): tf.Tensor4D {
    let y = x;
    for (const k of [0, 1, 2]) y = this.#sep(tf.relu(y), `${name}/separable_conv${k}`);
    return tf.add(y, x);
  }

  /** Raw outputs for RGB images [N, H, W, 3] in 0..255: age [N] in years, gender logits [N, 2] (male, female). */
  forward(images: tf.Tensor4D): { age: tf.Tensor1D; genderLogits: tf.Tensor2D } {
    return tf.tidy(() => {
      const x = faceApiInput(images, SIZE);
      let y = tf.relu(this.#conv(x, 'entry_flow/conv_in', 2));
      y = this.#reduction(y, 'entry_flow/reduction_block_0', false);
      y = this.#reduction(y, 'entry_flow/reduction_block_1', true);
      y = this.#main(y, 'middle_flow/main_block_0');
      y = this.#main(y, 'middle_flow/main_block_1');
      y = this.#reduction(y, 'exit_flow/reduction_block', true);
      y = tf.relu(this.#sep(y, 'exit_flow/separable_conv'));
      const pooled = tf.reshape(tf.avgPool(y, 7, 2, 'valid'), [images.shape[0], -1]) as tf.Tensor2D;
      const fc = (name: string) =>
        tf.add(
          tf.matMul(pooled, take<tf.Rank.R2>(this.#w, `${name}/weights`, 2)),
          take(this.#w, `${name}/bias`, 1),
        );
      return {
        age: tf.reshape(fc('fc/age'), [-1]) as tf.Tensor1D,
        genderLogits: fc('fc/gender') as tf.Tensor2D,
      };
    });
  }

  /** Age in years and the probability of "male" for each image. */
  predict(images: tf.Tensor4D): AgeGender {
    const { age, genderLogits } = this.forward(images);
    const male = tf.tidy(() => tf.reshape(tf.slice(tf.softmax(genderLogits), [0, 0], [-1, 1]), [-1]));
    const out = { age: age.dataSync() as Float32Array, male: male.dataSync() as Float32Array };
    tf.dispose([age, genderLogits, male]);
    return { age: Float32Array.from(out.age), male: Float32Array.from(out.male) };
  }

  /** Ages in years of a face set (NHWC in [-1, 1], any side), in batches. */
  predictFaces(set: FaceImages, batchSize = 32): Float32Array {
    const per = set.size * set.size * 3;
    const out = new Float32Array(set.n);
    for (let s = 0; s < set.n; s += batchSize) {
      const m = Math.min(batchSize, set.n - s);
      const x = tf.tidy(() =>
        toPixels(tf.tensor4d(set.images.subarray(s * per, (s + m) * per), [m, set.size, set.size, 3])),
      );
      out.set(this.predict(x).age, s);
      x.dispose();
    }
    return out;
  }

  dispose(): void {
    for (const t of this.#w.values()) t.dispose();
  }
}
