// face-api.js's "tiny" 68-point landmark network (three dense blocks of depthwise-separable convolutions and
// a linear layer), reimplemented on tfjs-core ops over the weights bundled in @vladmandic/face-api, and the
// reduction of the 68 points to the five insightface uses.
import * as tf from '@tensorflow/tfjs-core';
import type { Point } from './similarity-transform.js';
import type { FaceBox } from './tiny-face-detector.js';
import { loadManifestWeights, take } from './weights.js';

const MEAN_RGB = [122.782, 117.001, 104.298] as const;
const SIZE = 112;

export class FaceLandmarks68Tiny {
  readonly #w: Map<string, tf.Tensor>;

  constructor(weights = loadManifestWeights('face_landmark_68_tiny_model')) {
    this.#w = weights;
  }

  #sep(x: tf.Tensor4D, name: string, stride: number): tf.Tensor4D {
    const y = tf.separableConv2d(
      x,
      take<tf.Rank.R4>(this.#w, `${name}/depthwise_filter`, 4),
      take<tf.Rank.R4>(this.#w, `${name}/pointwise_filter`, 4),
      stride,
      'same',
    );
    return tf.add(y, take(this.#w, `${name}/bias`, 1));
  }

  #denseBlock(x: tf.Tensor4D, name: string, first: boolean): tf.Tensor4D {
    const out1 = tf.relu(
      first
        ? tf.add(
            tf.conv2d(x, take<tf.Rank.R4>(this.#w, `${name}/conv0/filters`, 4), 2, 'same'),
            take(this.#w, `${name}/conv0/bias`, 1),
          )
        : this.#sep(x, `${name}/conv0`, 2),
    ) as tf.Tensor4D;
    const out2 = this.#sep(out1, `${name}/conv1`, 1);
    const out3 = this.#sep(tf.relu(tf.add(out1, out2)) as tf.Tensor4D, `${name}/conv2`, 1);
    return tf.relu(tf.add(out1, tf.add(out2, out3))) as tf.Tensor4D;
  }

  /**
   * 68 landmarks (pixels of the original image) of the face in `box` of an RGB image [H, W, 3] (0..255).
   * The box is cut out (clipped to the image), padded to a centred square and resized to 112, as face-api does.
   */
  detect(rgb: tf.Tensor3D, box: FaceBox): Point[] {
    const [h, w] = rgb.shape;
    const x0 = Math.max(0, Math.floor(box.x));
    const y0 = Math.max(0, Math.floor(box.y));
    const x1 = Math.min(w, Math.floor(box.x + box.width));
    const y1 = Math.min(h, Math.floor(box.y + box.height));
    const cw = x1 - x0;
    const ch = y1 - y0;
    if (cw < 4 || ch < 4) throw new Error(`face box ${cw}×${ch} is too small for landmarks`);
    const side = Math.max(cw, ch);
    const padX = Math.round((side - cw) / 2);
    const padY = Math.round((side - ch) / 2);
    const out = tf.tidy(() => {
      const crop = tf.cast(tf.slice(rgb, [y0, x0, 0], [ch, cw, 3]), 'float32');
      const sq = tf.pad(crop, [
        [padY, side - ch - padY],
        [padX, side - cw - padX],
        [0, 0],
      ]) as tf.Tensor3D;
      const x = tf.div(
        tf.sub(
          tf.expandDims(tf.image.resizeBilinear(sq, [SIZE, SIZE], false, false), 0),
          tf.tensor1d([...MEAN_RGB]),
        ),
        255,
      );
      let y = this.#denseBlock(x as tf.Tensor4D, 'dense0', true);
      y = this.#denseBlock(y, 'dense1', false);
      y = this.#denseBlock(y, 'dense2', false);
      const pooled = tf.reshape(tf.avgPool(y, 14, 2, 'valid'), [1, -1]) as tf.Tensor2D;
      return tf.add(
        tf.matMul(pooled, take<tf.Rank.R2>(this.#w, 'fc/weights', 2)),
        take(this.#w, 'fc/bias', 1),
      );
    });
    const v = out.dataSync();
    out.dispose();
    // outputs are fractions of the padded square
    return Array.from({ length: 68 }, (_, i): Point => [
      x0 - padX + v[2 * i]! * side,
      y0 - padY + v[2 * i + 1]! * side,
    ]);
  }

  dispose(): void {
    for (const t of this.#w.values()) t.dispose();
  }
}

const mean = (pts: Point[]): Point => [
  pts.reduce((a, p) => a + p[0], 0) / pts.length,
  pts.reduce((a, p) => a + p[1], 0) / pts.length,
];

/** The five insightface points from the 68 (iBUG order): eye centres, nose tip, mouth corners. */
export function fivePoints(p68: readonly Point[]): Point[] {
  if (p68.length !== 68) throw new Error(`fivePoints: expected 68 landmarks, got ${p68.length}`);
  return [mean(p68.slice(36, 42)), mean(p68.slice(42, 48)), p68[30]!, p68[48]!, p68[54]!];
}
