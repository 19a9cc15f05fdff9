// One training run's state and its iteration: FR step, FAS step (D then G) or both (joint), each
// with gradient sync through the process group, loss scaling and the optimizers.
import * as tf from '@tensorflow/tfjs-core';
import type { Batch, FasBatch } from '@mtlface/data';
import type { TrainConfig } from './config.js';
import { learningRate } from './schedule.js';
import { LossScaler } from './loss-scaler.js';
import { Adam, SGD, type NamedParam, type Optimizer } from './optim.js';
import { GradientBucketer, type GradientGroup, type ReadBack, type SyncTimings } from './grad-sync.js';
import { MtlFaceNetworks } from './networks.js';
import { hash32 } from '@mtlface/data/rng';
import type { CheckpointMeta, ResumeMeta } from './checkpoint.js';
import { broadcastBuffers, type BufferGroup } from './state-sync.js';
import {
  fasDiscriminatorGradients,
  fasGeneratorGradients,
  fasSource,
  frGradients,
  type Gradients,
} from './steps.js';

export type SyncName = 'fr' | 'fas_d' | 'fas_g';

export interface StepTimings {
  computeMs: number;
  copyOutMs: number;
  exposedCommMs: number;
  /** Waiting for the slowest rank before the syncs (only with `measurePeerWait`). */
  peerWaitMs: number;
  optimizerMs: number;
  bytes: number;
  /** Each gradient sync of the iteration on its own. */
  syncs: Partial<Record<SyncName, SyncTimings>>;
}

export interface IterationReport {
  iteration: number;
  losses: Record<string, number>;
  /** Learning rates used: FR, and the FAS generator (`fas`) and discriminator (`fas_d`). */
  lr: { fr?: number; fas?: number; fas_d?: number };
  skipped: string[];
  scale: Record<string, number>;
  timings: StepTimings;
  /** FAS: means of the discriminator's outputs, as the release logs them (d1 real, d3 detached fake, g fake after the D step). */
  logits: Record<string, number>;
}

/** The collectives a training step uses: gradient all-reduce and the buffers' broadcast. */
export type TrainerGroup = GradientGroup & BufferGroup;

export interface TrainerOptions {
  numClasses: number;
  group: TrainerGroup | null;
  /** Test hook: called with each task's local gradients before the sync (may replace entries). */
  beforeSync?: (task: 'fr' | 'fas_d' | 'fas_g', iteration: number, grads: (tf.Tensor | null)[]) => void;
  /** Run the networks in eval mode (batch norm on running statistics, no dropout): for equivalence tests. */
  frozenStatistics?: boolean;
  /** Profiling: report the wait for the slowest rank apart from communication (see SyncOptions). */
  measurePeerWait?: boolean;
  /** How gradients leave the backend (default 'auto': packed per bucket on a device backend). */
  readBack?: ReadBack;
}

interface SyncedTask {
  params: NamedParam[];
  optimizer: Optimizer;
  bucketer: GradientBucketer;
}

export class Trainer {
  readonly nets: MtlFaceNetworks;
  readonly scalers: Record<'fr' | 'fas', LossScaler>;
  readonly fr: SyncedTask | null;
  readonly fasD: SyncedTask | null;
  readonly fasG: SyncedTask | null;
  private readonly group: TrainerGroup | null;

  constructor(
    readonly cfg: TrainConfig,
    readonly opts: TrainerOptions,
  ) {
    this.group = opts.group;
    this.nets = new MtlFaceNetworks(cfg, { numClasses: opts.numClasses });
    const scalerOpts = {
      enabled: cfg.amp,
      init: cfg.loss_scale.init,
      growthFactor: cfg.loss_scale.growth_factor,
      backoffFactor: cfg.loss_scale.backoff_factor,
      growthInterval: cfg.loss_scale.growth_interval,
    };
    this.scalers = { fr: new LossScaler(scalerOpts), fas: new LossScaler(scalerOpts) };
    const bucket = {
      bucketBytes: cfg.bucket_mb * 2 ** 20,
      wire: cfg.amp ? cfg.wire : ('f32' as const),
      readBack: opts.readBack ?? 'auto',
    };
    const task = (params: NamedParam[], optimizer: Optimizer): SyncedTask => ({
      params,
      optimizer,
      bucketer: new GradientBucketer(
        params.map((p) => p.variable.shape),
        bucket,
      ),
    });
    const doFr = cfg.mode !== 'fas';
    const doFas = cfg.mode !== 'aifr';
    if (doFr) {
      const p = this.nets.params(
        ['backbone', 'head', 'estimation', 'da_discriminator'],
        cfg.fr_optim.weight_decay,
      );
      this.fr = task(p, new SGD(p, cfg.fr_optim.momentum, 'fr'));
    } else this.fr = null;
    if (doFas) {
      const { betas, eps } = cfg.fas_optim;
      const g = this.nets.params(['generator'], 0);
      const d = this.nets.params(['discriminator'], 0);
      this.fasG = task(g, new Adam(g, betas[0], betas[1], eps, 'generator'));
      this.fasD = task(d, new Adam(d, betas[0], betas[1], eps, 'discriminator'));
    } else {
      this.fasG = null;
      this.fasD = null;
    }
  }

