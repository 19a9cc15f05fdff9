import * as tf from '@tensorflow/tfjs-core';
import { Layer } from './module.js';
import { initBias, initWeight, type Init } from './init.js';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  bias?: boolean;
  init?: Init;
}

/** 2-D convolution, NHWC input, weight stored HWIO (PyTorch OIHW on import/export). */
export class Conv2d extends Layer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly stride: number;
  readonly padding: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    options: Conv2dOptions = {},
  ) {
    super();
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    const init = options.init ?? { kind: 'torch-default' };
    const k = kernelSize;
    const fanIn = inChannels * k * k;
    this.weight = this.addParameter(
      'weight',
      initWeight([k, k, inChannels, outChannels], fanIn, outChannels * k * k, init),
      'conv',
    );
    this.bias = (options.bias ?? true) ? this.addParameter('bias', initBias(outChannels, fanIn, init)) : null;
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    return conv2dNHWC(x, this.weight, this.bias, this.stride, this.padding, this.inChannels);
  }
}

/** conv2d with PyTorch semantics (symmetric zero padding `padding`, output floor((H+2p−k)/s)+1). */
export function conv2dNHWC(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | null,
  stride: number,
  padding: number,
  inChannels: number,
): tf.Tensor4D {
  if (x.rank !== 4 || x.shape[3] !== inChannels) {
    throw new Error(`conv2d expects [N,H,W,${inChannels}] input, got [${x.shape}]`);
  }
  return tf.tidy(() => {
    const y = tf.conv2d(x as tf.Tensor4D, weight as tf.Tensor4D, stride, padding);
    return bias ? tf.add(y, bias) : y;
  });
}
