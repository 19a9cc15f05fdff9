import * as tf from '@tensorflow/tfjs-core';

/** Weight initialisers of the reference (`nn.init`), for our layouts. */
export type Init =
  | { kind: 'xavier-uniform' }
  | { kind: 'normal'; std: number }
  /** PyTorch's default for Conv/Linear: kaiming_uniform(a=√5), i.e. U(±1/√fan_in). */
  | { kind: 'torch-default' }
  | { kind: 'zeros' };

let seeds: (() => number) | null = null;

/**
 * Runs `build` with every random initialiser in this package seeded from `next()`, so the initial
 * weights are a function of the caller's seed (without it, tfjs draws each seed from Math.random).
 * Nests; the previous source is restored afterwards, also on a throw.
 */
export function withInitSeeds<T>(next: () => number, build: () => T): T {
  const outer = seeds;
  seeds = next;
  try {
    return build();
  } finally {
    seeds = outer;
  }
}

/** The seed for the next random initialiser: from {@link withInitSeeds}, else undefined (Math.random). */
export function initSeed(): number | undefined {
  return seeds?.();
}

/** fanIn/fanOut as PyTorch counts them: in·k·k and out·k·k. */
export function initWeight(shape: number[], fanIn: number, fanOut: number, init: Init): tf.Tensor {
  switch (init.kind) {
    case 'xavier-uniform': {
      const bound = Math.sqrt(6 / (fanIn + fanOut));
      return tf.randomUniform(shape, -bound, bound, 'float32', initSeed());
    }
    case 'normal':
      return tf.randomNormal(shape, 0, init.std, 'float32', initSeed());
    case 'torch-default': {
      const bound = 1 / Math.sqrt(fanIn);
      return tf.randomUniform(shape, -bound, bound, 'float32', initSeed());
    }
    case 'zeros':
      return tf.zeros(shape);
  }
}

/** Bias initialiser matching the weight's: PyTorch's default draws U(±1/√fan_in), the others zero it. */
export function initBias(size: number, fanIn: number, init: Init): tf.Tensor {
  if (init.kind === 'torch-default') {
    const bound = 1 / Math.sqrt(fanIn);
    return tf.randomUniform([size], -bound, bound, 'float32', initSeed());
  }
  return tf.zeros([size]);
}
