// Where a run starts, decided by rank 0 and made identical on every rank: the newest usable
// checkpoint of this run (resume, launcher restart), else the release's files (restore_iter), else
// fresh weights (with the AIFR init_checkpoint of the FAS recipe). Rank 0's state is broadcast and
// every rank's checksum compared.
import type * as tf from '@tensorflow/tfjs-core';
import { rawToTensor } from '@mtlface/model';
import type { ProcessGroup } from '@mtlface/collective';
import {
  broadcastInitialState,
  findLatestCheckpoint,
  planResume,
  readCheckpointTensors,
  startFromRelease,
  sweepStaleTemps,
  verifyIdenticalState,
  type RunIdentity,
  type TrainConfig,
  type Trainer,
} from '@mtlface/train';

export interface StartContext {
  group: ProcessGroup | null;
  /** A launcher restart (MTL_RESTART_COUNT > 0): continue the run if it saved anything. */
  restart: boolean;
  /** `--resume` on the worker's command line. */
  resume: boolean;
  log: (line: string) => void;
}

export interface Start {
  /** Iterations already done: the loop starts at this 0-based global iteration. */
  iteration: number;
  /** Rank 0's run identity for the checkpoints it writes (null on other ranks). */
  run: RunIdentity | null;
}

/** Loads backbone + estimator from an AIFR checkpoint (FAS recipe) into rank 0's fresh networks. */
function loadInitCheckpoint(trainer: Trainer, path: string, log: (l: string) => void): void {
  const found = findLatestCheckpoint(path, log);
  if (!found) throw new Error(`init_checkpoint ${path}: no complete checkpoint found`);
  const wanted = new Map<string, tf.Tensor>();
  for (const [k, r] of readCheckpointTensors(found))
    if (k.startsWith('backbone.') || k.startsWith('estimation.')) wanted.set(k, rawToTensor(r, k));
  trainer.nets.loadStateDict(wanted, ['backbone', 'estimation']);
  wanted.forEach((t) => t.dispose());
  log(`initialised backbone and estimation from ${found.tensorsPath} (iteration ${found.sidecar.iteration})`);
}

export async function startRun(trainer: Trainer, cfg: TrainConfig, ctx: StartContext): Promise<Start> {
  const { group, log } = ctx;
  const rank = group?.rank ?? 0;
  let plan: ReturnType<typeof planResume> | null = null;
  if (rank === 0) {
    for (const f of sweepStaleTemps(cfg.checkpoint_dir)) log(`removed ${f}, left by a writer that is gone`);
    plan = planResume({
      dir: cfg.checkpoint_dir,
      resume: ctx.resume ? true : cfg.resume,
      restart: ctx.restart,
      config: cfg,
      worldSize: group?.worldSize ?? 1,
    });
    plan.notes.forEach((l) => log(l));
    if (plan.found)
      log(`resuming from ${plan.found.tensorsPath} (iteration ${plan.found.sidecar.iteration})`);
    else if (cfg.init_checkpoint) loadInitCheckpoint(trainer, cfg.init_checkpoint, log);
  }
  const found = plan?.found ?? null;
  const released = rank === 0 && !found ? startFromRelease(trainer, log) : null;
  const state = await broadcastInitialState(group, found ?? released, () => trainer.checkpointTensors());
  released?.tensors.forEach((t) => t.dispose());
  trainer.loadState(state.tensors, state.meta);
  state.tensors.forEach((t) => t.dispose());
  const checksum = await verifyIdenticalState(group, trainer.checkpointTensors());
  if (rank === 0)
    log(`initial state identical on ${group?.worldSize ?? 1} rank(s) (sha256 ${checksum.slice(0, 12)})`);
  return { iteration: state.meta?.iteration ?? 0, run: plan?.run ?? null };
}
