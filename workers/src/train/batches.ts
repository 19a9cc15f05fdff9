// The batches of one rank: the distributed sampler (its share of each global batch, from the
// resumed iteration on), FAS targets and real images for fas/joint, decoded ahead in worker threads.
import { BatchLoader, DistributedSampler, FasTargetSampler, type Dataset } from '@mtlface/data';
import type { TrainConfig } from '@mtlface/train';

export function createBatches(
  cfg: TrainConfig,
  dataset: Dataset,
  ctx: { rank: number; worldSize: number; start: number; log: (line: string) => void },
): { sampler: DistributedSampler; loader: BatchLoader } {
  const { batch_size: batchSize, flip, prefetch, loader_threads: threads } = cfg.data;
  const { rank, worldSize, log } = ctx;
  const sampler = new DistributedSampler({
    size: dataset.files.length,
    batchSize,
    worldSize,
    rank,
    seed: cfg.seed,
  });
  const fas =
    cfg.mode === 'aifr'
      ? undefined
      : new FasTargetSampler(dataset.groups, cfg.model.groups, cfg.seed, { skipEmptyGroups: true });
  const loader = new BatchLoader({
    ...{ dataset, sampler, size: cfg.model.input_size, flip, seed: cfg.seed, prefetch, threads, log },
    startIteration: ctx.start,
    ...(fas ? { fas } : {}),
  });
  return { sampler, loader };
}
