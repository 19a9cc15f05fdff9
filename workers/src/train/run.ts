// The training run of one worker, wired in order: environment → backend → process group →
// metrics → data → trainer → where to start → loader → the loop (loop.ts) → cleanup.
import { initBackend } from '@mtlface/backend';
import { initProcessGroup, optionsFromEnv, type ProcessGroup } from '@mtlface/collective';
import { loadDataset, type BatchLoader } from '@mtlface/data';
import { createWorkerMetrics, instrumentAllReduce, type WorkerMetrics } from '@mtlface/metrics';
import { Trainer, configHash, type IterationReport, type TrainConfig } from '@mtlface/train';
import type { ValidationReport } from '@mtlface/eval/model';
import { createTrainProgress } from './progress.js';
import { LossesLog, StepsLog } from './losses-log.js';
import { startRun } from './start.js';
import { createSaver } from './saver.js';
import { createValidator } from './validation.js';
import { faultIteration } from './fault.js';
import { trainLoop } from './loop.js';
import { createBatches } from './batches.js';
import { plotRunCurves } from './plots.js';

export { formatValidation, validationScores } from './validation.js';

export interface RunOptions {
  /** Continue from the newest complete checkpoint in checkpoint_dir (also implied by a launcher restart). */
  resume?: boolean;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** Called after every iteration, before its validation and checkpoint (tests); awaited. */
  onIteration?: (report: IterationReport, trainer: Trainer) => void | Promise<void>;
  /** Called with this worker's metrics once they exist (tests). */
  onMetrics?: (metrics: WorkerMetrics) => void;
  /** Use this group instead of one from the environment (tests); null = single process. */
  group?: ProcessGroup | null;
  /** Skip backend initialisation (the caller set one). */
  skipBackendInit?: boolean;
}

export interface RunResult {
  iterations: number;
  /** The validation reports of this run, in order (every rank holds the full reports). */
  validations: Array<{ iteration: number; report: ValidationReport }>;
  lastReport: IterationReport | null;
  checkpoint: string | null;
  rank: number;
}

export async function runTraining(cfg: TrainConfig, opts: RunOptions = {}): Promise<RunResult> {
  const env = opts.env ?? process.env;
  const prefix = env.RANK !== undefined ? `[rank ${env.RANK}] ` : '';
  const log = (l: string): void => (opts.log ?? console.log)(prefix + l);
  if (!opts.skipBackendInit) await initBackend({ backend: cfg.backend, log });

  const hash = configHash({ ...cfg, resume: false, stop_at: null });
  const ownGroup = opts.group === undefined && env.RANK !== undefined && env.WORLD_SIZE !== undefined;
  const group = ownGroup
    ? await initProcessGroup({ ...optionsFromEnv(env), configHash: hash })
    : (opts.group ?? null);
  const rank = group?.rank ?? 0;
  const worldSize = group?.worldSize ?? 1;
  const underLauncher = typeof process.send === 'function';

  let metrics: WorkerMetrics | null = null;
  let stopIpc: (() => void) | null = null;
  let loader: BatchLoader | null = null;
  let trainer: Trainer | null = null;
  try {
    metrics = createWorkerMetrics({ rank, defaultMetrics: underLauncher });
    if (underLauncher) stopIpc = metrics.serveOverIpc();
    opts.onMetrics?.(metrics);

    const dataset = await loadDataset(cfg.data.train_list, {
      root: cfg.data.root,
      ageGroups: cfg.model.groups,
    });
    // Gradient all-reduces are measured (bytes, seconds) into mtl_allreduce_* by wrapping the group.
    const gradGroup = group ? instrumentAllReduce(group, metrics) : null;
    trainer = new Trainer(cfg, { numClasses: dataset.numClasses, group: gradGroup });
    const restart = Number(env.MTL_RESTART_COUNT ?? 0) > 0;
    const start = await startRun(trainer, cfg, { group, restart, resume: opts.resume ?? false, log });
    const end = Math.min(cfg.iterations, cfg.stop_at ?? cfg.iterations);

    const batches = createBatches(cfg, dataset, { rank, worldSize, start: start.iteration, log });
    loader = batches.loader;
    const progress =
      rank === 0
        ? createTrainProgress({
            start: start.iteration,
            end,
            logInterval: cfg.log_interval,
            tty: env.MTL_PROGRESS === 'tty' ? 'launcher' : Boolean(process.stderr.isTTY),
            log,
          })
        : null;
    const stepsLog = StepsLog.open(cfg, rank, start.iteration);
    const validator = await createValidator(cfg, trainer.nets, {
      rank,
      group,
      metrics,
      log,
      steps: stepsLog,
    });
    const saver = createSaver(cfg, trainer, {
      rank,
      worldSize,
      sampler: batches.sampler,
      configHash: hash,
      run: start.run,
      metrics,
    });
    const t = trainer;
    const last = await trainLoop({
      ...{ trainer, loader, metrics, progress, validator, saver, rank, log, end },
      start: start.iteration,
      lossesLog: LossesLog.open(cfg, rank, group, start.iteration),
      stepsLog,
      faultAt: faultIteration(env, rank),
      ...(opts.onIteration ? { onIteration: (r: IterationReport) => opts.onIteration!(r, t) } : {}),
    });
    progress?.stop();
    if (rank === 0 && saver.latest) log(`checkpoint: ${saver.latest}`);
    if (rank === 0) await plotRunCurves(cfg, log);
    const iterations = Math.max(0, end - start.iteration);
    return { iterations, lastReport: last, checkpoint: saver.latest, rank, validations: validator.reports };
  } finally {
    await loader?.close();
    trainer?.dispose();
    stopIpc?.();
    await metrics?.close().catch(() => undefined);
    if (ownGroup) await group?.close().catch(() => undefined);
  }
}
