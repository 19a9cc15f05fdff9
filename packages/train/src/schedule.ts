// The release's learning-rate schedule (spec §5), as a pure function of the 1-based iteration.

export interface LrSchedule {
  lr: number;
  warmup: number;
  milestones: readonly number[];
  gamma: number;
  minLr: number;
}

/**
 * lr at iteration `step` (1-based, as the release's `adjust_learning_rate`): linear warm-up
 * `step·lr/warmup` up to `warmup`, then `lr·gamma^(milestones passed)`, never below `minLr`.
 */
export function learningRate(step: number, s: LrSchedule): number {
  if (!Number.isInteger(step) || step < 1)
    throw new RangeError(`learningRate: step must be an integer ≥ 1, got ${step}`);
  let lr: number;
  if (step <= s.warmup) {
    lr = (step * s.lr) / s.warmup;
  } else {
    const passed = s.milestones.filter((m) => m < step).length;
    lr = s.lr * s.gamma ** passed;
  }
  return Math.max(s.minLr, lr);
}
