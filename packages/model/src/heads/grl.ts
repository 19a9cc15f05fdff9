import * as tf from '@tensorflow/tfjs-core';

/**
 * Gradient reversal: identity forward, gradient multiplied by −coeff backward.
 * `coeff` is a plain number (not differentiated), as in the reference.
 */
export function gradientReversal<T extends tf.Tensor>(x: T, coeff = 1): T {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    return {
      value: tf.clone(args[0] as tf.Tensor),
      gradFunc: (dy: tf.Tensor) => tf.mul(dy, -coeff),
    };
  });
  return f(x) as T;
}
