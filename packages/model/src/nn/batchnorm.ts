import * as tf from '@tensorflow/tfjs-core';
import { TRAINING_KERNELS } from '@mtlface/backend';
import { Layer, type Module } from './module.js';
import { PReLU } from './activations.js';
import { hasTrainingKernel } from './native-kernels.js';

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
  /** Training forwards update the running statistics (off inside {@link withoutStatUpdates}). */
  updateStats = true;

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
      // a per-channel affine map: its gradient is one multiply (FAS backpropagates through the frozen backbone)
      return tf.tidy(() => {
        const a = tf.mul(this.weight, tf.rsqrt(tf.add(this.runningVar, this.eps)));
        return tf.add(tf.mul(x, a), tf.sub(this.bias, tf.mul(this.runningMean, a)));
      });
    }
    const axes = x.rank === 4 ? [0, 1, 2] : [0];
    const n = x.size / this.numFeatures;
    if (n < 2)
      throw new Error(`BatchNorm(${this.numFeatures}) in training needs more than 1 value per channel`);
    if (x.dtype === 'float32' && hasTrainingKernel(TRAINING_KERNELS.batchNormTrain))
      return this.#nativeTrainForward(x, n);
    return this.#trainForward(x, this.weight, this.bias, axes, n);
  }

  /**
   * `next.forward(this.forward(x))` as one native kernel each way when `next` is a PReLU over the same
   * channels and this is a training forward on `native` (the batch norm's output is never stored: the
   * backward recomputes it); null otherwise. {@link Sequential} asks every layer before running it.
   */
  override forwardWithNext(x: tf.Tensor, next: Layer): tf.Tensor | null {
    if (
      !this.training ||
      !(next instanceof PReLU) ||
      next.channels !== this.numFeatures ||
      x.dtype !== 'float32' ||
      (x.rank !== 2 && x.rank !== 4) ||
      x.shape[x.rank - 1] !== this.numFeatures ||
      x.size / this.numFeatures < 2 ||
      !hasTrainingKernel(TRAINING_KERNELS.batchNormPreluTrain)
    )
      return null;
    const n = x.size / this.numFeatures;
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [input, scale, offset, alpha] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const save = args[4] as tf.GradSaveFunc;
      const [z, mean, invStd, variance] = tf
        .engine()
        .runKernel(
          TRAINING_KERNELS.batchNormPreluTrain,
          { x: input, scale, offset, alpha },
          { eps: this.eps },
        ) as tf.Tensor[];
      if (this.updateStats) this.#updateRunning(mean!, variance!, n);
      save([input, scale, offset, alpha, mean!, invStd!]);
      return {
        value: z!,
        gradFunc: (dz: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, sc, off, al, mu, inv] = saved as tf.Tensor[];
          return tf.engine().runKernel(TRAINING_KERNELS.batchNormPreluTrainGrad, {
            x: xs!,
            dy: dz,
            scale: sc!,
            offset: off!,
            alpha: al!,
            mean: mu!,
            invStd: inv!,
          }) as tf.Tensor[];
        },
      };
    });
    return f(x, this.weight, this.bias, next.weight);
  }

  #updateRunning(mean: tf.Tensor, variance: tf.Tensor, n: number): void {
    const m = this.momentum;
    this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
    this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(variance, (m * n) / (n - 1))));
    this.numBatchesTracked.assign(tf.add(this.numBatchesTracked, tf.scalar(1, 'int32')));
  }

  /** The same forward and backward as {@link #trainForward}, each one native kernel (two passes over x). */
  #nativeTrainForward(x: tf.Tensor, n: number): tf.Tensor {
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [input, scale, offset] = args as [tf.Tensor, tf.Tensor, tf.Tensor];
      const save = args[3] as tf.GradSaveFunc;
      const [y, mean, invStd, variance] = tf
        .engine()
        .runKernel(
          TRAINING_KERNELS.batchNormTrain,
          { x: input, scale, offset },
          { eps: this.eps },
        ) as tf.Tensor[];
      if (this.updateStats) this.#updateRunning(mean!, variance!, n);
      save([input, scale, mean!, invStd!]);
      return {
        value: y!,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, sc, mu, inv] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
          return tf.engine().runKernel(TRAINING_KERNELS.batchNormTrainGrad, {
            x: xs,
            dy,
            scale: sc,
            mean: mu,
            invStd: inv,
          }) as tf.Tensor[];
        },
      };
    });
    return f(x, this.weight, this.bias);
  }

  /**
   * Training-mode batch norm with its analytic backward (dx = σ⁻¹·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)),
   * dx̂ = dy·w): about half the full-size passes of differentiating tf.moments + tf.batchNorm.
   */
  #trainForward(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, axes: number[], n: number): tf.Tensor {
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [input, scale, shift] = args as [tf.Tensor, tf.Tensor, tf.Tensor];
      const save = args[3] as tf.GradSaveFunc;
      const { mean, variance } = tf.moments(input, axes);
      if (this.updateStats) this.#updateRunning(mean, variance, n);
      const invStd = tf.rsqrt(tf.add(variance, this.eps));
      const xHat = tf.mul(tf.sub(input, mean), invStd);
      save([xHat, invStd, scale]);
      return {
        value: tf.add(tf.mul(xHat, scale), shift),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xh, inv, sc] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
          const dxHat = tf.mul(dy, sc);
          const centred = tf.sub(dxHat, tf.mean(dxHat, axes));
          const dx = tf.mul(tf.sub(centred, tf.mul(xh, tf.mean(tf.mul(dxHat, xh), axes))), inv);
          return [dx, tf.sum(tf.mul(dy, xh), axes), tf.sum(dy, axes)];
        },
      };
    });
    return f(x, w, b);
  }
}

/**
 * Runs `fn` with the running statistics of every BatchNorm under `root` left as they are; training
 * mode still normalises with the batch statistics. For a second forward of the same batch that
 * PyTorch would not run (tfjs cannot keep a graph for a later backward, so a step that needs the
 * generator's output both detached and differentiated computes it twice): the batch counts once.
 */
export function withoutStatUpdates<T>(root: Module, fn: () => T): T {
  const norms = root.namedModules().flatMap(([, m]) => (m instanceof BatchNorm && m.updateStats ? [m] : []));
  for (const m of norms) m.updateStats = false;
  try {
    return fn();
  } finally {
    for (const m of norms) m.updateStats = true;
  }
}
