// Verification accuracy by age gap: how recognition holds up as the two faces of a pair drift apart in age.

export interface AgeGapBucket {
  /** e.g. "0-10", "40+" (years, lower bound inclusive, upper exclusive) */
  readonly label: string;
  readonly minGap: number;
  readonly maxGap: number;
  readonly pairs: number;
  readonly positives: number;
  readonly negatives: number;
  /** share of pairs decided correctly (NaN for an empty bucket) */
  readonly accuracy: number;
  /** share of same pairs accepted (NaN when the bucket has none) */
  readonly tar: number;
}

/** Bucket edges of the issue: 0–10, 10–20, 20–40, 40+ years. */
export const AGE_GAP_EDGES: readonly number[] = [10, 20, 40];

/**
 * Splits per-pair decisions (as `verify(...).predictions` gives them, each taken with the threshold of
 * its own fold) into age-gap buckets. `ageGaps[i]` is |age(a) − age(b)| of pair i.
 */
export function accuracyByAgeGap(
  predictions: ArrayLike<number | boolean>,
  same: ArrayLike<number | boolean>,
  ageGaps: ArrayLike<number>,
  edges: readonly number[] = AGE_GAP_EDGES,
): AgeGapBucket[] {
  if (predictions.length !== same.length || ageGaps.length !== same.length) {
    throw new Error(
      `accuracyByAgeGap: ${predictions.length} decisions, ${same.length} labels and ${ageGaps.length} age gaps differ`,
    );
  }
  for (let e = 1; e < edges.length; e++) {
    if (!(edges[e]! > edges[e - 1]!))
      throw new Error(`accuracyByAgeGap: edges must increase, got ${edges.join(', ')}`);
  }
  const lo = [0, ...edges];
  const hi = [...edges, Infinity];
  const counts = lo.map(() => ({ pairs: 0, right: 0, positives: 0, accepted: 0 }));
  for (let i = 0; i < same.length; i++) {
    const gap = ageGaps[i]!;
    if (!(gap >= 0)) throw new Error(`accuracyByAgeGap: age gap of pair ${i} is ${gap}`);
    let b = 0;
    while (b < edges.length && gap >= edges[b]!) b++;
    const c = counts[b]!;
    const p = predictions[i] ? 1 : 0;
    const y = same[i] ? 1 : 0;
    c.pairs++;
    if (p === y) c.right++;
    if (y) {
      c.positives++;
      if (p) c.accepted++;
    }
  }
  return counts.map((c, b) => ({
    label: hi[b] === Infinity ? `${lo[b]}+` : `${lo[b]}-${hi[b]}`,
    minGap: lo[b]!,
    maxGap: hi[b]!,
    pairs: c.pairs,
    positives: c.positives,
    negatives: c.pairs - c.positives,
    accuracy: c.pairs > 0 ? c.right / c.pairs : NaN,
    tar: c.positives > 0 ? c.accepted / c.positives : NaN,
  }));
}
