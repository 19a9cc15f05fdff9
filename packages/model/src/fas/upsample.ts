import * as tf from '@tensorflow/tfjs-core';

/**
 * Bilinear ×2 along `axis` with half-pixel centres and edge clamping (PyTorch `align_corners=False`):
 * out[2i] = ¾·x[i] + ¼·x[i−1], out[2i+1] = ¾·x[i] + ¼·x[i+1], indices clamped to the edge.
 * Built from slices so its gradient is exact (tfjs's resizeBilinear gradient ignores half-pixel centres).
 */
function upsample2xAxis(x: tf.Tensor4D, axis: 1 | 2): tf.Tensor4D {
  return tf.tidy(() => {
    const n = x.shape[axis];
    const size = [...x.shape];
    const first = (start: number, len: number): tf.Tensor4D => {
      const begin = [0, 0, 0, 0];
      begin[axis] = start;
      size[axis] = len;
      return tf.slice(x, begin, [...size]);
    };
    const prev = n > 1 ? tf.concat([first(0, 1), first(0, n - 1)], axis) : x;
    const next = n > 1 ? tf.concat([first(1, n - 1), first(n - 1, 1)], axis) : x;
    const even = tf.add(tf.mul(x, 0.75), tf.mul(prev, 0.25));
    const odd = tf.add(tf.mul(x, 0.75), tf.mul(next, 0.25));
    const out = [...x.shape] as [number, number, number, number];
    out[axis] = 2 * n;
    return tf.reshape(tf.stack([even, odd], axis + 1), out);
  });
}

/** Bilinear ×2 upsampling of NHWC maps with half-pixel centres (PyTorch `interpolate(scale_factor=2)`). */
export function upsampleBilinear2x(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => upsample2xAxis(upsample2xAxis(x, 1), 2));
}
