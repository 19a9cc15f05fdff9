import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { input, maxRelDiff, runOn, setup } from './helpers.js';
import { broadcastGeometry, reductionGeometry } from '../src/native/shapes.js';

setup();
const TOL = 2e-6;

test('broadcastGeometry merges dims that broadcast alike and keeps innermost strides 0 or 1', () => {
  // [N,H,W,C] * [C]: one outer run over N·H·W with b repeating, inner C contiguous for both.
  assert.deepEqual(Array.from(broadcastGeometry([2, 3, 4, 5], [5], [2, 3, 4, 5])), [2, 24, 5, 5, 1, 0, 1]);
  // Same shapes collapse to one run.
  assert.deepEqual(Array.from(broadcastGeometry([2, 3], [2, 3], [2, 3])), [1, 6, 1, 1]);
  // [N,H,W,1] * [N,H,W,C]: per-pixel scalar.
  assert.deepEqual(
    Array.from(broadcastGeometry([2, 3, 3, 1], [2, 3, 3, 4], [2, 3, 3, 4])),
    [2, 18, 4, 1, 0, 4, 1],
  );
  // scalar * scalar
  assert.deepEqual(Array.from(broadcastGeometry([], [], [])), [1, 1, 1, 1]);
});

test('reductionGeometry finds outer × reduced × inner, or null for split reduced axes', () => {
  assert.deepEqual(reductionGeometry([8, 4, 4, 16], [0, 1, 2]), { outer: 1, n: 128, inner: 16 });
  assert.deepEqual(reductionGeometry([8, 4, 4, 16], [1, 2]), { outer: 8, n: 16, inner: 16 });
  assert.deepEqual(reductionGeometry([8, 4, 4, 16], [3]), { outer: 128, n: 16, inner: 1 });
  assert.deepEqual(reductionGeometry([8, 1, 4, 16], [1, 2]), { outer: 8, n: 4, inner: 16 });
  assert.equal(reductionGeometry([8, 4, 4, 16], [0, 2]), null);
});

const binaryCases: [number[], number[]][] = [
  [
    [2, 5, 5, 8],
    [2, 5, 5, 8],
  ],
  [[2, 5, 5, 8], [8]],
  [[8], [2, 5, 5, 8]],
  [
    [2, 5, 5, 8],
    [1, 1, 1, 8],
  ],
  [
    [2, 5, 5, 8],
    [2, 1, 1, 8],
  ],
  [
    [2, 5, 5, 8],
    [2, 5, 5, 1],
  ],
  [[2, 5, 5, 8], []],
  [[], [3, 4]],
  [
    [3, 1, 4],
    [1, 5, 1],
  ],
  [
    [64, 130],
    [64, 130],
  ],
];

for (const [sa, sb] of binaryCases) {
  test(`binary ops match cpu with broadcasting: [${sa}] ∘ [${sb}], with gradients`, async () => {
    const a = input(sa, 50);
    const b = input(sb, 51);
    b.values.forEach((v, i) => (b.values[i] = v + (v >= 0 ? 0.5 : -0.5))); // keep divisors away from 0
    const f = (x: tf.Tensor, y: tf.Tensor) => {
      const [ga, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) =>
        tf.sum(tf.mul(tf.div(tf.sub(p, q), q), tf.add(p, q))),
      )([x, y]);
      return [
        tf.add(x, y),
        tf.sub(x, y),
        tf.mul(x, y),
        tf.div(x, y),
        tf.squaredDifference(x, y),
        tf.maximum(x, y),
        tf.minimum(x, y),
        ga!,
        gb!,
      ];
    };
    const ref = await runOn('cpu', [a, b], f);
    const got = await runOn('native', [a, b], f);
    for (let i = 0; i < ref.length; i++) {
      const d = maxRelDiff(got[i]!, ref[i]!);
      assert.ok(d < TOL, `output ${i}: max relative difference ${d}`);
    }
  });
}

test('Sum, Mean, Max, Min match cpu over the model’s axis patterns, keepDims or not', async () => {
  const x = input([4, 6, 5, 12], 60);
  for (const axes of [[0, 1, 2], [1, 2], [3], [0], [2, 3], [0, 1, 2, 3], [0, 2]]) {
    for (const keepDims of [false, true]) {
      const f = (t: tf.Tensor) => [
        tf.sum(t, axes, keepDims),
        tf.mean(t, axes, keepDims),
        tf.max(t, axes, keepDims),
        tf.min(t, axes, keepDims),
      ];
      const ref = await runOn('cpu', [x], f);
      const got = await runOn('native', [x], f);
      for (let i = 0; i < ref.length; i++) {
        const d = maxRelDiff(got[i]!, ref[i]!);
        assert.ok(d < TOL, `axes [${axes}] keepDims=${keepDims} output ${i}: difference ${d}`);
      }
    }
  }
});

test('int32 and bool-derived inputs still work (fallback or conversion)', async () => {
  await tf.setBackend('native');
  const r = tf.tidy(() => {
    const i = tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([4, 5, 6], 'int32'));
    const f = tf.mul(tf.cast(tf.greater(tf.tensor1d([1, -1, 2]), 0), 'float32'), tf.tensor1d([2, 2, 2]));
    return [Array.from(i.dataSync()), i.dtype, Array.from(f.dataSync())];
  });
  assert.deepEqual(r, [[5, 7, 9], 'int32', [2, 0, 2]]);
});

