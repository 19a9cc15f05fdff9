import * as tf from '@tensorflow/tfjs-core';
import { Layer } from './module.js';
import { initBias, initWeight, type Init } from './init.js';

/** Fully connected layer; weight kept in PyTorch's [out, in] layout so checkpoints import as they are. */
export class Linear extends Layer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { bias?: boolean; init?: Init } = {},
  ) {
    super();
    const init = options.init ?? { kind: 'torch-default' };
    this.weight = this.addParameter(
      'weight',
      initWeight([outFeatures, inFeatures], inFeatures, outFeatures, init),
    );
    this.bias =
      (options.bias ?? true) ? this.addParameter('bias', initBias(outFeatures, inFeatures, init)) : null;
  }

  forward(x: tf.Tensor): tf.Tensor2D {
    if (x.rank !== 2 || x.shape[1] !== this.inFeatures) {
      throw new Error(
        `Linear(${this.inFeatures}→${this.outFeatures}) expects [N,${this.inFeatures}], got [${x.shape}]`,
      );
    }
    return tf.tidy(() => {
      const y = tf.matMul(x as tf.Tensor2D, this.weight as tf.Tensor2D, false, true);
      return (this.bias ? tf.add(y, this.bias) : y) as tf.Tensor2D;
    });
  }
}
