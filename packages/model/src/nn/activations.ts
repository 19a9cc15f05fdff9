import * as tf from '@tensorflow/tfjs-core';
import { TRAINING_KERNELS } from '@mtlface/backend';
import { hasTrainingKernel } from './native-kernels.js';
import { Layer } from './module.js';

/** Per-channel PReLU (PyTorch `nn.PReLU(C)`, slopes initialised to 0.25). */
export class PReLU extends Layer {
  readonly weight: tf.Variable;
  constructor(readonly channels: number) {
    super();
    this.weight = this.addParameter('weight', tf.fill([channels], 0.25));
  }
  forward(x: tf.Tensor): tf.Tensor {
    if (
      x.dtype === 'float32' &&
      x.shape[x.rank - 1] === this.channels &&
      hasTrainingKernel(TRAINING_KERNELS.preluGrad)
    ) {
      // tfjs's gradient of prelu is five full-size ops (Greater, two Selects, Multiply, ZerosLike) and a Sum
      const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
        const [input, alpha] = args as [tf.Tensor, tf.Tensor];
        (args[2] as tf.GradSaveFunc)([input, alpha]);
        return {
          value: tf.prelu(input, alpha),
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
            const [xs, a] = saved as [tf.Tensor, tf.Tensor];
            return tf.engine().runKernel(TRAINING_KERNELS.preluGrad, { x: xs, alpha: a, dy }) as tf.Tensor[];
          },
        };
      });
      return f(x, this.weight);
    }
    return tf.prelu(x, this.weight);
  }
}

export class ReLU extends Layer {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.relu(x);
  }
}

export class LeakyReLU extends Layer {
  constructor(readonly slope = 0.2) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.leakyRelu(x, this.slope);
  }
}

export class Sigmoid extends Layer {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.sigmoid(x);
  }
}

/** Element-wise dropout, active in training mode only (inverted scaling, as PyTorch). */
export class Dropout extends Layer {
  /** Seed of the next mask (the trainer sets one per iteration and rank so runs are reproducible); undefined = random. */
  seed: number | undefined = undefined;
  constructor(public rate = 0.5) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.training && this.rate > 0 ? tf.dropout(x, this.rate, undefined, this.seed) : x;
  }
}

/** Flattens NHWC to [N, C·H·W] in PyTorch's (C, H, W) order, so reference linear weights apply unchanged. */
export class FlattenCHW extends Layer {
  forward(x: tf.Tensor): tf.Tensor {
    return flattenCHW(x);
  }
}

export function flattenCHW(x: tf.Tensor): tf.Tensor2D {
  if (x.rank === 2) return x as tf.Tensor2D;
  if (x.rank !== 4) throw new Error(`flatten expects NHWC, got [${x.shape}]`);
  return tf.tidy(() => tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [x.shape[0], -1]));
}
