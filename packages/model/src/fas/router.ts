import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../nn/module.js';

export interface RouterShape {
  groups: number;
  unitCount: number;
  sigma: number;
}

/** Router width int((g − (g−1)·σ)·u): 819 for the reference (7 groups, 128 units, σ = 0.1). */
export function routerWidth({ groups, unitCount, sigma }: RouterShape): number {
  return Math.trunc((groups - (groups - 1) * sigma) * unitCount);
}

/** First channel of each group: start_0 = 0, start_k = int(start_{k−1} + (1 − σ)·u). */
export function routerStarts({ groups, unitCount, sigma }: RouterShape): number[] {
  const starts: number[] = [];
  let start = 0;
  for (let k = 0; k < groups; k++) {
    starts.push(start);
    start = Math.trunc(start + (1 - sigma) * unitCount);
  }
  return starts;
}

/** The 0/1 channel masks, row-major [groups, width]. */
export function routerMasks(shape: RouterShape): Float32Array {
  const width = routerWidth(shape);
  const masks = new Float32Array(shape.groups * width);
  routerStarts(shape).forEach((s, k) =>
    masks.fill(1, k * width + s, k * width + Math.min(width, s + shape.unitCount)),
  );
  return masks;
}

/** The weight-sharing task router: multiplies a feature map by the target group's channel mask. */
export class TaskRouter extends Module {
  readonly unitMapping: tf.Variable;
  readonly width: number;
  constructor(readonly shape: RouterShape) {
    super();
    this.width = routerWidth(shape);
    this.unitMapping = this.addBuffer(
      '_unit_mapping',
      tf.tensor2d(routerMasks(shape), [shape.groups, this.width]),
    );
  }
  /** x [N,H,W,width], groups [N] int. */
  forward(x: tf.Tensor4D, groups: tf.Tensor1D): tf.Tensor4D {
    return tf.tidy(() => {
      const mask = tf.gather(this.unitMapping, tf.cast(groups, 'int32'));
      return tf.mul(x, tf.reshape(mask, [x.shape[0], 1, 1, this.width]));
    });
  }
}
