// Face age synthesis quality (spec §6): do generated faces land in the asked age group, and are they still
// the same person? Both judged on plain arrays; the estimator and the embedder run elsewhere.
import { l2NormalizeRows, type EmbeddingSet } from './similarity.js';

export interface GroupAccuracy {
  /** share of generated faces classified into their target group */
  readonly accuracy: number;
  /** mean |predicted − target| in groups */
  readonly meanGroupError: number;
  readonly perGroup: Array<{ group: number; n: number; accuracy: number }>;
  /** confusion[target][predicted] counts */
  readonly confusion: number[][];
}

export function ageGroupAccuracy(
  targets: ArrayLike<number>,
  predicted: ArrayLike<number>,
  groups: number,
): GroupAccuracy {
  if (targets.length !== predicted.length) {
    throw new Error(`ageGroupAccuracy: ${targets.length} targets but ${predicted.length} predictions`);
  }
  if (targets.length === 0) throw new Error('ageGroupAccuracy: no generated faces');
  const confusion = Array.from({ length: groups }, () => new Array<number>(groups).fill(0));
  let right = 0;
  let err = 0;
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]!;
    const p = predicted[i]!;
    for (const [name, v] of [
      ['target', t],
      ['prediction', p],
    ] as const) {
      if (!Number.isInteger(v) || v < 0 || v >= groups) {
        throw new Error(`ageGroupAccuracy: ${name} ${i} is ${v}, not a group in [0, ${groups})`);
      }
    }
    confusion[t]![p]!++;
    if (t === p) right++;
    err += Math.abs(t - p);
  }
  const perGroup = confusion.map((r, group) => {
    const n = r.reduce((a, b) => a + b, 0);
    return { group, n, accuracy: n > 0 ? r[group]! / n : NaN };
  });
  return { accuracy: right / targets.length, meanGroupError: err / targets.length, perGroup, confusion };
}

export interface IdentityPreservation {
  readonly pairs: number;
  /** mean cosine similarity between each source face and its aged versions */
  readonly meanCosine: number;
  /** share of (source, aged) pairs whose similarity is above the verification threshold */
  readonly verificationRate: number;
  readonly threshold: number;
  readonly perGroup: Array<{ group: number; n: number; meanCosine: number; verificationRate: number }>;
}

/**
 * `aged` row i is a generated version of `sources` row `sourceOf[i]` at group `targets[i]`. The threshold is
 * the verifier's decision threshold (e.g. the best threshold of the 10-fold protocol on a real pairs set).
 */
export function identityPreservation(
  sources: EmbeddingSet,
  aged: EmbeddingSet,
  sourceOf: ArrayLike<number>,
  targets: ArrayLike<number>,
  threshold: number,
): IdentityPreservation {
  if (sources.dim !== aged.dim) {
    throw new Error(`identityPreservation: sources are ${sources.dim}-d, aged faces ${aged.dim}-d`);
  }
  if (sourceOf.length !== aged.n || targets.length !== aged.n) {
    throw new Error(
      `identityPreservation: ${aged.n} aged faces but ${sourceOf.length} source indices and ${targets.length} targets`,
    );
  }
  if (aged.n === 0) throw new Error('identityPreservation: no aged faces');
  const s = l2NormalizeRows(sources);
  const a = l2NormalizeRows(aged);
  const dim = s.dim;
  const byGroup = new Map<number, { n: number; sum: number; accepted: number }>();
  let sum = 0;
  let accepted = 0;
  for (let i = 0; i < a.n; i++) {
    const src = sourceOf[i]!;
    if (!Number.isInteger(src) || src < 0 || src >= s.n) {
      throw new Error(`identityPreservation: aged face ${i} names source ${src}, not in [0, ${s.n})`);
    }
    let dot = 0;
    for (let k = 0; k < dim; k++) dot += s.data[src * dim + k]! * a.data[i * dim + k]!;
    const ok = dot > threshold ? 1 : 0;
    sum += dot;
    accepted += ok;
    const g = byGroup.get(targets[i]!) ?? { n: 0, sum: 0, accepted: 0 };
    g.n++;
    g.sum += dot;
    g.accepted += ok;
    byGroup.set(targets[i]!, g);
  }
  const perGroup = [...byGroup.entries()]
    .sort((x, y) => x[0] - y[0])
    .map(([group, g]) => ({ group, n: g.n, meanCosine: g.sum / g.n, verificationRate: g.accepted / g.n }));
  return { pairs: a.n, meanCosine: sum / a.n, verificationRate: accepted / a.n, threshold, perGroup };
}

/** Euclidean distance between row i of `a` and row j of `b`. */
export function embeddingDistance(a: EmbeddingSet, i: number, b: EmbeddingSet, j: number): number {
  let s = 0;
  for (let k = 0; k < a.dim; k++) {
    const d = a.data[i * a.dim + k]! - b.data[j * b.dim + k]!;
    s += d * d;
  }
  return Math.sqrt(s);
}

export interface MatcherIdentity {
  readonly pairs: number;
  readonly meanDistance: number;
  /** share of (source, aged) pairs the matcher calls the same person (distance < maxDistance) */
  readonly sameRate: number;
  readonly maxDistance: number;
  readonly perGroup: Array<{ group: number; n: number; meanDistance: number; sameRate: number }>;
}

/** Identity kept under a distance matcher: aged row i is a version of source `sourceOf[i]` at `targets[i]`. */
export function matcherIdentity(
  sources: EmbeddingSet,
  aged: EmbeddingSet,
  sourceOf: ArrayLike<number>,
  targets: ArrayLike<number>,
  maxDistance: number,
): MatcherIdentity {
  const groups = new Map<number, { n: number; d: number; same: number }>();
  let d = 0;
  let same = 0;
  for (let i = 0; i < aged.n; i++) {
    const di = embeddingDistance(sources, sourceOf[i]!, aged, i);
    const g = groups.get(targets[i]!) ?? { n: 0, d: 0, same: 0 };
    g.n++;
    g.d += di;
    d += di;
    if (di < maxDistance) {
      g.same++;
      same++;
    }
    groups.set(targets[i]!, g);
  }
  return {
    pairs: aged.n,
    meanDistance: d / aged.n,
    sameRate: same / aged.n,
    maxDistance,
    perGroup: [...groups]
      .sort(([a], [b]) => a - b)
      .map(([group, g]) => ({ group, n: g.n, meanDistance: g.d / g.n, sameRate: g.same / g.n })),
  };
}
