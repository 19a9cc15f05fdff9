// Verification on a pairs set: embed every image once, score each pair by cosine, run the 10-fold protocol,
// and split the decisions by age gap when the ages are known.
import { accuracyByAgeGap, type AgeGapBucket } from '../cross-age.js';
import { pairSimilarities, type EmbeddingSet } from '../similarity.js';
import { verify, type VerificationOptions, type VerificationResult } from '../verification.js';
import { embedImages, type EmbedOptions } from './embed.js';
import type { FaceModel } from './face-model.js';
import type { FaceImages } from './images.js';

export interface PairsSet {
  readonly name: string;
  /** every image the pairs refer to, once */
  readonly images: FaceImages;
  /** indices into `images` */
  readonly pairs: ReadonlyArray<readonly [number, number]>;
  readonly same: ArrayLike<boolean | number>;
  /** age of each image, when known (enables the age-gap table) */
  readonly ages?: ArrayLike<number>;
}

export interface PairsReport {
  readonly name: string;
  readonly verification: VerificationResult;
  readonly byAgeGap?: AgeGapBucket[];
}

export function checkPairsSet(set: PairsSet): void {
  if (set.pairs.length !== set.same.length) {
    throw new Error(`${set.name}: ${set.pairs.length} pairs but ${set.same.length} same/different labels`);
  }
  if (set.ages && set.ages.length !== set.images.n) {
    throw new Error(`${set.name}: ${set.images.n} images but ${set.ages.length} ages`);
  }
  set.pairs.forEach(([a, b], p) => {
    for (const i of [a, b]) {
      if (!Number.isInteger(i) || i < 0 || i >= set.images.n) {
        throw new Error(`${set.name}: pair ${p} refers to image ${i}, not in [0, ${set.images.n})`);
      }
    }
  });
}

export function ageGaps(set: PairsSet): Float64Array | undefined {
  const ages = set.ages;
  if (!ages) return undefined;
  return Float64Array.from(set.pairs, ([a, b]) => Math.abs(ages[a]! - ages[b]!));
}

/** Scores precomputed embeddings of `set.images` (rows in the same order). */
export function scorePairs(
  set: PairsSet,
  embeddings: EmbeddingSet,
  opts: VerificationOptions = {},
): PairsReport {
  checkPairsSet(set);
  const verification = verify(pairSimilarities(embeddings, set.pairs), set.same, opts);
  const gaps = ageGaps(set);
  return {
    name: set.name,
    verification,
    ...(gaps ? { byAgeGap: accuracyByAgeGap(verification.predictions, set.same, gaps) } : {}),
  };
}

export function evaluatePairs(
  model: FaceModel,
  set: PairsSet,
  opts: EmbedOptions & VerificationOptions = {},
): PairsReport {
  checkPairsSet(set);
  return scorePairs(set, embedImages(model, set.images, opts), opts);
}
