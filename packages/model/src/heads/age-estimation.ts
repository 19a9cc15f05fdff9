import * as tf from '@tensorflow/tfjs-core';
import { Module, Sequential } from '../nn/module.js';
import { BatchNorm } from '../nn/batchnorm.js';
import { FlattenCHW, ReLU } from '../nn/activations.js';
import { Linear } from '../nn/linear.js';

export const AGE_CLASSES = 101;

export interface AgeEstimationOptions {
  /** Channels of x_age (the backbone's last width). Default 512. */
  channels?: number;
  /** Backbone input side; the map is inputSize/16 square. Default 112. */
  inputSize?: number;
  /** Number of age groups. Default 7. */
  groups?: number;
  /** Hidden width. Default 512. */
  hidden?: number;
}

/**
 * The age estimation module (also the CDA "DA discriminator"): BN2d → flatten → linear → ReLU →
 * linear(→101) gives age logits; linear(101→groups) gives group logits.
 * Names: `age_output_layer.{0,2,4}`, `group_output_layer`.
 */
export class AgeEstimation extends Module {
  readonly ageOutputLayer: Sequential;
  readonly groupOutputLayer: Linear;
  readonly channels: number;
  readonly groups: number;

  constructor(options: AgeEstimationOptions = {}) {
    super();
    const channels = options.channels ?? 512;
    const side = (options.inputSize ?? 112) / 16;
    const hidden = options.hidden ?? 512;
    this.channels = channels;
    this.groups = options.groups ?? 7;
    this.ageOutputLayer = this.addModule(
      'age_output_layer',
      new Sequential([
        new BatchNorm(channels),
        new FlattenCHW(),
        new Linear(channels * side * side, hidden),
        new ReLU(),
        new Linear(hidden, AGE_CLASSES),
      ]),
    );
    this.groupOutputLayer = this.addModule('group_output_layer', new Linear(AGE_CLASSES, this.groups));
  }

  forward(xAge: tf.Tensor4D): { ageLogits: tf.Tensor2D; groupLogits: tf.Tensor2D } {
    return tf.tidy(() => {
      const ageLogits = this.ageOutputLayer.forward(xAge) as tf.Tensor2D;
      return { ageLogits, groupLogits: this.groupOutputLayer.forward(ageLogits) };
    });
  }
}

/** DEX age: the expectation Σ softmax(logits)_i · i. */
export function dexAge(ageLogits: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const ages = tf.range(0, ageLogits.shape[1], 1, 'float32');
    return tf.sum(tf.mul(tf.softmax(ageLogits), ages), 1) as tf.Tensor1D;
  });
}
