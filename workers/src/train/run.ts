// The training run of one worker: environment → backend → process group → data → trainer → loop.
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { initProcessGroup, optionsFromEnv, type ProcessGroup } from '@mtlface/collective';
import { BatchLoader, DistributedSampler, FasTargetSampler, loadDataset } from '@mtlface/data';
import { createWorkerMetrics, instrumentAllReduce, type WorkerMetrics } from '@mtlface/metrics';
import {
  Trainer,
  broadcastBuffers,
  broadcastInitialState,
  configHash,
  findLatestCheckpoint,
  planResume,
  readCheckpointTensors,
  startFromRelease,
  sweepStaleTemps,
  verifyIdenticalState,
  writeCheckpoint,
  writeReleaseCheckpoint,
  type FoundCheckpoint,
  type IterationReport,
  type RunIdentity,
  type TrainConfig,
} from '@mtlface/train';
import { rawToTensor } from '@mtlface/model';
import {
  faceModelFromModules,
  loadPairsSet,
  validate,
  type PairsSet,
  type ValidationReport,
} from '@mtlface/eval/model';
import { createTrainProgress } from './progress.js';
import { LossesLog } from './losses-log.js';
import { plotRunCurves } from './plots.js';

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

/** One log line per set: `[val] synth-pairs it 200: acc 61.2% ± 6.1 (thr 0.310), TAR@1e-3 4.0%, AUC 0.655`. */
export function formatValidation(iteration: number, report: ValidationReport): string[] {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  return report.sets.map((s) => {
    const tars = s.tarAtFar.map((t) => `, TAR@${t.far.toExponential(0)} ${pct(t.tar)}`);
    const auc = Number.isFinite(s.auc) ? `, AUC ${s.auc.toFixed(3)}` : '';
    return (
      `[val] ${s.name} it ${iteration}: acc ${pct(s.accuracy)} ± ${(100 * s.accuracyStd).toFixed(1)} ` +
      `(thr ${s.threshold.toFixed(3)})${tars.join('')}${auc} [${s.pairs} pairs, ${report.seconds.toFixed(1)} s]`
    );
  });
}

/** The labels of `mtl_validation_score{set,metric}` for one report (finite values only). */
export function validationScores(
  report: ValidationReport,
): Array<[set: string, metric: string, value: number]> {
  const out: Array<[string, string, number]> = [];
  for (const s of report.sets) {
    out.push([s.name, 'accuracy', s.accuracy], [s.name, 'accuracy_std', s.accuracyStd]);
    out.push([s.name, 'threshold', s.threshold], [s.name, 'auc', s.auc]);
    for (const t of s.tarAtFar) out.push([s.name, `tar@far=${t.far}`, t.tar]);
    for (const b of s.byAgeGap ?? [])
      if (b.pairs > 0) out.push([s.name, `accuracy_gap_${b.label}`, b.accuracy]);
  }
  return out.filter(([, , v]) => Number.isFinite(v));
}

function faultAt(env: NodeJS.ProcessEnv, rank: number): number | null {
  // Test hook: MTL_FAULT_EXIT_AT="<iteration>:<rank>" kills that rank at that iteration, first attempt only.
  const spec = env.MTL_FAULT_EXIT_AT;
  if (!spec || Number(env.MTL_RESTART_COUNT ?? 0) > 0) return null;
  const [it, r] = spec.split(':').map(Number);
  return r === rank && Number.isInteger(it) ? (it as number) : null;
}

/** Loads backbone + estimator from an AIFR checkpoint (FAS recipe) into rank 0's fresh networks. */
function loadInitCheckpoint(trainer: Trainer, path: string, log: (l: string) => void): void {
  const found = findLatestCheckpoint(path, log);
  if (!found) throw new Error(`init_checkpoint ${path}: no complete checkpoint found`);
  const raw = readCheckpointTensors(found);
  const wanted = new Map<string, tf.Tensor>();
  for (const [k, r] of raw)
    if (k.startsWith('backbone.') || k.startsWith('estimation.')) wanted.set(k, rawToTensor(r, k));
  trainer.nets.loadStateDict(wanted, ['backbone', 'estimation']);
  wanted.forEach((t) => t.dispose());
  log(`initialised backbone and estimation from ${found.tensorsPath} (iteration ${found.sidecar.iteration})`);
}

