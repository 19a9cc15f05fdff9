import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { BatchNorm } from '@mtlface/model';
import { input, runOn, setup } from '@mtlface/backend/testing';
import type { Input } from '@mtlface/backend/testing';

setup();

// Op by op, the training paths the backbone uses now (reshape+slice stride subsampling, the
// batch norm's customGrad backward, strided and 1×1 convolutions, PReLU, channel max, and the
// Sum/Mean reductions under the BN statistics), each forward and gradient on wasm against cpu.
// The last is what the whole-model test's rare 1% differences were traced to.
const TOL = 2e-5;

/** max |a−b| over max |b|: summation-order rounding is relative to the largest value. */
function relToMax(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return Number.isNaN(d) ? Infinity : d / Math.max(m, 1e-30);
}

async function compare(what: string, inputs: Input[], f: (...xs: tf.Tensor[]) => tf.Tensor[]) {
  const got = await runOn('wasm', inputs, f);
  const ref = await runOn('cpu', inputs, f);
  assert.equal(got.length, ref.length);
  got.forEach((g, i) => {
    const d = relToMax(g, ref[i]!);
    assert.ok(d < TOL, `${what} output ${i}: wasm vs cpu ${d}`);
  });
}

test('wasm: stride subsampling by reshape + slice, and its gradient, match cpu', async () => {
  await compare('subsample', [input([4, 8, 8, 16], 40), input([4, 4, 4, 16], 41)], (x, dy) => {
    const f = (a: tf.Tensor) =>
      tf.reshape(
        tf.slice(tf.reshape(a, [4, 4, 2, 4, 2, 16]), [0, 0, 0, 0, 0, 0], [4, 4, 1, 4, 1, 16]),
        [4, 4, 4, 16],
      );
    return [f(x!), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), dy!)))(x!)];
  });
});

test('wasm: training batch norm (customGrad backward) matches cpu for NHWC and [N,C] with 4 values per channel', async () => {
  for (const shape of [
    [4, 4, 4, 16],
    [4, 1, 1, 32],
    [4, 32],
  ]) {
    const c = shape[shape.length - 1]!;
    await compare(
      `bn [${shape}]`,
      [input(shape, 50), input([c], 51), input([c], 52), input(shape, 53)],
      (x, w, b, dy) => {
        const bn = new BatchNorm(c);
        bn.weight.assign(w!);
        bn.bias.assign(b!);
        const xv = tf.variable(x!);
        const { grads, value } = tf.variableGrads(
          () => tf.sum(tf.mul(bn.forward(xv), dy!)) as tf.Scalar,
          [xv, bn.weight, bn.bias],
        );
        const out = [bn.forward(x!), grads[xv.name]!, grads[bn.weight.name]!, grads[bn.bias.name]!].map((t) =>
          t.clone(),
        );
        tf.dispose([xv, value, ...Object.values(grads)]);
        bn.dispose();
        return out;
      },
    );
  }
});

test('wasm: the backbone convolutions (3×3 s1/s2, 1×1 s2 shortcut, 7×7 spatial, 1×1 on [N,1,1,C]) and both gradients match cpu', async () => {
  for (const [xs, ws, s, p] of [
    [[4, 32, 32, 3], [3, 3, 3, 8], 1, 1],
    [[4, 16, 16, 8], [3, 3, 8, 8], 2, 1],
    [[4, 8, 8, 16], [1, 1, 16, 32], 2, 0],
    [[4, 2, 2, 2], [7, 7, 2, 1], 1, 3],
    [[4, 1, 1, 1792], [1, 1, 1792, 112], 1, 0],
  ] as const) {
    const oh = Math.floor((xs[1] + 2 * p - ws[0]) / s) + 1;
    const ow = Math.floor((xs[2] + 2 * p - ws[1]) / s) + 1;
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [
      [0, 0],
      [p, p],
      [p, p],
      [0, 0],
    ];
    await compare(
      `conv x[${xs}] w[${ws}] s${s} p${p}`,
      [input([...xs], 60), input([...ws], 61), input([xs[0], oh, ow, ws[3]], 62)],
      (x, w, dy) => {
        const conv = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pad);
        const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a, b), dy!)))([x!, w!]);
        return [conv(x!, w!), gx!, gw!];
      },
    );
  }
});

test('wasm: PReLU and channel-max gradients match cpu', async () => {
  await compare(
    'prelu',
    [input([4, 8, 8, 16], 70), input([16], 71), input([4, 8, 8, 16], 72)],
    (x, a, dy) => {
      const [gx, ga] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.prelu(p, q), dy!)))([
        x!,
        a!,
      ]);
      return [tf.prelu(x!, a!), gx!, ga!];
    },
  );
  await compare('max over channels', [input([4, 2, 2, 64], 73), input([4, 2, 2, 1], 74)], (x, dy) => [
    tf.grad((p: tf.Tensor) => tf.sum(tf.mul(tf.max(p, 3, true), dy!)))(x!),
  ]);
});

test('wasm Sum and Mean of float32 are accurate over a batch norm’s N·H·W values (float64 accumulation), all axis sets', async () => {
  // mean 10, spread 0.006: float32 running sums (wasm’s own kernels) were 1.7e-6 off, 0.3% of the
  // spread; 5e-7 is half an ulp at 10
  const x = input([4, 32, 32, 16], 80);
  const shifted = { shape: x.shape, values: x.values.map((v) => 10 + 0.01 * v) };
  let exact = 0;
  for (let i = 0; i < shifted.values.length; i += 16) exact += shifted.values[i]!;
  const [m] = await runOn('wasm', [shifted], (t) => [tf.mean(t, [0, 1, 2])]);
  assert.ok(Math.abs(m![0]! - exact / 4096) < 5e-7, `mean ${m![0]} vs ${exact / 4096}`);
  for (const [axis, keepDims] of [
    [[0, 1, 2], false],
    [[0, 1, 2], true],
    [3, false],
    [[1, 2], true],
    [[0, 3], false],
    [null, false],
  ] as const) {
    await compare(`sum/mean axis ${String(axis)} keepDims ${keepDims}`, [shifted], (t) => {
      const ax = axis === null ? undefined : [axis].flat();
      return [tf.sum(t, ax, keepDims), tf.mean(t, ax, keepDims)];
    });
  }
  const ints = { shape: [2, 3], values: Float32Array.of(1, 2, 3, 4, 5, 6) };
  const [s] = await runOn('wasm', [ints], (t) => [tf.sum(tf.cast(t, 'int32'), 1)]);
  assert.deepEqual(Array.from(s!), [6, 15]);
});
