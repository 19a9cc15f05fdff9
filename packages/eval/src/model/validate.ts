// The evaluation the training loop runs every `val_interval` iterations: each configured pairs set is
// embedded (by rank 0 alone, or sharded across ranks and all-gathered), scored by the 10-fold protocol,
// and returned as a summary plus flat metric samples for the trainer to log and export.
import type { AgeGapBucket } from '../cross-age.js';
import { embeddingSet, type EmbeddingSet } from '../similarity.js';
import { embedImages } from './embed.js';
import type { FaceModel } from './face-model.js';
import { sliceImages } from './images.js';
import { checkPairsSet, scorePairs, type PairsSet } from './pairs.js';

export interface ValidateOptions {
  /** mirror-sum embeddings (default true) */
  mirror?: boolean;
  batchSize?: number;
  folds?: number;
  /** FARs for the TAR columns, default [1e-3] */
  fars?: number[];
  /**
   * Shard the embedding across ranks: each rank embeds its contiguous share of every set's images and
   * the shares are exchanged with `allGather` (ProcessGroup.allGather). Every rank must call validate
   * with the same sets. Without it, the calling rank embeds everything.
   */
  shard?: { rank: number; worldSize: number; allGather(bytes: Uint8Array): Promise<Uint8Array[]> };
}

export interface SetSummary {
  readonly name: string;
  readonly pairs: number;
  readonly accuracy: number;
  readonly accuracyStd: number;
  readonly threshold: number;
  readonly auc: number;
  readonly tarAtFar: Array<{ far: number; tar: number }>;
  readonly byAgeGap?: AgeGapBucket[];
}

export interface ValidationReport {
  readonly sets: SetSummary[];
  readonly seconds: number;
}

/** [start, end) of rank r's share of n items. */
export function shardRange(n: number, rank: number, worldSize: number): [number, number] {
  return [Math.floor((n * rank) / worldSize), Math.floor((n * (rank + 1)) / worldSize)];
}

async function embedSharded(model: FaceModel, set: PairsSet, opts: ValidateOptions): Promise<EmbeddingSet> {
  const embedOpts = { mirror: opts.mirror ?? true, batchSize: opts.batchSize ?? 32 };
  const shard = opts.shard;
  if (!shard || shard.worldSize === 1) return embedImages(model, set.images, embedOpts);
  const [lo, hi] = shardRange(set.images.n, shard.rank, shard.worldSize);
  const mine = embedImages(model, sliceImages(set.images, lo, hi), embedOpts);
  // a rank with an empty share still has to announce the width: send it in a 4-byte header
  const bytes = new Uint8Array(4 + mine.data.byteLength);
  new DataView(bytes.buffer).setUint32(0, mine.n > 0 ? mine.dim : 0, true);
  bytes.set(new Uint8Array(mine.data.buffer, mine.data.byteOffset, mine.data.byteLength), 4);
  const parts = await shard.allGather(bytes);
  if (parts.length !== shard.worldSize) {
    throw new Error(`validate: all-gather returned ${parts.length} shares for a world of ${shard.worldSize}`);
  }
  const dims = parts.map((p) => new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(0, true));
  const dim = dims.find((d) => d > 0) ?? 0;
  const data = new Float32Array(set.images.n * dim);
  let offset = 0;
  parts.forEach((p, r) => {
    const [a, b] = shardRange(set.images.n, r, shard.worldSize);
    // copy out: a Node Buffer's slice() is a view of a larger (pooled) ArrayBuffer, not a copy
    const body = new Uint8Array(p.byteLength - 4);
    body.set(p.subarray(4));
    const values = new Float32Array(body.buffer);
    if (values.length !== (b - a) * dim) {
      throw new Error(
        `validate: rank ${r} sent ${values.length} values for ${b - a} images of ${dim}-d (set ${set.name})`,
      );
    }
    data.set(values, offset);
    offset += values.length;
  });
  return embeddingSet(data, dim);
}

export async function validate(
  model: FaceModel,
  sets: readonly PairsSet[],
  opts: ValidateOptions = {},
): Promise<ValidationReport> {
  const t0 = performance.now();
  const summaries: SetSummary[] = [];
  for (const set of sets) {
    checkPairsSet(set);
    const emb = await embedSharded(model, set, opts);
    const r = scorePairs(set, emb, { folds: opts.folds ?? 10, fars: opts.fars ?? [1e-3] });
    const v = r.verification;
    const summary: SetSummary = {
      name: set.name,
      pairs: v.pairs,
      accuracy: v.accuracyMean,
      accuracyStd: v.accuracyStd,
      threshold: v.bestThreshold,
      auc: v.auc,
      tarAtFar: v.tarAtFar.map((t) => ({ far: t.far, tar: t.tar })),
      ...(r.byAgeGap ? { byAgeGap: r.byAgeGap } : {}),
    };
    summaries.push(summary);
  }
  return { sets: summaries, seconds: (performance.now() - t0) / 1000 };
}
