// The 10-fold verification protocol of LFW/AgeDB/CALFW (spec §6): for each fold the decision threshold is
// the one that maximises accuracy on the other nine folds; the fold's accuracy is measured with it.
// A pair is declared "same" when its similarity is strictly above the threshold.

export interface RocPoint {
  readonly threshold: number;
  /** true accept rate: same pairs above the threshold / same pairs */
  readonly tpr: number;
  /** false accept rate: different pairs above the threshold / different pairs */
  readonly fpr: number;
}

export interface TarAtFar {
  /** the FAR asked for */
  readonly far: number;
  /** the highest TAR whose FAR does not exceed `far` */
  readonly tar: number;
  readonly threshold: number;
  /** the FAR actually reached at that threshold (≤ far) */
  readonly achievedFar: number;
  /** false when there are fewer than 1/far different pairs, so the FAR cannot be resolved */
  readonly resolvable: boolean;
}

export interface VerificationResult {
  readonly pairs: number;
  readonly positives: number;
  readonly negatives: number;
  readonly folds: number;
  /** test accuracy of each fold, with the threshold chosen on the others */
  readonly foldAccuracies: number[];
  readonly foldThresholds: number[];
  readonly accuracyMean: number;
  /** population standard deviation over folds (numpy's np.std, as insightface reports it) */
  readonly accuracyStd: number;
  /** the threshold that maximises accuracy over all pairs, and that accuracy */
  readonly bestThreshold: number;
  readonly bestAccuracy: number;
  readonly tarAtFar: TarAtFar[];
  /** from threshold above every similarity (0, 0) down to below every similarity (1, 1) */
  readonly roc: RocPoint[];
  readonly auc: number;
  /** the decision taken for each pair with its own fold's threshold (1 = same) */
  readonly predictions: Uint8Array;
}

export interface VerificationOptions {
  /** number of contiguous folds (sklearn KFold without shuffling), 10 by default */
  folds?: number;
  /**
   * Thresholds to choose from. By default every gap between neighbouring distinct similarities of the
   * training folds (its midpoint), plus one below the lowest and one above the highest. A fixed grid
   * (e.g. insightface's) may be given instead; among equally good thresholds the lowest wins.
   */
  thresholds?: ArrayLike<number>;
  /** FARs at which to report the TAR, [1e-3] by default */
  fars?: number[];
}

/** [start, end) of each of `k` contiguous folds over `n` items; the first n mod k folds get one extra. */
export function foldBounds(n: number, k: number): Array<[number, number]> {
  if (!Number.isInteger(k) || k < 2) throw new Error(`folds must be an integer ≥ 2, got ${k}`);
  if (n < k) throw new Error(`${n} pairs cannot be split into ${k} folds`);
  const base = Math.floor(n / k);
  const extra = n % k;
  const out: Array<[number, number]> = [];
  let start = 0;
  for (let f = 0; f < k; f++) {
    const size = base + (f < extra ? 1 : 0);
    out.push([start, start + size]);
    start += size;
  }
  return out;
}

/** Midpoints between neighbouring distinct values, plus one value below and one above them all. */
export function gapThresholds(values: ArrayLike<number>): Float64Array {
  const sorted = Float64Array.from(values).sort();
  const distinct: number[] = [];
  for (const v of sorted) if (distinct.length === 0 || v !== distinct[distinct.length - 1]) distinct.push(v);
  if (distinct.length === 0) return Float64Array.of(0);
  const out = new Float64Array(distinct.length + 1);
  out[0] = distinct[0]! - 1;
  for (let i = 1; i < distinct.length; i++) out[i] = (distinct[i - 1]! + distinct[i]!) / 2;
  out[distinct.length] = distinct[distinct.length - 1]! + 1;
  return out;
}

interface Scored {
  /** similarities sorted ascending */
  sims: Float64Array;
  same: Uint8Array;
  positives: number;
  negatives: number;
}

function scored(sims: ArrayLike<number>, same: ArrayLike<boolean | number>, idx: ArrayLike<number>): Scored {
  const order = Array.from(idx).sort((a, b) => sims[a]! - sims[b]!);
  const s = new Float64Array(order.length);
  const y = new Uint8Array(order.length);
  let positives = 0;
  order.forEach((i, r) => {
    s[r] = sims[i]!;
    y[r] = same[i] ? 1 : 0;
    positives += y[r]!;
  });
  return { sims: s, same: y, positives, negatives: order.length - positives };
}

/**
 * For each threshold (ascending), how many pairs are decided correctly and how many same/different
 * pairs lie strictly above it. One sweep over the sorted similarities.
 */
