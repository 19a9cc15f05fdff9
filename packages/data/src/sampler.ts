import { permutation } from './rng.js';

export interface DistributedSamplerOptions {
  /** Number of samples in the dataset. */
  size: number;
  /** Images per rank per iteration. */
  batchSize: number;
  worldSize: number;
  rank: number;
  seed: number;
  /** Shuffle per epoch (default true); false keeps dataset order. */
  shuffle?: boolean;
}

/** Where a global iteration falls. */
export interface SamplerPosition {
  epoch: number;
  /** Iteration index inside the epoch. */
  step: number;
}

/**
 * The spec's sampler (mtlface-model.md §5): per epoch e, a shuffle of 0..N−1 seeded with seed + e
 * (`permutation(N, seed + e)`); the tail that does not fill a global batch (batchSize·worldSize) is
 * dropped; rank r takes every W-th index of the kept prefix starting at r, and cuts that list into
 * batches of batchSize. Iterations are counted globally across epochs, so resuming at iteration k
 * skips exactly k global batches. Pure: no state besides the options.
 */
export class DistributedSampler {
  readonly size: number;
  readonly batchSize: number;
  readonly worldSize: number;
  readonly rank: number;
  readonly seed: number;
  readonly shuffle: boolean;
  /** Global batches (iterations) per epoch. */
  readonly batchesPerEpoch: number;
  private cache: { epoch: number; indices: Int32Array } | undefined;

  constructor(opts: DistributedSamplerOptions) {
    const { size, batchSize, worldSize, rank, seed } = opts;
    for (const [name, v] of Object.entries({ size, batchSize, worldSize, seed })) {
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`DistributedSampler: ${name} must be a non-negative integer, got ${v}`);
    }
    if (batchSize < 1) throw new RangeError(`DistributedSampler: batchSize must be ≥ 1, got ${batchSize}`);
    if (worldSize < 1) throw new RangeError(`DistributedSampler: worldSize must be ≥ 1, got ${worldSize}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
      throw new RangeError(`DistributedSampler: rank must be in [0, ${worldSize}), got ${rank}`);
    }
    this.size = size;
    this.batchSize = batchSize;
    this.worldSize = worldSize;
    this.rank = rank;
    this.seed = seed;
    this.shuffle = opts.shuffle ?? true;
    this.batchesPerEpoch = Math.floor(size / (batchSize * worldSize));
    if (this.batchesPerEpoch === 0) {
      throw new RangeError(
        `DistributedSampler: ${size} samples cannot fill one global batch of ${batchSize}×${worldSize} = ${batchSize * worldSize}`,
      );
    }
  }

  /** This rank's indices for a whole epoch, in order (batchesPerEpoch·batchSize of them). */
  epochIndices(epoch: number): Int32Array {
    if (this.cache?.epoch === epoch) return this.cache.indices;
    const order = this.shuffle ? permutation(this.size, this.seed + epoch) : identity(this.size);
    const perRank = this.batchesPerEpoch * this.batchSize;
    const out = new Int32Array(perRank);
    for (let i = 0; i < perRank; i++) out[i] = order[this.rank + i * this.worldSize] as number;
    this.cache = { epoch, indices: out };
    return out;
  }

  position(iteration: number): SamplerPosition {
    if (!Number.isInteger(iteration) || iteration < 0) {
      throw new RangeError(`DistributedSampler: iteration must be a non-negative integer, got ${iteration}`);
    }
    return { epoch: Math.floor(iteration / this.batchesPerEpoch), step: iteration % this.batchesPerEpoch };
  }

  /** This rank's sample indices for global iteration `iteration`. */
  batch(iteration: number): Int32Array {
    const { epoch, step } = this.position(iteration);
    return this.epochIndices(epoch).slice(step * this.batchSize, (step + 1) * this.batchSize);
  }

  /** Batches from `startIteration` on (forever, or `count` of them). */
  *batches(startIteration = 0, count = Infinity): Generator<{ iteration: number; indices: Int32Array }> {
    for (let it = startIteration; it < startIteration + count; it++) yield { iteration: it, indices: this.batch(it) };
  }
}

function identity(n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return p;
}