  optimizers(): Optimizer[] {
    return [this.fr, this.fasD, this.fasG].flatMap((t) => (t ? [t.optimizer] : []));
  }

  frLr(iteration: number): number {
    const o = this.cfg.fr_optim;
    if (this.cfg.release.constant_lr) return o.lr;
    return learningRate(iteration + 1, {
      lr: o.lr,
      warmup: o.warmup,
      milestones: o.milestones,
      gamma: o.gamma,
      minLr: o.min_lr,
    });
  }

  /** Sets per-iteration, per-rank seeds of every random choice inside the networks (dropout). */
  private seedIteration(iteration: number): void {
    const rank = this.group?.rank ?? 0;
    this.nets.backbone.dropout.seed = hash32(this.cfg.seed, iteration, rank, 0xd20);
  }

  /** Sync, unscale, skip-or-step one task. Disposes `g`'s tensors. */
  private async syncAndStep(
    task: SyncedTask,
    name: SyncName,
    scaler: LossScaler,
    g: Gradients,
    iteration: number,
    lr: number,
    t: StepTimings,
  ): Promise<boolean> {
    try {
      this.opts.beforeSync?.(name, iteration, g.grads);
      const res = await task.bucketer.sync(g.grads, this.group, scaler.scale, {
        measurePeerWait: this.opts.measurePeerWait ?? false,
      });
      addSync(t, res.timings);
      t.syncs[name] = res.timings;
      if (!res.grads) return false;
      const o = performance.now();
      task.optimizer.step(res.grads, lr);
      res.grads.forEach((x) => x.dispose());
      t.optimizerMs += performance.now() - o;
      return true;
    } finally {
      g.grads.forEach((x) => x?.dispose());
    }
  }

