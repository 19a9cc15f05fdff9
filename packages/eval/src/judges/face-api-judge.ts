// face-api's networks as judges of this project's models: its age network as one more age-group estimator
// for FAS, and its recognition network deciding whether an aged face is still its source person, at its own
// threshold (Euclidean distance < 0.6), calibrated on real pairs. They take the eval package's FaceImages
// (NHWC in [-1, 1]) at whatever side the model uses.
import * as tf from '@tensorflow/tfjs-core';
import { ageGroup, isAgeGroupCount } from '@mtlface/data';
import { embeddingDistance } from '../fas-quality.js';
import type { EmbeddingSet } from '../similarity.js';
import { verify, type VerificationResult } from '../verification.js';
import type { FaceImages } from '../model/images.js';
import type { DistanceMatcher, GroupClassifier } from '../model/fas.js';
import type { PairsSet } from '../model/pairs.js';
import { AgeGenderNet, toPixels } from './age-gender-net.js';
import { FACE_API_MATCH_DISTANCE, FaceRecognitionNet } from './face-recognition-net.js';

/**
 * face-api's age regression as an age-group classifier: a one-hot row at the group of the estimated age
 * (the spec's thresholds for `groups`), so it slots in beside the model's own estimator.
 */
export function faceApiAgeClassifier(
  net: AgeGenderNet,
  groups: number,
  name = 'face-api age',
): GroupClassifier {
  if (!isAgeGroupCount(groups)) throw new Error(`face-api age judge: ${groups} age groups has no age table`);
  return {
    name,
    groupLogits: (images) => {
      const { age, genderLogits } = net.forward(toPixels(images));
      const years = age.dataSync();
      tf.dispose([age, genderLogits]);
      return tf.oneHot(
        tf.tensor1d(
          Array.from(years, (a) => ageGroup(a, groups)),
          'int32',
        ),
        groups,
      ) as tf.Tensor2D;
    },
  };
}

/** face-api descriptors (n × 128) of a face set, in batches. */
export function describeFaces(net: FaceRecognitionNet, set: FaceImages, batchSize = 32): EmbeddingSet {
  const dim = 128;
  const per = set.size * set.size * 3;
  const data = new Float32Array(set.n * dim);
  for (let s = 0; s < set.n; s += batchSize) {
    const m = Math.min(batchSize, set.n - s);
    const d = tf.tidy(() =>
      net.forward(
        toPixels(tf.tensor4d(set.images.subarray(s * per, (s + m) * per), [m, set.size, set.size, 3])),
      ),
    );
    data.set(d.dataSync() as Float32Array, s * dim);
    d.dispose();
  }
  return { n: set.n, dim, data };
}

export interface MatcherPairs {
  /** the 10-fold protocol on −distance (thresholds learnt per fold) */
  readonly verification: VerificationResult;
  /** at the matcher's own threshold: same pairs called same, different pairs called same */
  readonly tar: number;
  readonly far: number;
  readonly accuracy: number;
  readonly maxDistance: number;
}

/** face-api's matcher on a pairs set: 10-fold accuracy, and its own threshold's TAR / FAR on real pairs. */
export function faceApiPairs(
  net: FaceRecognitionNet,
  set: PairsSet,
  opts: { batchSize?: number; folds?: number; maxDistance?: number } = {},
): MatcherPairs {
  const maxDistance = opts.maxDistance ?? FACE_API_MATCH_DISTANCE;
  const desc = describeFaces(net, set.images, opts.batchSize);
  const dist = set.pairs.map(([a, b]) => embeddingDistance(desc, a, desc, b));
  const verification = verify(
    dist.map((v) => -v),
    set.same,
    opts.folds !== undefined ? { folds: opts.folds } : {},
  );
  let tp = 0;
  let fp = 0;
  let pos = 0;
  dist.forEach((v, p) => {
    const isSame = Boolean(set.same[p]);
    if (isSame) pos++;
    if (v < maxDistance) {
      if (isSame) tp++;
      else fp++;
    }
  });
  const neg = dist.length - pos;
  return {
    verification,
    tar: pos > 0 ? tp / pos : NaN,
    far: neg > 0 ? fp / neg : NaN,
    accuracy: (tp + (neg - fp)) / dist.length,
    maxDistance,
  };
}

/** face-api's matcher as a FAS identity judge (evaluateFas `matchers`). */
export function faceApiMatcher(net: FaceRecognitionNet, batchSize = 32): DistanceMatcher {
  return {
    name: 'face-api recognition',
    maxDistance: FACE_API_MATCH_DISTANCE,
    describe: (set) => describeFaces(net, set, batchSize),
  };
}

/** Both networks, loaded once (their weights ship in the npm package). */
export class FaceApiJudges {
  readonly age = new AgeGenderNet();
  readonly recognition = new FaceRecognitionNet();

  dispose(): void {
    this.age.dispose();
    this.recognition.dispose();
  }
}