export async function runTraining(cfg: TrainConfig, opts: RunOptions = {}): Promise<RunResult> {
  const env = opts.env ?? process.env;
  const rankEnv = env.RANK;
  const log0 = opts.log ?? ((l: string) => console.log(l));
  const prefix = rankEnv !== undefined ? `[rank ${rankEnv}] ` : '';
  const log = (l: string): void => log0(prefix + l);
  if (!opts.skipBackendInit) await initBackend({ backend: cfg.backend, log });

  const hash = configHash({ ...cfg, resume: false, stop_at: null });
  let group: ProcessGroup | null = null;
  let ownGroup = false;
  if (opts.group !== undefined) group = opts.group;
  else if (rankEnv !== undefined && env.WORLD_SIZE !== undefined) {
    group = await initProcessGroup({ ...optionsFromEnv(env), configHash: hash });
    ownGroup = true;
  }
  const rank = group?.rank ?? 0;
  const worldSize = group?.worldSize ?? 1;
  const restartCount = Number(env.MTL_RESTART_COUNT ?? 0);

  let metrics: WorkerMetrics | null = null;
  let stopIpc: (() => void) | null = null;
  let loader: BatchLoader | null = null;
  let trainer: Trainer | null = null;
  try {
    metrics = createWorkerMetrics({ rank, defaultMetrics: typeof process.send === 'function' });
    if (typeof process.send === 'function') stopIpc = metrics.serveOverIpc();
    opts.onMetrics?.(metrics);

    const dataset = await loadDataset(cfg.data.train_list, {
      root: cfg.data.root,
      ageGroups: cfg.model.groups,
    });
    // Gradient all-reduces are measured (bytes, seconds) into mtl_allreduce_* by wrapping the group.
    const gradGroup = group && metrics ? instrumentAllReduce(group, metrics) : group;
    trainer = new Trainer(cfg, { numClasses: dataset.numClasses, group: gradGroup });

    // Rank 0 decides where the run starts: fresh, or the newest usable checkpoint of this run.
    let found: FoundCheckpoint | null = null;
    let runIdentity: RunIdentity | null = null;
    if (rank === 0) {
      for (const f of sweepStaleTemps(cfg.checkpoint_dir)) log(`removed ${f}, left by a writer that is gone`);
      const plan = planResume({
        dir: cfg.checkpoint_dir,
        resume: opts.resume ? true : cfg.resume,
        restart: restartCount > 0,
        config: cfg,
        worldSize,
      });
      plan.notes.forEach((l) => log(l));
      found = plan.found;
      runIdentity = plan.run;
      if (found) log(`resuming from ${found.tensorsPath} (iteration ${found.sidecar.iteration})`);
    }
    if (rank === 0 && !found && cfg.init_checkpoint) loadInitCheckpoint(trainer, cfg.init_checkpoint, log);
    const released = rank === 0 && !found ? startFromRelease(trainer, log) : null;
    const state = await broadcastInitialState(group, found ?? released, () => trainer!.checkpointTensors());
    released?.tensors.forEach((t) => t.dispose());
    trainer.loadState(state.tensors, state.meta);
    state.tensors.forEach((t) => t.dispose());
    const checksum = await verifyIdenticalState(group, trainer.checkpointTensors());
    if (rank === 0) log(`initial state identical on ${worldSize} rank(s) (sha256 ${checksum.slice(0, 12)})`);

    const start = state.meta?.iteration ?? 0;
    const end = Math.min(cfg.iterations, cfg.stop_at ?? cfg.iterations);
    const sampler = new DistributedSampler({
      size: dataset.files.length,
      batchSize: cfg.data.batch_size,
      worldSize,
      rank,
      seed: cfg.seed,
    });
    const fas =
      cfg.mode === 'aifr'
        ? undefined
        : new FasTargetSampler(dataset.groups, cfg.model.groups, cfg.seed, { skipEmptyGroups: true });
    loader = new BatchLoader({
      dataset,
      sampler,
      size: cfg.model.input_size,
      flip: cfg.data.flip,
      seed: cfg.seed,
      startIteration: start,
      prefetch: cfg.data.prefetch,
      threads: cfg.data.loader_threads,
      ...(fas ? { fas } : {}),
      log,
    });

    const progress =
      rank === 0
        ? createTrainProgress({
            start,
            end,
            logInterval: cfg.log_interval,
            tty: env.MTL_PROGRESS === 'tty' ? 'launcher' : Boolean(process.stderr.isTTY),
            log,
          })
        : null;
    // Validation sets: every rank loads them and embeds its share (all-gathered), rank 0 logs and exports.
    const valSets: PairsSet[] = [];
    if (cfg.val_interval > 0) {
      for (const file of cfg.val_pairs) {
        try {
          valSets.push(await loadPairsSet(file, { size: cfg.model.input_size }));
        } catch (err) {
          throw new Error(`val_pairs: cannot load ${file}: ${(err as Error).message}`);
        }
      }
    }
    const validations: RunResult['validations'] = [];
    const runValidation = async (iteration: number): Promise<void> => {
      const nets = trainer!.nets;
      const before = tf.memory().numTensors;
      await broadcastBuffers(group, [nets.backbone, nets.estimation]);
      const report = await validate(
        faceModelFromModules({ backbone: nets.backbone, estimation: nets.estimation }),
        valSets,
        {
          mirror: true,
          batchSize: cfg.val_batch_size,
          ...(group && worldSize > 1
            ? { shard: { rank, worldSize, allGather: (b: Uint8Array) => group.allGather(b) } }
            : {}),
        },
      );
      const after = tf.memory().numTensors;
      if (after !== before) log(`warning: tensor count went from ${before} to ${after} in validation (leak)`);
      validations.push({ iteration, report });
      if (rank !== 0) return;
      for (const line of formatValidation(iteration, report)) log(line);
      if (metrics)
        for (const [set, metric, value] of validationScores(report)) metrics.validation(set, metric, value);
    };

    const lossesLog = LossesLog.open(cfg, rank, group, start);
    const fault = faultAt(env, rank);
    let last: IterationReport | null = null;
    let lastCheckpoint: string | null = null;
    let images = 0;
    const tStart = performance.now();
    const save = async (iteration: number): Promise<void> => {
      if (rank !== 0) return;
      const c = performance.now();
      const r = await writeCheckpoint(
        cfg.checkpoint_dir,
        trainer!.checkpointTensors(),
        {
          iteration,
          mode: cfg.mode,
          ...trainer!.checkpointMeta(),
          sampler: { iteration, epoch: sampler.position(iteration).epoch },
          rng: { seed: cfg.seed },
          worldSize,
          config: cfg,
          configHash: hash,
          ...(last ? { losses: last.losses } : {}),
          ...(runIdentity ? { run: runIdentity } : {}),
        },
        cfg.keep_checkpoints,
      );
      if (cfg.release.save_models) await writeReleaseCheckpoint(cfg.release.save_models, trainer!, iteration);
      metrics?.checkpoint((performance.now() - c) / 1000);
      lastCheckpoint = r.tensorsPath;
    };

    for (let it = start; it < end; it++) {
      if (fault === it) {
        log(`MTL_FAULT_EXIT_AT: killing rank ${rank} at iteration ${it} (test hook)`);
        process.kill(process.pid, 'SIGKILL');
      }
      const tIter = performance.now();
      const batch = await loader.next();
      const waitMs = performance.now() - tIter;
      // Optimizer slots appear on an optimizer's first real step; anything else that stays is a leak.
      const slots = (): number => trainer!.optimizers().reduce((n, o) => n + o.slots().size, 0);
      const before = tf.memory().numTensors - slots();
      const report = await trainer.step(batch, it);
      const after = tf.memory().numTensors - slots();
      if (after !== before)
        log(`warning: tensor count went from ${before} to ${after} in iteration ${it + 1} (leak)`);
      last = report;
      await lossesLog.append(report);
      images += batch.n;
      const stepSec = (performance.now() - tIter) / 1000;
      metrics?.recordIteration({
        iteration: it + 1,
        images: batch.n,
        stepSeconds: stepSec,
        dataWaitSeconds: waitMs / 1000,
        losses: report.losses,
        // The generator's rate is the FAS task's; the discriminator's has its own task label.
        lr: { fr: report.lr.fr, fas: report.lr.fas, fas_d: report.lr.fas_d },
        scale: report.scale,
        skipped: report.skipped,
        timings: report.timings,
      });
      if (report.skipped.length > 0 && rank === 0) {
        log(
          `iteration ${it + 1}: overflow in ${report.skipped.join(', ')}: step skipped, loss scale now ${JSON.stringify(report.scale)}`,
        );
      }
      await opts.onIteration?.(report, trainer);
      progress?.update(it + 1, {
        losses: report.losses,
        imagesPerSec: images / ((performance.now() - tStart) / 1000),
      });
      if (valSets.length > 0 && ((it + 1) % cfg.val_interval === 0 || it + 1 === end))
        await runValidation(it + 1);
      if ((it + 1) % cfg.checkpoint_interval === 0 || it + 1 === end) await save(it + 1);
    }
    progress?.stop();
    if (rank === 0 && lastCheckpoint) log(`checkpoint: ${lastCheckpoint}`);
    if (rank === 0) await plotRunCurves(cfg, log);
    return { iterations: end - start, lastReport: last, checkpoint: lastCheckpoint, rank, validations };
  } finally {
    await loader?.close();
    trainer?.dispose();
    stopIpc?.();
    await metrics?.close().catch(() => undefined);
    if (ownGroup) await group?.close().catch(() => undefined);
  }
}