  /** One training iteration (0-based global index) on a batch (a FasBatch for fas/joint). */
  async step(batch: Batch | FasBatch, iteration: number): Promise<IterationReport> {
    const t: StepTimings = {
      computeMs: 0,
      copyOutMs: 0,
      exposedCommMs: 0,
      peerWaitMs: 0,
      optimizerMs: 0,
      bytes: 0,
      syncs: {},
    };
    const losses: Record<string, tf.Scalar> = {};
    const logits: Record<string, tf.Scalar> = {};
    const report: IterationReport = {
      iteration,
      losses: {},
      lr: {},
      skipped: [],
      scale: {},
      timings: t,
      logits: {},
    };
    const train = !this.opts.frozenStatistics;
    this.seedIteration(iteration);
    try {
      if (this.fr) {
        this.nets.train(train);
        // As DDP's broadcast_buffers before each training forward of these modules.
        const n = this.nets;
        await broadcastBuffers(this.group, [n.backbone, n.head, n.estimation, n.daDiscriminator]);
        const lr = this.frLr(iteration);
        report.lr.fr = lr;
        const c = performance.now();
        const g = frGradients(this.nets, this.fr.params, batch, {
          id: this.cfg.loss.fr_id,
          age: this.cfg.loss.fr_age,
          da: this.cfg.loss.fr_da,
        });
        t.computeMs += performance.now() - c;
        for (const [k, v] of Object.entries(g.losses)) losses[`fr_${k}`] = v;
        const ok = await this.syncAndStep(this.fr, 'fr', this.scalers.fr, g, iteration, lr, t);
        if (!ok) report.skipped.push('fr');
        this.scalers.fr.update(!ok);
        report.scale.fr = this.scalers.fr.scale;
      }
      if (this.fasD && this.fasG) {
        const fb = batch as FasBatch;
        if (!fb.targetGroups || !fb.real)
          throw new Error('Trainer: the FAS step needs a FasBatch (targetGroups, real)');
        const o = this.cfg.fas_optim;
        const [lrD, lrG] = [o.d_lr ?? o.lr, o.g_lr ?? o.lr];
        report.lr.fas = lrG;
        report.lr.fas_d = lrD;
        // Frozen backbone (eval mode); no optimizer steps the age estimator, but as in the release
        // its BatchNorm runs on batch statistics (fas_estimator 'train') unless set to 'eval'.
        const n = this.nets;
        n.train(false);
        n.generator!.train(train);
        n.discriminator!.train(train);
        n.estimation.train(train && this.cfg.fas_estimator === 'train');
        // The release wraps these three in DDP (rank 0's buffers before each training forward) but
        // hands FAS the backbone unwrapped: its eval-mode statistics stay each rank's own.
        await broadcastBuffers(this.group, [n.generator!, n.discriminator!, n.estimation]);
        let c = performance.now();
        const src = fasSource(this.nets, fb);
        try {
          const gd = fasDiscriminatorGradients(this.nets, this.fasD.params, src);
          t.computeMs += performance.now() - c;
          const { total: dTotal, ...dLogits } = gd.losses;
          losses.fas_d = dTotal!;
          Object.assign(logits, dLogits);
          const okD = await this.syncAndStep(this.fasD, 'fas_d', this.scalers.fas, gd, iteration, lrD, t);
          c = performance.now();
          const gg = fasGeneratorGradients(this.nets, this.fasG.params, src, {
            gan: this.cfg.loss.fas_gan,
            id: this.cfg.loss.fas_id,
            age: this.cfg.loss.fas_age,
          });
          gg.generated.dispose();
          t.computeMs += performance.now() - c;
          const { g_logit: gLogit, ...gLosses } = gg.losses;
          logits.g_logit = gLogit!;
          for (const [k, v] of Object.entries(gLosses)) losses[k === 'total' ? 'fas_g' : `fas_${k}`] = v;
          const okG = await this.syncAndStep(this.fasG, 'fas_g', this.scalers.fas, gg, iteration, lrG, t);
          if (!okD) report.skipped.push('fas_d');
          if (!okG) report.skipped.push('fas_g');
          this.scalers.fas.update(!okD || !okG);
          report.scale.fas = this.scalers.fas.scale;
        } finally {
          src.dispose();
        }
      }
      // One download for every scalar of the iteration.
      const names = [...Object.keys(losses), ...Object.keys(logits)];
      if (names.length > 0) {
        const all = { ...losses, ...logits };
        const packed = tf.stack(names.map((k) => all[k]!));
        const values = await packed.data();
        packed.dispose();
        names.forEach((k, i) => ((k in logits ? report.logits : report.losses)[k] = values[i]!));
      }
    } finally {
      [...Object.values(losses), ...Object.values(logits)].forEach((v) => v.dispose());
      this.nets.train(true);
    }
    return report;
  }

  /** Model tensors and optimizer slots under their checkpoint names (live: do not dispose). */
  checkpointTensors(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>(this.nets.stateDict());
    for (const o of this.optimizers()) for (const [k, v] of o.slots()) out.set(k, v);
    return out;
  }

  /** Restores model tensors, optimizer slots and step counts, and the scalers (a resumed checkpoint). */
  loadState(tensors: ReadonlyMap<string, tf.Tensor>, sidecar: ResumeMeta | null): void {
    const model = new Map<string, tf.Tensor>();
    const slots = new Map<string, tf.Tensor>();
    for (const [k, t] of tensors) (k.startsWith('optim.') ? slots : model).set(k, t);
    this.nets.loadStateDict(model);
    for (const o of this.optimizers()) o.loadSlots(slots, sidecar?.optimizers[o.name]?.stepCount ?? 0);
    if (sidecar)
      for (const [k, s] of Object.entries(this.scalers)) if (sidecar.scalers[k]) s.load(sidecar.scalers[k]);
  }

  /** Optimizer step counts and scaler states for the sidecar. */
  checkpointMeta(): Pick<CheckpointMeta, 'optimizers' | 'scalers'> {
    return {
      optimizers: Object.fromEntries(this.optimizers().map((o) => [o.name, { stepCount: o.stepCount }])),
      scalers: Object.fromEntries(Object.entries(this.scalers).map(([k, s]) => [k, s.state()])),
    };
  }

  dispose(): void {
    for (const o of this.optimizers()) o.dispose();
    this.nets.dispose();
  }
}

function addSync(t: StepTimings, s: SyncTimings): void {
  t.copyOutMs += s.copyOutMs;
  t.exposedCommMs += s.exposedCommMs;
  t.peerWaitMs += s.peerWaitMs;
  t.optimizerMs += s.unscaleMs;
  t.bytes += s.bytes;
}
