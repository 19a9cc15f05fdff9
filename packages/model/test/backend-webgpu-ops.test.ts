import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { upsampleBilinear2x } from '@mtlface/model';
import { input, runOn, setup, setupWebgpu } from '@mtlface/backend/testing';
import {
  batchNormCase,
  compareOn,
  convCase,
  shiftedBatch,
  subsampleCase,
  sumMean,
  withGrads,
} from './op-compare.js';

setup();
before(setupWebgpu);

// Every op the MTLFace networks train with (backbone, heads, generator, discriminator), forward and
// gradient, on webgpu (lavapipe in CI) against the pure-JavaScript cpu backend. Shapes are small:
// lavapipe runs each shader on the CPU, and what is checked is the kernels, not their speed.
const compare = compareOn('webgpu');

test('webgpu: stride subsampling by reshape + slice, concat, stack and tile, and their gradients, match cpu', async () => {
  await compare('subsample', subsampleCase.inputs(), subsampleCase.f);
  await compare(
    'concat + tile',
    [input([2, 4, 4, 3], 42), input([2, 1, 1, 5], 43), input([2, 4, 4, 8], 44)],
    withGrads((a, b) => tf.concat([a!, tf.tile(b!, [1, 4, 4, 1])], 3), 2),
  );
});

test('webgpu: training batch norm (customGrad backward) matches cpu for NHWC and [N,C]', async () => {
  for (const shape of [
    [4, 4, 4, 16],
    [4, 32],
  ]) {
    const { inputs, f } = batchNormCase(shape);
    await compare(`bn [${shape}]`, inputs, f);
  }
});

test('webgpu: the networks’ convolutions (3×3 s1/s2, 1×1 s2, 4×4 s2, 7×7, 1×1 on [N,1,1,C]) and both gradients match cpu', async () => {
  for (const [xs, ws, s, p] of [
    [[4, 16, 16, 3], [3, 3, 3, 8], 1, 1],
    [[4, 8, 8, 8], [3, 3, 8, 8], 2, 1],
    [[4, 8, 8, 16], [1, 1, 16, 32], 2, 0],
    [[2, 8, 8, 4], [4, 4, 4, 8], 2, 1],
    [[4, 2, 2, 2], [7, 7, 2, 1], 1, 3],
    [[4, 1, 1, 448], [1, 1, 448, 28], 1, 0],
  ] as const) {
    const { inputs, f } = convCase(xs, ws, s, p);
    await compare(`conv x[${xs}] w[${ws}] s${s} p${p}`, inputs, f);
  }
  // with a bias, as Conv2d layers add it (tfjs may fuse the two)
  await compare(
    'conv + bias',
    [input([2, 6, 6, 4], 63), input([3, 3, 4, 5], 64), input([5], 65), input([2, 6, 6, 5], 66)],
    withGrads((x, w, b) => tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), b!), 3),
  );
});

test('webgpu: PReLU, leaky ReLU, ReLU, sigmoid, tanh and channel max, and their gradients, match cpu', async () => {
  await compare(
    'prelu',
    [input([4, 8, 8, 16], 70), input([16], 71), input([4, 8, 8, 16], 72)],
    withGrads((x, a) => tf.prelu(x!, a!), 2),
  );
  const x = input([4, 6, 6, 8], 74);
  const dy = input([4, 6, 6, 8], 75);
  for (const [name, f] of [
    ['leakyRelu', (a: tf.Tensor) => tf.leakyRelu(a, 0.2)],
    ['relu', (a: tf.Tensor) => tf.relu(a)],
    ['sigmoid', (a: tf.Tensor) => tf.sigmoid(tf.mul(a, 4))],
    ['tanh', (a: tf.Tensor) => tf.tanh(tf.mul(a, 3))],
  ] as const)
    await compare(name, [x, dy], withGrads(f, 1));
  await compare(
    'max over channels',
    [input([4, 2, 2, 64], 73), input([4, 2, 2, 1], 76)],
    withGrads((p) => tf.max(p!, 3, true), 1),
  );
});

test('webgpu: max-pool gradients match cpu for 1×1 s2 (IR shortcut), 2×2 s2 and 3×3 s2 same windows', async () => {
  for (const [k, s, pad] of [
    [1, 2, 'valid'],
    [2, 2, 'valid'],
    [3, 2, 'same'],
  ] as const) {
    const xs = input([2, 7, 7, 3], 20 + k);
    const oh = pad === 'same' ? Math.ceil(7 / s) : Math.floor((7 - k) / s) + 1;
    await compare(
      `maxPool ${k}×${k} s${s} ${pad}`,
      [xs, input([2, oh, oh, 3], 30 + k)],
      withGrads((a) => tf.maxPool(a as tf.Tensor4D, k, s, pad), 1),
    );
  }
});

test('webgpu: matMul with every transpose combination, and its gradients, match cpu', async () => {
  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const) {
    const a = input(ta ? [48, 8] : [8, 48], 80);
    const b = input(tb ? [24, 48] : [48, 24], 81);
    await compare(
      `matMul ${ta} ${tb}`,
      [a, b, input([8, 24], 82)],
      withGrads((p, q) => tf.matMul(p!, q!, ta, tb), 2),
    );
  }
});

test('webgpu: softmax, log-softmax, cross-entropy, squared difference and norm, and their gradients, match cpu', async () => {
  const logits = input([8, 10], 90);
  await compare(
    'logSoftmax',
    [logits, input([8, 10], 91)],
    withGrads((a) => tf.logSoftmax(tf.mul(a!, 5)), 1),
  );
  await compare(
    'softmax',
    [logits, input([8, 10], 92)],
    withGrads((a) => tf.softmax(tf.mul(a!, 5)), 1),
  );
  await compare(
    'cross-entropy',
    [logits, input([], 93)],
    withGrads((a) => {
      const onehot = tf.oneHot(tf.tensor1d([0, 3, 9, 2, 2, 5, 7, 1], 'int32'), 10);
      return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(a!), onehot), 1)));
    }, 1),
  );
  await compare(
    'squaredDifference + norm',
    [logits, input([8, 10], 94), input([], 95)],
    withGrads((a, b) => tf.add(tf.mean(tf.squaredDifference(a!, b!)), tf.norm(a!)), 2),
  );
});

test('webgpu: bilinear ×2 upsampling (slices, concat, stack) and its gradient match cpu', async () => {
  await compare(
    'upsample',
    [input([2, 4, 4, 6], 100), input([2, 8, 8, 6], 101)],
    withGrads((a) => upsampleBilinear2x(a as tf.Tensor4D), 1),
  );
});

test('webgpu Sum and Mean of float32 are accurate over a batch norm’s N·H·W values, all axis sets', async () => {
  // mean 10, spread 0.006: a float32 running sum loses the spread; 5e-7 is half an ulp at 10
  const { shifted, exactMean } = shiftedBatch();
  const [m] = await runOn('webgpu', [shifted], (t) => [tf.mean(t, [0, 1, 2])]);
  assert.ok(Math.abs(m![0]! - exactMean) < 5e-7, `mean ${m![0]} vs ${exactMean}`);
  for (const [axis, keepDims] of [
    [[0, 1, 2], false],
    [3, false],
    [[1, 2], true],
    [null, false],
  ] as const) {
    await compare(`sum/mean axis ${String(axis)} keepDims ${keepDims}`, [shifted], sumMean(axis, keepDims));
  }
});
