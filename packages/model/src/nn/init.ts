import * as tf from '@tensorflow/tfjs-core';

/** Weight initialisers of the reference (`nn.init`), for our layouts. */
export type Init =
  | { kind: 'xavier-uniform' }
  | { kind: 'normal'; std: number }
  /** PyTorch's default for Conv/Linear: kaiming_uniform(a=√5), i.e. U(±1/√fan_in). */
  | { kind: 'torch-default' }
  | { kind: 'zeros' };

/** fanIn/fanOut as PyTorch counts them: in·k·k and out·k·k. */
export function initWeight(shape: number[], fanIn: number, fanOut: number, init: Init): tf.Tensor {
  switch (init.kind) {
    case 'xavier-uniform': {
      const bound = Math.sqrt(6 / (fanIn + fanOut));
      return tf.randomUniform(shape, -bound, bound);
    }
    case 'normal':
      return tf.randomNormal(shape, 0, init.std);
    case 'torch-default': {
      const bound = 1 / Math.sqrt(fanIn);
      return tf.randomUniform(shape, -bound, bound);
    }
    case 'zeros':
      return tf.zeros(shape);
  }
}

/** Bias initialiser matching the weight's: PyTorch's default draws U(±1/√fan_in), the others zero it. */
export function initBias(size: number, fanIn: number, init: Init): tf.Tensor {
  if (init.kind === 'torch-default') {
    const bound = 1 / Math.sqrt(fanIn);
    return tf.randomUniform([size], -bound, bound);
  }
  return tf.zeros([size]);
}
