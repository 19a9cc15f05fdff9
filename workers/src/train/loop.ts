// The training loop, one iteration top to bottom: the batch (prefetched by the loader's threads) →
// trainer.step (the FR step, then the FAS D and G steps, each followed by its bucketed gradient
// all-reduce, the overflow check and the optimizer step: @mtlface/train trainer.ts) → the losses
// log → metrics → progress → validation → checkpoint. The parts are passed in, so the order and
// the intervals are testable without networks (workers/test/loop.test.ts).
import * as tf from '@tensorflow/tfjs-core';
import type { Batch, FasBatch } from '@mtlface/data';
import type { IterationSummary } from '@mtlface/metrics';
import type { IterationReport, Optimizer } from '@mtlface/train';
import { dieAt } from './fault.js';

export interface LoopParts {
  trainer: {
    step(batch: Batch | FasBatch, iteration: number): Promise<IterationReport>;
    optimizers(): Optimizer[];
  };
  loader: { next(): Promise<Batch | FasBatch> };
  lossesLog: { append(report: IterationReport): Promise<void> };
  /** Measured values per iteration (steps.jsonl beside the losses). */
  stepsLog: { append(iter: number, values: Record<string, number>): void } | null;
  metrics: { recordIteration(summary: IterationSummary): void } | null;
  progress: {
    update(done: number, info: { losses: Record<string, number>; imagesPerSec: number }): void;
  } | null;
  validator: { due(done: number, end: number): boolean; run(done: number): Promise<unknown> };
  saver: {
    due(done: number, end: number): boolean;
    save(done: number, last: IterationReport | null): Promise<void>;
  };
  /** 0-based global iterations [start, end). */
  start: number;
  end: number;
  rank: number;
  log: (line: string) => void;
  /** The test seam of fault.ts: the iteration at which this rank kills itself, or null. */
  faultAt: number | null;
  onIteration?: (report: IterationReport) => void | Promise<void>;
}

/** Runs iterations start..end−1; returns the last iteration's report (null when there was none). */
export async function trainLoop(p: LoopParts): Promise<IterationReport | null> {
  let last: IterationReport | null = null;
  let images = 0;
  const t0 = performance.now();
  // Optimizer slots appear on an optimizer's first real step; any other tensor that stays is a leak.
  const liveTensors = (): number =>
    tf.memory().numTensors - p.trainer.optimizers().reduce((n, o) => n + o.slots().size, 0);
  for (let it = p.start; it < p.end; it++) {
    if (p.faultAt === it) dieAt(it, p.rank, p.log);
    const done = it + 1;
    const tIter = performance.now();
    const batch = await p.loader.next();
    const waitMs = performance.now() - tIter;
    const before = liveTensors();
    const report = await p.trainer.step(batch, it);
    const after = liveTensors();
    if (after !== before)
      p.log(`warning: tensor count went from ${before} to ${after} in iteration ${done} (leak)`);
    last = report;
    images += batch.n;
    await p.lossesLog.append(report);
    const stepSeconds = (performance.now() - tIter) / 1000;
    p.stepsLog?.append(done, { img_per_s: batch.n / stepSeconds });
    p.metrics?.recordIteration({
      iteration: done,
      images: batch.n,
      stepSeconds,
      dataWaitSeconds: waitMs / 1000,
      losses: report.losses,
      // The generator's rate is the FAS task's; the discriminator's has its own task label.
      lr: { fr: report.lr.fr, fas: report.lr.fas, fas_d: report.lr.fas_d },
      scale: report.scale,
      skipped: report.skipped,
      timings: report.timings,
    });
    if (report.skipped.length > 0 && p.rank === 0) {
      const scale = JSON.stringify(report.scale);
      p.log(
        `iteration ${done}: overflow in ${report.skipped.join(', ')}: step skipped, loss scale now ${scale}`,
      );
    }
    await p.onIteration?.(report);
    p.progress?.update(done, {
      losses: report.losses,
      imagesPerSec: images / ((performance.now() - t0) / 1000),
    });
    if (p.validator.due(done, p.end)) await p.validator.run(done);
    if (p.saver.due(done, p.end)) await p.saver.save(done, last);
  }
  return last;
}
