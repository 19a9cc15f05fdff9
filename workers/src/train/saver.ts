// Rank 0's checkpoints: our own (safetensors + sidecar, pruned within the run's lineage) and, with
// release.save_models, the release's torch.save files beside them.
import type { DistributedSampler } from '@mtlface/data';
import type { WorkerMetrics } from '@mtlface/metrics';
import {
  writeCheckpoint,
  writeReleaseCheckpoint,
  type IterationReport,
  type RunIdentity,
  type TrainConfig,
  type Trainer,
} from '@mtlface/train';

export interface Saver {
  /** Whether iteration `done` (1-based) of a run ending at `end` saves. */
  due(done: number, end: number): boolean;
  /** Writes the checkpoint after iteration `done` (rank 0 only; other ranks return at once). */
  save(done: number, last: IterationReport | null): Promise<void>;
  /** The tensor file of the newest checkpoint this run wrote. */
  readonly latest: string | null;
}

export function createSaver(
  cfg: TrainConfig,
  trainer: Trainer,
  ctx: {
    rank: number;
    worldSize: number;
    sampler: DistributedSampler;
    configHash: string;
    run: RunIdentity | null;
    metrics: WorkerMetrics | null;
  },
): Saver {
  let latest: string | null = null;
  return {
    get latest() {
      return latest;
    },
    due: (done, end) => done % cfg.checkpoint_interval === 0 || done === end,
    async save(done, last) {
      if (ctx.rank !== 0) return;
      const t0 = performance.now();
      const r = await writeCheckpoint(
        cfg.checkpoint_dir,
        trainer.checkpointTensors(),
        {
          iteration: done,
          mode: cfg.mode,
          ...trainer.checkpointMeta(),
          sampler: { iteration: done, epoch: ctx.sampler.position(done).epoch },
          rng: { seed: cfg.seed },
          worldSize: ctx.worldSize,
          config: cfg,
          configHash: ctx.configHash,
          ...(last ? { losses: last.losses } : {}),
          ...(ctx.run ? { run: ctx.run } : {}),
        },
        cfg.keep_checkpoints,
      );
      if (cfg.release.save_models) await writeReleaseCheckpoint(cfg.release.save_models, trainer, done);
      ctx.metrics?.checkpoint((performance.now() - t0) / 1000);
      latest = r.tensorsPath;
    },
  };
}
