import * as tf from '@tensorflow/tfjs-core';
import { Module, Sequential, type Layer } from '../nn/module.js';
import { Conv2d } from '../nn/conv.js';
import { LeakyReLU } from '../nn/activations.js';
import { SpectralNormConv2d } from '../nn/spectral-norm.js';

export interface PatchDiscriminatorOptions {
  /** Age groups (one-hot condition channels). Default 7. */
  groups?: number;
  /** Base width. Default 64. */
  convDim?: number;
  /** Default 4, as the released FAS model (`repeat_num=4`). */
  repeatNum?: number;
}

/** The one-hot target group broadcast to an h×w map: [N, h, w, groups]. */
export function groupConditionMap(groups: tf.Tensor1D, numGroups: number, h: number, w: number): tf.Tensor4D {
  return tf.tidy(() => {
    const onehot = tf.cast(tf.oneHot(tf.cast(groups, 'int32'), numGroups), 'float32');
    return tf.tile(tf.reshape(onehot, [-1, 1, 1, numGroups]), [1, h, w, 1]) as tf.Tensor4D;
  });
}

/**
 * Conditional PatchGAN: conv4×4 s2 → LeakyReLU 0.2 → concat one-hot condition → spectrally
 * normalised convs (`main.0`, `main.2`, ...) → plain conv to one channel. 112 input → 5×5 patches.
 */
export class PatchDiscriminator extends Module {
  readonly conv1: Conv2d;
  readonly main: Sequential;
  readonly groups: number;

  constructor(options: PatchDiscriminatorOptions = {}) {
    super();
    const groups = options.groups ?? 7;
    const d = options.convDim ?? 64;
    const repeat = options.repeatNum ?? 4;
    this.groups = groups;
    this.conv1 = this.addModule('conv1', new Conv2d(3, d, 4, { stride: 2, padding: 1 }));
    const layers: Layer[] = [];
    let mult = 1;
    for (let n = 1; n < repeat; n++) {
      const prev = mult;
      mult = Math.min(2 ** n, 8);
      layers.push(
        new SpectralNormConv2d(d * prev + (n === 1 ? groups : 0), d * mult, 4, 2, 1),
        new LeakyReLU(0.2),
      );
    }
    const prev = mult;
    mult = Math.min(2 ** repeat, 8);
    layers.push(
      new SpectralNormConv2d(d * prev, d * mult, 4, 1, 1),
      new LeakyReLU(0.2),
      new Conv2d(d * mult, 1, 4, { stride: 1, padding: 1 }),
    );
    this.main = this.addModule('main', new Sequential(layers));
  }

  /** images [N,S,S,3], target groups [N] → patch logits [N, h, w, 1]. */
  forward(images: tf.Tensor4D, groups: tf.Tensor1D): tf.Tensor4D {
    return tf.tidy(() => {
      const x = tf.leakyRelu(this.conv1.forward(images), 0.2) as tf.Tensor4D;
      const cond = groupConditionMap(groups, this.groups, x.shape[1], x.shape[2]);
      return this.main.forward(tf.concat([x, cond], 3)) as tf.Tensor4D;
    });
  }
}
