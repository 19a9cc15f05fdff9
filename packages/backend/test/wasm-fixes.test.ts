import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { input, maxRelDiff, runOn, setup } from './helpers.js';

setup();
const TOL = 2e-5;

test('wasm MaxPoolGrad of a 1×1 window with stride 2 scatters dy onto the sampled pixels (the subsampling shortcut of an IR unit)', async () => {
  const x = { shape: [1, 4, 4, 1], values: Float32Array.from({ length: 16 }, (_, i) => i) };
  const dy = { shape: [1, 2, 2, 1], values: Float32Array.of(1, 2, 3, 4) };
  const f = (xt: tf.Tensor, dyt: tf.Tensor) => [
    tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, 1, 2, 'valid'), dyt)))(xt),
  ];
  const [got] = await runOn('wasm', [x, dy], f);
  assert.deepEqual(Array.from(got!), [1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0]);
  const [ref] = await runOn('cpu', [x, dy], f);
  assert.deepEqual(Array.from(got!), Array.from(ref!));
});

test('wasm max-pool gradients match cpu for 1×1, 2×2 and 3×3 windows', async () => {
  for (const [k, s, pad] of [
    [1, 2, 'valid'],
    [1, 1, 'valid'],
    [2, 2, 'valid'],
    [3, 2, 'same'],
  ] as const) {
    const x = input([2, 7, 7, 3], 20 + k);
    const f = (xt: tf.Tensor) => [
      tf.grad((a: tf.Tensor) => tf.sum(tf.square(tf.maxPool(a as tf.Tensor4D, k, s, pad))))(xt),
    ];
    const d = maxRelDiff((await runOn('wasm', [x], f))[0]!, (await runOn('cpu', [x], f))[0]!);
    assert.ok(d < TOL, `${k}×${k} s${s} ${pad}: max relative difference ${d}`);
  }
});

test('wasm has a Conv2DBackpropFilter that matches cpu (strides 1 and 2, same and valid, 1×1 3×3 7×7)', async () => {
  for (const [h, c, k, co, s, pad] of [
    [9, 5, 3, 7, 1, 'same'],
    [9, 5, 3, 7, 2, 'same'],
    [8, 4, 3, 6, 2, 'valid'],
    [8, 16, 1, 32, 2, 'valid'],
    [7, 2, 7, 1, 1, 'same'],
    [3, 4, 7, 5, 2, 'same'],
    [1, 6, 1, 4, 1, 'valid'],
  ] as const) {
    const x = input([2, h, h, c], 30);
    const w = input([k, k, c, co], 31);
    const f = (xt: tf.Tensor, wt: tf.Tensor) => {
      const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pad))),
      )([xt, wt]);
      return [gx!, gw!];
    };
    const got = await runOn('wasm', [x, w], f);
    const ref = await runOn('cpu', [x, w], f);
    for (const i of [0, 1]) {
      const d = maxRelDiff(got[i]!, ref[i]!);
      assert.ok(d < TOL, `x[2,${h},${h},${c}] ${k}×${k}→${co} s${s} ${pad} grad ${i}: difference ${d}`);
    }
  }
});

test('wasm matMul with transposeA (routed through an explicit transpose) matches cpu', async () => {
  for (const [sa, sb, ta, tb] of [
    [[6, 4], [6, 3], true, false],
    [[6, 4], [3, 6], true, true],
    [[2, 6, 4], [2, 6, 3], true, false],
  ] as [number[], number[], boolean, boolean][]) {
    const a = input(sa, 40);
    const b = input(sb, 41);
    const bias = input([3], 42);
    const f = (at: tf.Tensor, bt: tf.Tensor, biast: tf.Tensor) => [
      tf.matMul(at, bt, ta, tb),
      at.rank === 2
        ? tf.fused.matMul({
            a: at as tf.Tensor2D,
            b: bt as tf.Tensor2D,
            transposeA: ta,
            transposeB: tb,
            bias: biast,
            activation: 'relu',
          })
        : tf.zeros([1]),
    ];
    const got = await runOn('wasm', [a, b, bias], f);
    const ref = await runOn('cpu', [a, b, bias], f);
    for (const i of [0, 1]) assert.ok(maxRelDiff(got[i]!, ref[i]!) < TOL, `[${sa}]·[${sb}] output ${i}`);
  }
});