test('disposed native outputs are recycled without corrupting values a caller read', async () => {
  await tf.setBackend('native');
  const x = tf.randomUniform([64, 1024]);
  const y = tf.mul(x, 2);
  const kept = y.dataSync(); // escapes: must never be reused
  const snapshot = Float32Array.from(kept);
  y.dispose();
  for (let i = 0; i < 5; i++) tf.tidy(() => tf.mul(x, 3).dataSync().length);
  assert.deepEqual(kept, snapshot);
  const a = tf.mul(x, 4);
  const v1 = Float32Array.from(a.dataSync());
  a.dispose();
  const b = tf.mul(x, 5); // may reuse a's storage
  const xs = x.dataSync();
  const bv = b.dataSync();
  for (let i = 0; i < 10; i++) assert.equal(bv[i], Math.fround(xs[i]! * 5));
  assert.equal(v1[0], Math.fround(xs[0]! * 4));
  tf.dispose([x, b]);
});

test('Slice, Transpose, Tile and PadV2 (strided copies) match cpu, with gradients', async () => {
  const x = input([3, 5, 4, 6], 70);
  const f = (t: tf.Tensor) => {
    const g = tf.grad((p: tf.Tensor) =>
      tf.sum(
        tf.square(
          tf.slice(
            tf.pad(tf.transpose(p, [0, 3, 1, 2]), [
              [0, 0],
              [1, 2],
              [0, 1],
              [3, 0],
            ]),
            [1, 0, 1, 1],
            [2, 8, 4, 5],
          ),
        ),
      ),
    )(t);
    return [
      tf.slice(t, [1, 0, 1, 2], [2, 5, 2, 3]),
      tf.slice(t, [0, 1, 0, 0], [-1, 3, -1, -1]),
      tf.reshape(tf.slice(tf.reshape(t, [3, 5, 2, 2, 6]), [0, 0, 0, 0, 0], [3, 5, 1, 2, 6]), [-1]),
      tf.transpose(t, [3, 1, 0, 2]),
      tf.transpose(t, [0, 2, 1, 3]),
      tf.tile(t, [2, 1, 3, 1]),
      tf.tile(tf.reshape(tf.slice(t, [0, 0, 0, 0], [1, 1, 1, 6]), [1, 1, 1, 6]), [3, 5, 4, 1]),
      tf.pad(
        t,
        [
          [0, 1],
          [2, 0],
          [1, 1],
          [0, 0],
        ],
        0.5,
      ),
      g,
    ];
  };
  const ref = await runOn('cpu', [x], f);
  const got = await runOn('native', [x], f);
  for (let i = 0; i < ref.length; i++) assert.deepEqual(got[i], ref[i], `output ${i}`);
});

test('comparisons, Select and Prelu match cpu (the relu/prelu gradient path)', async () => {
  const x = input([2, 4, 4, 6], 80);
  const y = input([6], 81);
  const f = (a: tf.Tensor, b: tf.Tensor) => {
    const [gx, ga] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(tf.prelu(p, q))))([a, b]);
    return [
      tf.cast(tf.greater(a, b), 'float32'),
      tf.cast(tf.greaterEqual(a, 0), 'float32'),
      tf.cast(tf.less(a, b), 'float32'),
      tf.cast(tf.lessEqual(b, a), 'float32'),
      tf.cast(tf.equal(a, a), 'float32'),
      tf.cast(tf.notEqual(a, b), 'float32'),
      tf.where(tf.greater(a, 0), a, tf.mul(a, 3)),
      tf.prelu(a, b),
      gx!,
      ga!,
      tf.grad((p: tf.Tensor) => tf.sum(tf.mul(tf.relu(p), p)))(a),
    ];
  };
  const ref = await runOn('cpu', [x, y], f);
  const got = await runOn('native', [x, y], f);
  for (let i = 0; i < ref.length; i++) {
    const d = maxRelDiff(got[i]!, ref[i]!);
    assert.ok(d < TOL, `output ${i}: max relative difference ${d}`);
  }
});

test('SplitV, Unpack and Square match cpu (concat/stack gradients go through them)', async () => {
  const x = input([3, 4, 5, 6], 95);
  const f = (t: tf.Tensor) => [
    ...tf.split(t, [1, 3, 2], 3),
    ...tf.split(t, 2, 1),
    ...tf.unstack(t, 2),
    ...tf.unstack(t, 0),
    tf.square(t),
    tf.grad((p: tf.Tensor) =>
      tf.sum(tf.square(tf.stack([tf.concat([p, tf.mul(p, 2)], 3), tf.concat([p, p], 3)], 1))),
    )(t),
  ];
  const ref = await runOn('cpu', [x], f);
  const got = await runOn('native', [x], f);
  assert.equal(got.length, ref.length);
  for (let i = 0; i < ref.length; i++) assert.deepEqual(got[i], ref[i], `output ${i}`);
});
