import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accuracyByAgeGap } from '../src/cross-age.js';
import { ageGroupAccuracy, identityPreservation } from '../src/fas-quality.js';
import { embeddingSet, pairSimilarities, sumWithMirror } from '../src/similarity.js';

test('age-gap buckets: 0-10, 10-20, 20-40, 40+ with lower bounds inclusive', () => {
  const gaps = [0, 9.9, 10, 19, 20, 39, 40, 70];
  const same = [1, 0, 1, 1, 0, 1, 1, 0];
  const pred = [1, 0, 0, 1, 1, 1, 0, 0];
  const b = accuracyByAgeGap(pred, same, gaps);
  assert.deepEqual(
    b.map((x) => x.label),
    ['0-10', '10-20', '20-40', '40+'],
  );
  assert.deepEqual(
    b.map((x) => x.pairs),
    [2, 2, 2, 2],
  );
  assert.deepEqual(
    b.map((x) => x.accuracy),
    [1, 0.5, 0.5, 0.5],
  );
  assert.deepEqual(
    b.map((x) => x.tar),
    [1, 0.5, 1, 0],
  );
  assert.throws(() => accuracyByAgeGap([1], [1], [-2]), /age gap of pair 0 is -2/);
});

test('age-group accuracy of generated faces with its confusion matrix', () => {
  const r = ageGroupAccuracy([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3);
  assert.equal(r.accuracy, 4 / 6);
  assert.equal(r.meanGroupError, 3 / 6);
  assert.deepEqual(r.confusion, [
    [1, 1, 0],
    [0, 1, 0],
    [1, 0, 2],
  ]);
  assert.deepEqual(
    r.perGroup.map((g) => g.accuracy),
    [0.5, 1, 2 / 3],
  );
  assert.throws(() => ageGroupAccuracy([0], [7], 7), /prediction 0 is 7/);
});

test('identity preservation: cosine of each aged face to its own source, and the share above threshold', () => {
  const sources = embeddingSet(Float32Array.from([1, 0, 0, 2]), 2);
  // source 0 aged to groups 0 and 1: at 0° and 60°; source 1 aged to group 1: at 90° (cos 1)
  const aged = embeddingSet(Float32Array.from([3, 0, 0.5, Math.sqrt(3) / 2, 0, 1]), 2);
  const r = identityPreservation(sources, aged, [0, 0, 1], [0, 1, 1], 0.6);
  assert.ok(Math.abs(r.meanCosine - (1 + 0.5 + 1) / 3) < 1e-6);
  assert.equal(r.verificationRate, 2 / 3);
  assert.equal(r.perGroup.length, 2);
  assert.ok(Math.abs(r.perGroup[1]!.meanCosine - 0.75) < 1e-6);
  assert.equal(r.perGroup[1]!.verificationRate, 0.5);
  assert.throws(() => identityPreservation(sources, aged, [0, 0, 5], [0, 1, 1], 0.6), /names source 5/);
});

test('pair similarities are cosines, and the mirror sum adds the two embeddings', () => {
  const e = embeddingSet(Float32Array.from([1, 0, 1, 1, -2, 0]), 2);
  const s = pairSimilarities(e, [
    [0, 1],
    [0, 2],
    [1, 1],
  ]);
  assert.ok(Math.abs(s[0]! - Math.SQRT1_2) < 1e-6);
  assert.ok(Math.abs(s[1]! + 1) < 1e-6);
  assert.ok(Math.abs(s[2]! - 1) < 1e-6);
  assert.deepEqual(Array.from(sumWithMirror(e, e).data), [2, 0, 2, 2, -4, 0]);
  assert.throws(() => embeddingSet(new Float32Array(5), 2), /5 values is not a whole number of 2-d/);
});
