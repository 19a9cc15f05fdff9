// Face age synthesis evaluation: every test face rendered at every target group, then judged by one or
// more age estimators (the model's own, and ideally one trained separately, which the generator never
// saw) and by the recogniser (is the aged face still the source person?).
import * as tf from '@tensorflow/tfjs-core';
import {
  ageGroupAccuracy,
  identityPreservation,
  matcherIdentity,
  type MatcherIdentity,
  type GroupAccuracy,
  type IdentityPreservation,
} from '../fas-quality.js';
import type { EmbeddingSet } from '../similarity.js';
import { embedImages } from './embed.js';
import type { FaceModel } from './face-model.js';
import { sliceImages, type FaceImages } from './images.js';

export interface GroupClassifier {
  readonly name: string;
  groupLogits(images: tf.Tensor4D): tf.Tensor2D;
}

/** A recogniser that decides by a distance of its own descriptors (e.g. face-api's: Euclidean < 0.6). */
export interface DistanceMatcher {
  readonly name: string;
  readonly maxDistance: number;
  describe(set: FaceImages): EmbeddingSet;
}

export interface FasOptions {
  /** the recogniser's decision threshold for identity preservation (e.g. the best 10-fold threshold) */
  threshold: number;
  /** estimators judging the generated faces; default: the model's own (named 'own') */
  estimators?: GroupClassifier[];
  /** target groups; default all */
  targets?: number[];
  batchSize?: number;
  /** mirror-sum embeddings for identity preservation (default true) */
  mirror?: boolean;
  /** true age group of each source face: each estimator is then also scored on the real faces, for scale */
  sourceGroups?: ArrayLike<number>;
  /** independent recognisers judging identity kept, each at its own threshold */
  matchers?: DistanceMatcher[];
}

export interface FasReport {
  readonly faces: number;
  readonly targets: number[];
  /** `real`: the same estimator on the untouched source faces (when their groups were given) */
  readonly ageAccuracy: Array<{ estimator: string; real?: GroupAccuracy } & GroupAccuracy>;
  readonly identity: IdentityPreservation;
  /** identity kept under each independent matcher */
  readonly matcherIdentity?: Array<{ matcher: string } & MatcherIdentity>;
}

/** Renders `faces` at each target group: [n][targets.length] images, as one set ordered face-major. */
export function ageSeries(
  model: FaceModel,
  faces: FaceImages,
  targets: number[],
  batchSize = 16,
): FaceImages {
  const age = model.age;
  if (!age) throw new Error('this checkpoint has no generator: it cannot age faces');
  for (const g of targets) {
    if (!Number.isInteger(g) || g < 0 || g >= model.groups) {
      throw new Error(`target group ${g} is not in [0, ${model.groups})`);
    }
  }
  const per = faces.size * faces.size * 3;
  const out = new Float32Array(faces.n * targets.length * per);
  for (let start = 0; start < faces.n; start += batchSize) {
    const m = Math.min(batchSize, faces.n - start);
    const chunk = sliceImages(faces, start, start + m);
    targets.forEach((g, t) => {
      const aged = tf.tidy(() => {
        const x = tf.tensor4d(chunk.images, [m, faces.size, faces.size, 3]);
        return age(x, tf.fill([m], g, 'int32') as tf.Tensor1D);
      });
      const values = aged.dataSync() as Float32Array;
      aged.dispose();
      for (let i = 0; i < m; i++) {
        out.set(values.subarray(i * per, (i + 1) * per), ((start + i) * targets.length + t) * per);
      }
    });
  }
  return { n: faces.n * targets.length, size: faces.size, images: out };
}

function classify(est: GroupClassifier, set: FaceImages, batchSize: number): Int32Array {
  const out = new Int32Array(set.n);
  for (let start = 0; start < set.n; start += batchSize) {
    const m = Math.min(batchSize, set.n - start);
    const pred = tf.tidy(() => {
      const x = tf.tensor4d(sliceImages(set, start, start + m).images, [m, set.size, set.size, 3]);
      return tf.argMax(est.groupLogits(x), 1);
    });
    out.set(pred.dataSync() as Int32Array, start);
    pred.dispose();
  }
  return out;
}

export function evaluateFas(model: FaceModel, faces: FaceImages, opts: FasOptions): FasReport {
  const targets = opts.targets ?? Array.from({ length: model.groups }, (_, g) => g);
  const batchSize = opts.batchSize ?? 16;
  const own = model.groupLogits;
  const estimators = opts.estimators ?? (own ? [{ name: 'own', groupLogits: own }] : []);
  if (estimators.length === 0)
    throw new Error('FAS evaluation needs an age estimator: the checkpoint has none and none was given');
  const aged = ageSeries(model, faces, targets, batchSize);
  const targetOf = Int32Array.from({ length: aged.n }, (_, i) => targets[i % targets.length]!);
  const sourceOf = Int32Array.from({ length: aged.n }, (_, i) => Math.floor(i / targets.length));
  const real = opts.sourceGroups;
  if (real && real.length !== faces.n)
    throw new Error(`FAS: ${faces.n} faces but ${real.length} source groups`);
  const ageAccuracy = estimators.map((est) => ({
    estimator: est.name,
    ...ageGroupAccuracy(targetOf, classify(est, aged, batchSize), model.groups),
    ...(real ? { real: ageGroupAccuracy(real, classify(est, faces, batchSize), model.groups) } : {}),
  }));
  const embedOpts = { batchSize, mirror: opts.mirror ?? true };
  const src: EmbeddingSet = embedImages(model, faces, embedOpts);
  const agedEmb = embedImages(model, aged, embedOpts);
  return {
    faces: faces.n,
    targets,
    ageAccuracy,
    identity: identityPreservation(src, agedEmb, sourceOf, targetOf, opts.threshold),
    ...(opts.matchers
      ? {
          matcherIdentity: opts.matchers.map((m) => ({
            matcher: m.name,
            ...matcherIdentity(m.describe(faces), m.describe(aged), sourceOf, targetOf, m.maxDistance),
          })),
        }
      : {}),
  };
}
