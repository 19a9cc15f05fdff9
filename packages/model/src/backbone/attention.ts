import * as tf from '@tensorflow/tfjs-core';
import { Module, Sequential } from '../nn/module.js';
import { Conv2d } from '../nn/conv.js';
import { BatchNorm } from '../nn/batchnorm.js';
import { ReLU, Sigmoid } from '../nn/activations.js';
import type { Init } from '../nn/init.js';
import { sppFlat } from './pooling.js';

export const SPP_SIZES = [1, 2, 3] as const;

/**
 * The attention-based feature decomposition ("fsm"): splits the last feature map into an age
 * part (channel + spatial attention) and the identity residual.
 * Names: `channel.{0,2,3}`, `spatial.{0,1}` as the reference.
 */
export class AttentionModule extends Module {
  readonly channel: Sequential;
  readonly spatial: Sequential;

  constructor(
    readonly channels: number,
    init: Init,
    reduction = 16,
  ) {
    super();
    const kernel = 7;
    this.spatial = this.addModule(
      'spatial',
      new Sequential([
        new Conv2d(2, 1, kernel, { padding: (kernel - 1) / 2, bias: false, init }),
        new BatchNorm(1, { momentum: 0.01 }),
        new Sigmoid(),
      ]),
    );
    const pooled = channels * SPP_SIZES.reduce((s, n) => s + n * n, 0);
    if (pooled % reduction !== 0)
      throw new Error(`fsm: ${pooled} pooled channels not divisible by ${reduction}`);
    this.channel = this.addModule(
      'channel',
      new Sequential([
        new Conv2d(pooled, pooled / reduction, 1, { bias: false, init }),
        new ReLU(),
        new Conv2d(pooled / reduction, channels, 1, { bias: false, init }),
        new BatchNorm(channels, { momentum: 0.01 }),
        new Sigmoid(),
      ]),
    );
  }

  forward(x: tf.Tensor4D): { xId: tf.Tensor4D; xAge: tf.Tensor4D } {
    const [n, , , c] = x.shape;
    if (c !== this.channels) throw new Error(`fsm expects ${this.channels} channels, got [${x.shape}]`);
    return tf.tidy(() => {
      const pooled = tf.add(sppFlat(x, SPP_SIZES, 'avg'), sppFlat(x, SPP_SIZES, 'max'));
      const channelScale = this.channel.forward(tf.reshape(pooled, [n, 1, 1, -1])); // [N,1,1,C]
      const spatialIn = tf.concat([tf.max(x, 3, true), tf.mean(x, 3, true)], 3);
      const spatialScale = this.spatial.forward(spatialIn); // [N,H,W,1]
      const xAge = tf.mul(tf.add(tf.mul(x, channelScale), tf.mul(x, spatialScale)), 0.5) as tf.Tensor4D;
      const xId = tf.sub(x, xAge) as tf.Tensor4D;
      return { xId, xAge };
    });
  }
}