function sweep(
  d: Scored,
  thresholdsAsc: Float64Array,
): { correct: Int32Array; posAbove: Int32Array; negAbove: Int32Array } {
  const correct = new Int32Array(thresholdsAsc.length);
  const posAbove = new Int32Array(thresholdsAsc.length);
  const negAbove = new Int32Array(thresholdsAsc.length);
  let r = 0;
  let posBelow = 0;
  let negBelow = 0;
  for (let t = 0; t < thresholdsAsc.length; t++) {
    const th = thresholdsAsc[t]!;
    while (r < d.sims.length && d.sims[r]! <= th) {
      if (d.same[r]) posBelow++;
      else negBelow++;
      r++;
    }
    posAbove[t] = d.positives - posBelow;
    negAbove[t] = d.negatives - negBelow;
    correct[t] = posAbove[t]! + negBelow;
  }
  return { correct, posAbove, negAbove };
}

function bestOf(d: Scored, thresholdsAsc: Float64Array): { threshold: number; correct: number } {
  const { correct } = sweep(d, thresholdsAsc);
  let best = 0;
  for (let t = 1; t < correct.length; t++) if (correct[t]! > correct[best]!) best = t;
  return { threshold: thresholdsAsc[best]!, correct: correct[best]! };
}

function checkInputs(sims: ArrayLike<number>, same: ArrayLike<boolean | number>): void {
  if (sims.length !== same.length) {
    throw new Error(`verification: ${sims.length} similarities but ${same.length} same/different labels`);
  }
  for (let i = 0; i < sims.length; i++) {
    if (!Number.isFinite(sims[i]!)) throw new Error(`verification: similarity of pair ${i} is ${sims[i]}`);
  }
}

/** Runs the k-fold protocol on precomputed similarities (cosine of the two embeddings of each pair). */
export function verify(
  similarities: ArrayLike<number>,
  same: ArrayLike<boolean | number>,
  opts: VerificationOptions = {},
): VerificationResult {
  checkInputs(similarities, same);
  const k = opts.folds ?? 10;
  const n = similarities.length;
  const bounds = foldBounds(n, k);
  const grid = opts.thresholds ? Float64Array.from(opts.thresholds).sort() : undefined;
  if (grid && grid.length === 0) throw new Error('verification: the threshold grid is empty');

  const predictions = new Uint8Array(n);
  const foldAccuracies: number[] = [];
  const foldThresholds: number[] = [];
  for (const [start, end] of bounds) {
    const train: number[] = [];
    for (let i = 0; i < n; i++) if (i < start || i >= end) train.push(i);
    const d = scored(similarities, same, train);
    const { threshold } = bestOf(d, grid ?? gapThresholds(d.sims));
    let right = 0;
    for (let i = start; i < end; i++) {
      const p = similarities[i]! > threshold ? 1 : 0;
      predictions[i] = p;
      if (p === (same[i] ? 1 : 0)) right++;
    }
    foldAccuracies.push(right / (end - start));
    foldThresholds.push(threshold);
  }
  const accuracyMean = foldAccuracies.reduce((a, b) => a + b, 0) / k;
  const accuracyStd = Math.sqrt(foldAccuracies.reduce((a, b) => a + (b - accuracyMean) ** 2, 0) / k);

  const all = scored(
    similarities,
    same,
    Array.from({ length: n }, (_, i) => i),
  );
  const best = bestOf(all, grid ?? gapThresholds(all.sims));
  const { roc, auc } = rocCurve(all);
  const tarAtFar = (opts.fars ?? [1e-3]).map((far) => tarAt(roc, far, all.negatives));
  return {
    pairs: n,
    positives: all.positives,
    negatives: all.negatives,
    folds: k,
    foldAccuracies,
    foldThresholds,
    accuracyMean,
    accuracyStd,
    bestThreshold: best.threshold,
    bestAccuracy: best.correct / n,
    tarAtFar,
    roc,
    auc,
    predictions,
  };
}

function rocCurve(d: Scored): { roc: RocPoint[]; auc: number } {
  if (d.positives === 0 || d.negatives === 0) {
    throw new Error(`verification: need both same (${d.positives}) and different (${d.negatives}) pairs`);
  }
  const th = gapThresholds(d.sims);
  const { posAbove, negAbove } = sweep(d, th);
  const roc: RocPoint[] = [];
  for (let t = th.length - 1; t >= 0; t--) {
    roc.push({ threshold: th[t]!, tpr: posAbove[t]! / d.positives, fpr: negAbove[t]! / d.negatives });
  }
  let auc = 0;
  for (let i = 1; i < roc.length; i++) {
    auc += ((roc[i]!.fpr - roc[i - 1]!.fpr) * (roc[i]!.tpr + roc[i - 1]!.tpr)) / 2;
  }
  return { roc, auc };
}

/** The highest TAR whose FAR stays within `far`; of equal TARs, the one with the lowest FAR (highest threshold). */
function tarAt(roc: RocPoint[], far: number, negatives: number): TarAtFar {
  if (!(far > 0 && far <= 1)) throw new Error(`TAR@FAR: FAR must be in (0, 1], got ${far}`);
  let pick = roc[0]!;
  for (const p of roc) if (p.fpr <= far && p.tpr > pick.tpr) pick = p;
  return {
    far,
    tar: pick.tpr,
    threshold: pick.threshold,
    achievedFar: pick.fpr,
    resolvable: negatives * far >= 1,
  };
}
