import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { buildBackbone, AgeEstimation } from '@mtlface/model';
import {
  embedImages,
  evaluatePairs,
  evaluateFas,
  ageSeries,
  validate,
  shardRange,
  faceModelFromModules,
  type FaceModel,
  type FaceImages,
  type PairsSet,
} from '../src/model/index.js';

before(async () => {
  await tf.setBackend('cpu');
});

const S = 4;
/** Images of constant colour (r, g, b) with one bright pixel at column `x` of row 0 (to see mirroring). */
function images(rows: Array<[number, number, number, number]>): FaceImages {
  const per = S * S * 3;
  const out = new Float32Array(rows.length * per);
  rows.forEach(([r, g, b, x], i) => {
    for (let p = 0; p < S * S; p++) out.set([r, g, b], i * per + p * 3);
    out[i * per + x * 3] = 1;
  });
  return { n: rows.length, size: S, images: out };
}

/**
 * A stub model: the embedding is (mean R, mean G, red value of pixel (0,0)); ageing writes the target group
 * into the blue channel; the estimator reads it back.
 */
const stub: FaceModel = {
  inputSize: S,
  groups: 7,
  embed: (x) =>
    tf.tidy(() => {
      const means = tf.mean(x, [1, 2]); // [N, 3]
      const corner = tf.reshape(tf.slice(x, [0, 0, 0, 0], [-1, 1, 1, 1]), [-1, 1]);
      return tf.concat([tf.slice(means, [0, 0], [-1, 2]), corner], 1) as tf.Tensor2D;
    }),
  groupLogits: (x) =>
    tf.tidy(() => {
      const b = tf.mean(tf.slice(x, [0, 0, 0, 2], [-1, -1, -1, 1]), [1, 2, 3]);
      return tf.cast(tf.oneHot(tf.cast(tf.round(tf.mul(b, 10)), 'int32'), 7), 'float32') as tf.Tensor2D;
    }),
  age: (x, g) =>
    tf.tidy(() => {
      const [n] = x.shape;
      const blue = tf.tile(tf.reshape(tf.div(tf.cast(g, 'float32'), 10), [n, 1, 1, 1]), [1, S, S, 1]);
      return tf.concat([tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, 2]), blue], 3) as tf.Tensor4D;
    }),
};

