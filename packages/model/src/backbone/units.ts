import * as tf from '@tensorflow/tfjs-core';
import { Layer, Module, Sequential } from '../nn/module.js';
import { Conv2d } from '../nn/conv.js';
import { BatchNorm } from '../nn/batchnorm.js';
import { PReLU } from '../nn/activations.js';
import type { Init } from '../nn/init.js';

/** Squeeze-excitation (names `fc1`, `fc2` as the reference). */
export class SEModule extends Layer {
  readonly fc1: Conv2d;
  readonly fc2: Conv2d;
  constructor(channels: number, reduction: number, init: Init) {
    super();
    this.fc1 = this.addModule('fc1', new Conv2d(channels, channels / reduction, 1, { bias: false, init }));
    this.fc2 = this.addModule('fc2', new Conv2d(channels / reduction, channels, 1, { bias: false, init }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const s = tf.mean(x, [1, 2], true);
      return tf.mul(x, tf.sigmoid(this.fc2.forward(tf.relu(this.fc1.forward(s)))));
    });
  }
}

/** Identity shortcut with spatial subsampling (the reference's `MaxPool2d(1, stride)`). */
export class Subsample extends Layer {
  constructor(readonly stride: number) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    if (this.stride === 1) return x;
    const [n, h, w, c] = x.shape as [number, number, number, number];
    const s = this.stride;
    if (h % s !== 0 || w % s !== 0) return tf.maxPool(x as tf.Tensor4D, 1, s, 'valid');
    // every s-th pixel as a reshape + slice: its gradient is a cheap pad (tfjs's MaxPoolGrad is slow)
    return tf.tidy(() =>
      tf.reshape(
        tf.slice(tf.reshape(x, [n, h / s, s, w / s, s, c]), [0, 0, 0, 0, 0, 0], [n, h / s, 1, w / s, 1, c]),
        [n, h / s, w / s, c],
      ),
    );
  }
}

/**
 * `bottleneck_IR` / `bottleneck_IR_SE`: BN → conv3×3 → BN → PReLU → conv3×3(stride) → BN [→ SE],
 * plus a shortcut (subsampling, or conv1×1 + BN when the width changes). No activation after the sum.
 */
export class BottleneckIR extends Module {
  readonly shortcutLayer: Layer;
  readonly resLayer: Sequential;

  constructor(inChannels: number, depth: number, stride: number, se: boolean, init: Init) {
    super();
    this.shortcutLayer = this.addModule(
      'shortcut_layer',
      inChannels === depth
        ? new Subsample(stride)
        : new Sequential([
            new Conv2d(inChannels, depth, 1, { stride, bias: false, init }),
            new BatchNorm(depth),
          ]),
    );
    const res: Layer[] = [
      new BatchNorm(inChannels),
      new Conv2d(inChannels, depth, 3, { padding: 1, bias: false, init }),
      new BatchNorm(depth),
      new PReLU(depth),
      new Conv2d(depth, depth, 3, { stride, padding: 1, bias: false, init }),
      new BatchNorm(depth),
    ];
    if (se) res.push(new SEModule(depth, 16, init));
    this.resLayer = this.addModule('res_layer', new Sequential(res));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.add(this.resLayer.forward(x), this.shortcutLayer.forward(x)));
  }
}

/** A stage: first unit with stride 2, the others stride 1. */
export class Stage extends Layer {
  readonly units: BottleneckIR[];
  constructor(inChannels: number, depth: number, count: number, se: boolean, init: Init) {
    super();
    this.units = Array.from(
      { length: count },
      (_, i) => new BottleneckIR(i === 0 ? inChannels : depth, depth, i === 0 ? 2 : 1, se, init),
    );
    this.units.forEach((u, i) => this.addModule(String(i), u));
  }
  forward(x: tf.Tensor): tf.Tensor {
    let y = x;
    for (const u of this.units) y = u.forward(y);
    return y;
  }
}
