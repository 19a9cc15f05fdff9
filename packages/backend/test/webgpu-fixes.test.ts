import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { input, maxRelDiff, runOn, setup, setupWebgpu } from './helpers.js';
import { mergeUnpadded } from '../src/webgpu/kernels/pad.js';
import { WEBGPU_FIXED_KERNELS } from '../src/index.js';

setup();
before(setupWebgpu);

type Pads = [number, number][];

/** runOn('webgpu') that also checks the fixes free every intermediate buffer (data ids on the backend). */
async function onWebgpu(inputs: Parameters<typeof runOn>[1], f: Parameters<typeof runOn>[2]) {
  await tf.setBackend('webgpu');
  const before = tf.backend().numDataIds();
  const out = await runOn('webgpu', inputs, f);
  assert.equal(tf.backend().numDataIds(), before, 'webgpu buffers left behind');
  return out;
}

test('mergeUnpadded gives the same pad at a lower rank (checked on cpu by reshaping back)', async () => {
  await tf.setBackend('cpu');
  for (const [shape, pads, rank] of [
    [
      [4, 4, 1, 4, 1, 16],
      [
        [0, 0],
        [0, 0],
        [0, 1],
        [0, 0],
        [0, 1],
        [0, 0],
      ],
      3,
    ],
    [
      [2, 3, 2, 2, 3],
      [
        [0, 1],
        [1, 0],
        [0, 1],
        [1, 1],
        [0, 0],
      ],
      4,
    ],
    [
      [2, 3, 4, 5, 6],
      [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
      ],
      1,
    ],
    [
      [2, 3, 4, 5, 6, 2],
      [
        [1, 0],
        [0, 1],
        [1, 1],
        [0, 2],
        [2, 0],
        [1, 1],
      ],
      6,
    ],
  ] as [number[], Pads, number][]) {
    const m = mergeUnpadded(shape, pads);
    assert.equal(m.shape.length, rank, `${shape}`);
    const x = tf.tensor(input(shape, 1).values, shape);
    const direct = tf.pad(x, pads, 0.5);
    const viaMerged = tf.reshape(tf.pad(tf.reshape(x, m.shape), m.paddings, 0.5), direct.shape);
    assert.deepEqual(Array.from(await viaMerged.data()), Array.from(await direct.data()));
    tf.dispose([x, direct, viaMerged]);
  }
});

test('webgpu PadV2 of rank 5 and 6 (mergeable and not, a constant, int32) matches cpu (webgpu’s own shader is invalid WGSL above rank 4)', async () => {
  assert.ok(WEBGPU_FIXED_KERNELS.includes('PadV2'));
  for (const [shape, pads, c] of [
    [
      [4, 4, 1, 4, 1, 16],
      [
        [0, 0],
        [0, 0],
        [0, 1],
        [0, 0],
        [0, 1],
        [0, 0],
      ],
      0,
    ],
    [
      [2, 3, 2, 2, 3],
      [
        [0, 1],
        [1, 0],
        [0, 1],
        [1, 1],
        [0, 0],
      ],
      -2,
    ],
    [
      [2, 3, 2, 3, 2, 2],
      [
        [1, 0],
        [0, 1],
        [1, 1],
        [0, 2],
        [2, 0],
        [1, 1],
      ],
      0.25,
    ],
    [
      [2, 2, 3],
      [
        [1, 1],
        [0, 2],
        [1, 0],
      ],
      3,
    ],
  ] as [number[], Pads, number][]) {
    const f = (x: tf.Tensor) => [tf.pad(x, pads, c), tf.pad(tf.cast(tf.mul(x, 10), 'int32'), pads, 7)];
    const got = await onWebgpu([input(shape, 2)], f);
    const ref = await runOn('cpu', [input(shape, 2)], f);
    for (const i of [0, 1])
      assert.deepEqual(Array.from(got[i]!), Array.from(ref[i]!), `[${shape}] output ${i}`);
  }
});

test('webgpu gradient of a rank-6 slice (the backbone’s stride subsampling) matches cpu, and so does the forward encoded with it', async () => {
  const f = (x: tf.Tensor, dy: tf.Tensor) => {
    const sub = (a: tf.Tensor) =>
      tf.reshape(
        tf.slice(tf.reshape(a, [2, 4, 2, 4, 2, 8]), [0, 0, 0, 0, 0, 0], [2, 4, 1, 4, 1, 8]),
        [2, 4, 4, 8],
      );
    return [sub(x), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(sub(a), dy)))(x)];
  };
  const inputs = [input([2, 8, 8, 8], 3), input([2, 4, 4, 8], 4)];
  const got = await onWebgpu(inputs, f);
  const ref = await runOn('cpu', inputs, f);
  for (const i of [0, 1]) assert.ok(maxRelDiff(got[i]!, ref[i]!) === 0, `output ${i}`);
});

test('webgpu matMul with transposeB and a long inner dimension (webgpu’s split-K program) matches cpu, forward and gradients, plain and fused', async () => {
  for (const [m, k, n, ta] of [
    [8, 4096, 64, false],
    [8, 4096, 64, true],
    [3, 2052, 5, false],
    [1, 2000, 16, false],
  ] as const) {
    const f = (a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor, dy: tf.Tensor) => {
      const mm = (p: tf.Tensor, q: tf.Tensor) => tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D, ta, true);
      const [ga, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(mm(p, q), dy)))([a, b]);
      const fused = tf.fused.matMul({
        a: a as tf.Tensor2D,
        b: b as tf.Tensor2D,
        transposeA: ta,
        transposeB: true,
        bias,
        activation: 'relu',
      });
      return [mm(a, b), ga!, gb!, fused];
    };
    const inputs = [input(ta ? [k, m] : [m, k], 5), input([n, k], 6), input([n], 7), input([m, n], 8)];
    const got = await onWebgpu(inputs, f);
    const ref = await runOn('cpu', inputs, f);
    for (const i of [0, 1, 2, 3]) {
      const d = maxRelDiff(got[i]!, ref[i]!);
      assert.ok(d < 2e-5, `[${m},${k}]·[${n},${k}]ᵀ transposeA ${ta} output ${i}: difference ${d}`);
    }
  }
});

test('dataSync of a tensor on the webgpu device fails with one line saying to await data(); host values still read', async () => {
  await tf.setBackend('webgpu');
  const x = tf.tensor1d([1, -2, 3]);
  assert.deepEqual(Array.from(x.dataSync()), [1, -2, 3]); // not uploaded yet: the host copy
  const y = tf.square(x);
  assert.throws(
    () => y.dataSync(),
    /^Error: webgpu backend: no synchronous read-back in Node .*use `await tensor.data\(\)`/,
  );
  assert.deepEqual(Array.from(await y.data()), [1, 4, 9]);
  tf.dispose([x, y]);
});
