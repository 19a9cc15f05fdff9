import * as tf from '@tensorflow/tfjs-core';
import { Layer } from './module.js';

export interface BatchNormOptions {
  /** PyTorch convention: running = (1 − m)·running + m·batch. */
  momentum?: number;
  eps?: number;
}

/**
 * Batch normalisation over the last axis (BatchNorm1d on [N,C], BatchNorm2d on NHWC).
 * Training mode normalises with the biased batch variance and updates the running statistics
 * with the unbiased one, as PyTorch does; eval mode uses the running statistics.
 */
export class BatchNorm extends Layer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  readonly numBatchesTracked: tf.Variable;
  readonly momentum: number;
  readonly eps: number;

  constructor(
    readonly numFeatures: number,
    options: BatchNormOptions = {},
  ) {
    super();
    this.momentum = options.momentum ?? 0.1;
    this.eps = options.eps ?? 1e-5;
    this.weight = this.addParameter('weight', tf.ones([numFeatures]));
    this.bias = this.addParameter('bias', tf.zeros([numFeatures]));
    this.runningMean = this.addBuffer('running_mean', tf.zeros([numFeatures]));
    this.runningVar = this.addBuffer('running_var', tf.ones([numFeatures]));
    this.numBatchesTracked = this.addBuffer('num_batches_tracked', tf.scalar(0, 'int32'));
  }

  forward(x: tf.Tensor): tf.Tensor {
    if (x.shape[x.rank - 1] !== this.numFeatures || (x.rank !== 2 && x.rank !== 4)) {
      throw new Error(
        `BatchNorm(${this.numFeatures}) expects [N,${this.numFeatures}] or NHWC, got [${x.shape}]`,
      );
    }
    if (!this.training) {
      return tf.batchNorm(x, this.runningMean, this.runningVar, this.bias, this.weight, this.eps);
    }
    const axes = x.rank === 4 ? [0, 1, 2] : [0];
    const n = x.size / this.numFeatures;
    if (n < 2)
      throw new Error(`BatchNorm(${this.numFeatures}) in training needs more than 1 value per channel`);
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, axes);
      const m = this.momentum;
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
      this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(variance, (m * n) / (n - 1))));
      this.numBatchesTracked.assign(tf.add(this.numBatchesTracked, tf.scalar(1, 'int32')));
      return tf.batchNorm(x, mean, variance, this.bias, this.weight, this.eps);
    });
  }
}