test('embedding with the mirror adds the embedding of the left-right flipped image', () => {
  const set = images([
    [0.5, -0.5, 0, 0],
    [0.2, 0.1, 0, 3],
    [0, 0, 0, 1],
  ]);
  const before = tf.memory().numTensors;
  const plain = embedImages(stub, set, { mirror: false, batchSize: 2 });
  const summed = embedImages(stub, set, { batchSize: 2 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(plain.dim, 3);
  // image 0: bright pixel at column 0 → corner red 1 plain; mirrored, the corner is column 3 (red 0.5)
  assert.ok(Math.abs(plain.data[2]! - 1) < 1e-6);
  assert.ok(Math.abs(summed.data[2]! - 1.5) < 1e-6);
  // image 1: bright pixel at column 3 → plain corner 0.2, mirrored corner 1
  assert.ok(Math.abs(summed.data[5]! - 1.2) < 1e-6);
  // the channel means do not change under mirroring: they double
  for (const k of [0, 1, 3, 4]) assert.ok(Math.abs(summed.data[k]! - 2 * plain.data[k]!) < 1e-6);
  assert.throws(() => embedImages({ ...stub, inputSize: 8 }, set), /images are 4×4 but the model takes 8×8/);
});

/** Identity i has colour direction (cos θi, sin θi); its images differ by a small brightness change. */
function identitySet(ids: number, perId: number): PairsSet {
  const rows: Array<[number, number, number, number]> = [];
  const ages: number[] = [];
  for (let i = 0; i < ids; i++) {
    const th = (i / ids) * Math.PI * 1.8;
    for (let j = 0; j < perId; j++) {
      const k = 0.5 + 0.1 * j;
      rows.push([k * Math.cos(th), k * Math.sin(th), 0, 0]);
      ages.push(10 + 15 * j);
    }
  }
  const pairs: Array<[number, number]> = [];
  const same: boolean[] = [];
  for (let a = 0; a < rows.length; a++) {
    for (let b = a + 1; b < rows.length; b++) {
      pairs.push([a, b]);
      same.push(Math.floor(a / perId) === Math.floor(b / perId));
    }
  }
  return { name: 'toy', images: images(rows), pairs, same, ages };
}

test('evaluating a pairs set: separable identities verify perfectly, and pairs split by age gap', () => {
  const set = identitySet(6, 3);
  const before = tf.memory().numTensors;
  const r = evaluatePairs(stub, set, { mirror: false });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(r.verification.pairs, (18 * 17) / 2);
  assert.equal(r.verification.accuracyMean, 1);
  assert.equal(r.verification.auc, 1);
  // ages 10, 25, 40 within an identity: gaps 15 (10-20) and 30 (20-40) among same pairs
  const b = r.byAgeGap!;
  assert.deepEqual(
    b.map((x) => x.positives),
    [0, 12, 6, 0],
  );
  assert.throws(
    () => evaluatePairs(stub, { ...set, pairs: [[0, 99]], same: [true] }),
    /toy: pair 0 refers to image 99/,
  );
});

test('FAS evaluation: every face at every group, judged by each estimator and by the recogniser', () => {
  const faces = images([
    [0.5, 0.1, 0, 0],
    [0.1, 0.5, 0, 0],
    [-0.3, 0.3, 0, 0],
  ]);
  const grid = ageSeries(stub, faces, [0, 3, 6]);
  assert.equal(grid.n, 9);
  // face 1 at group 3 (row 1·3+1) has blue 0.3
  assert.ok(Math.abs(grid.images[(1 * 3 + 1) * S * S * 3 + 2]! - 0.3) < 1e-6);
  const before = tf.memory().numTensors;
  const r = evaluateFas(stub, faces, {
    threshold: 0.5,
    // the real faces have no blue: the stub estimator reads group 0, right for two of the three
    sourceGroups: [0, 0, 3],
    estimators: [
      { name: 'own', groupLogits: stub.groupLogits! },
      {
        name: 'always-0',
        groupLogits: (x) =>
          tf.tidy(() => tf.cast(tf.oneHot(tf.zeros([x.shape[0]], 'int32'), 7), 'float32') as tf.Tensor2D),
      },
    ],
  });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(r.targets, [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(r.ageAccuracy[0]!.accuracy, 1);
  assert.ok(Math.abs(r.ageAccuracy[0]!.real!.accuracy - 2 / 3) < 1e-12);
  assert.ok(Math.abs(r.ageAccuracy[1]!.accuracy - 1 / 7) < 1e-12);
  assert.equal(r.identity.pairs, 21);
  // ageing only touches blue, which the embedding ignores except at the corner pixel's red: identical
  assert.ok(r.identity.meanCosine > 0.999);
  assert.equal(r.identity.verificationRate, 1);
  assert.throws(() => ageSeries({ ...stub, age: undefined }, faces, [0]), /no generator/);
});

test('validation sharded over 3 ranks gives every rank the unsharded result', async () => {
  const set = identitySet(5, 3);
  const whole = await validate(stub, [set], { mirror: false });
  const world = 3;
  const inbox: Uint8Array[] = new Array(world);
  let arrived = 0;
  let release!: () => void;
  const all = new Promise<void>((r) => (release = r));
  const reports = await Promise.all(
    Array.from({ length: world }, (_, rank) =>
      validate(stub, [set], {
        mirror: false,
        shard: {
          rank,
          worldSize: world,
          allGather: async (bytes) => {
            inbox[rank] = bytes;
            if (++arrived === world) release();
            await all;
            return inbox;
          },
        },
      }),
    ),
  );
  for (const r of reports) assert.deepEqual(r.sets, whole.sets);
  assert.equal(whole.sets[0]!.accuracy, 1);
  assert.equal(whole.sets[0]!.name, 'toy');
  assert.ok(whole.sets[0]!.byAgeGap?.some((b) => b.label === '10-20' && b.pairs > 0));
  assert.deepEqual(shardRange(10, 2, 3), [6, 10]);
});

test('a real backbone and age estimator wrap into a FaceModel that runs in eval mode and restores the mode', () => {
  const backbone = buildBackbone({ arch: 'demo', inputSize: 32 });
  const estimation = new AgeEstimation({ channels: 128, inputSize: 32, groups: 7 });
  const model = faceModelFromModules({ backbone, estimation });
  const faces: FaceImages = {
    n: 2,
    size: 32,
    images: Float32Array.from({ length: 2 * 32 * 32 * 3 }, (_, i) => Math.sin(i)),
  };
  backbone.train();
  const before = tf.memory().numTensors;
  const a = embedImages(model, faces, { mirror: true });
  const b = embedImages(model, faces, { mirror: true });
  // dropout and batch statistics are off, so two runs agree exactly
  assert.deepEqual(Array.from(a.data), Array.from(b.data));
  assert.equal(a.dim, 512);
  const logits = tf.tidy(() => model.groupLogits!(tf.tensor4d(faces.images, [2, 32, 32, 3])));
  assert.deepEqual(logits.shape, [2, 7]);
  logits.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.equal(backbone.training, true);
  backbone.dispose();
  estimation.dispose();
});
