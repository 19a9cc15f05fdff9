import * as tf from '@tensorflow/tfjs-core';
import { Layer } from './module.js';
import { conv2dNHWC } from './conv.js';
import { initBias, initSeed, initWeight } from './init.js';

const EPS = 1e-12;

function normalize(v: tf.Tensor1D): tf.Tensor1D {
  return tf.div(v, tf.maximum(tf.norm(v), EPS));
}

/** The weight as PyTorch's `weight.view(out, -1)`: HWIO → [O, I·kh·kw] in (I, H, W) order. */
export function convWeightMatrix(weightHWIO: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const o = weightHWIO.shape[3]!;
    return tf.reshape(tf.transpose(weightHWIO, [3, 2, 0, 1]), [o, -1]);
  });
}

/**
 * Conv2d wrapped in PyTorch's `spectral_norm`: parameters `weight_orig` (HWIO) and `bias`,
 * buffers `weight_u` [O] and `weight_v` [I·k·k]. Training forward runs one power iteration
 * (updating u and v) before using W/σ; eval uses the stored u and v without updating them.
 */
export class SpectralNormConv2d extends Layer {
  readonly weightOrig: tf.Variable;
  readonly bias: tf.Variable;
  readonly weightU: tf.Variable;
  readonly weightV: tf.Variable;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly stride: number,
    readonly padding: number,
  ) {
    super();
    const k = kernelSize;
    const fanIn = inChannels * k * k;
    const init = { kind: 'torch-default' } as const;
    this.bias = this.addParameter('bias', initBias(outChannels, fanIn, init));
    this.weightOrig = this.addParameter(
      'weight_orig',
      initWeight([k, k, inChannels, outChannels], fanIn, outChannels * k * k, init),
      'conv',
    );
    this.weightU = this.addBuffer(
      'weight_u',
      tf.tidy(() => normalize(tf.randomNormal([outChannels], 0, 1, 'float32', initSeed()))),
    );
    this.weightV = this.addBuffer(
      'weight_v',
      tf.tidy(() => normalize(tf.randomNormal([fanIn], 0, 1, 'float32', initSeed()))),
    );
  }

  /** One power iteration: v = normalize(Wᵀu), u = normalize(Wv). Not differentiated. */
  powerIteration(): void {
    tf.tidy(() => {
      const w = convWeightMatrix(this.weightOrig);
      const v = normalize(tf.squeeze(tf.matMul(w, tf.reshape(this.weightU, [-1, 1]), true, false), [1]));
      const u = normalize(tf.squeeze(tf.matMul(w, tf.reshape(v, [-1, 1])), [1]));
      this.weightV.assign(v);
      this.weightU.assign(u);
    });
  }

  /** σ = uᵀ W v with the stored vectors (differentiable in W only). */
  sigma(): tf.Scalar {
    return tf.tidy(() => {
      const wv = tf.matMul(convWeightMatrix(this.weightOrig), tf.reshape(this.weightV, [-1, 1]));
      return tf.sum(tf.mul(tf.reshape(this.weightU, [-1, 1]), wv)) as tf.Scalar;
    });
  }

  /** The normalised weight W/σ (HWIO). */
  weight(): tf.Tensor4D {
    return tf.tidy(() => tf.div(this.weightOrig, this.sigma()) as tf.Tensor4D);
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    if (this.training) this.powerIteration();
    return tf.tidy(() => conv2dNHWC(x, this.weight(), this.bias, this.stride, this.padding, this.inChannels));
  }
}
