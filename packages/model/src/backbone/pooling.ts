import * as tf from '@tensorflow/tfjs-core';

/** PyTorch's adaptive pooling bin i of n over length L: [floor(i·L/n), ceil((i+1)·L/n)). Bins may overlap. */
export function adaptiveBins(length: number, n: number): Array<[number, number]> {
  return Array.from({ length: n }, (_, i): [number, number] => [
    Math.floor((i * length) / n),
    Math.ceil(((i + 1) * length) / n),
  ]);
}

/** Adaptive avg/max pooling of NHWC `x` to n×n, flattened in (C, H, W) order: [N, C·n·n]. */
export function adaptivePoolFlat(x: tf.Tensor4D, n: number, mode: 'avg' | 'max'): tf.Tensor2D {
  const [batch, h, w, c] = x.shape;
  return tf.tidy(() => {
    const rows = adaptiveBins(h, n);
    const cols = adaptiveBins(w, n);
    const cells: tf.Tensor[] = [];
    for (const [r0, r1] of rows) {
      for (const [c0, c1] of cols) {
        const win = tf.slice(x, [0, r0, c0, 0], [batch, r1 - r0, c1 - c0, c]);
        cells.push(mode === 'avg' ? tf.mean(win, [1, 2]) : tf.max(win, [1, 2]));
      }
    }
    // [N, n·n, C] → [N, C, n·n] → (C, H, W) order
    return tf.reshape(tf.transpose(tf.stack(cells, 1), [0, 2, 1]), [batch, c * n * n]);
  });
}

/** Spatial pyramid pooling: the adaptive pools for each size, concatenated ([N, C·Σn²]). */
export function sppFlat(x: tf.Tensor4D, sizes: readonly number[], mode: 'avg' | 'max'): tf.Tensor2D {
  return tf.tidy(() =>
    tf.concat(
      sizes.map((n) => adaptivePoolFlat(x, n, mode)),
      1,
    ),
  );
}
