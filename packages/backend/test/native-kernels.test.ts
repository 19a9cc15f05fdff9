import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { input, maxRelDiff, runOn, setup } from './helpers.js';
import type { Input } from './helpers.js';

setup();

interface ConvCase {
  n: number;
  h: number;
  w: number;
  c: number;
  k: number;
  co: number;
  s: number;
  pad: 'same' | 'valid' | number;
}

// 1×1, 3×3, 7×7; strides 1 and 2; same/valid/explicit; tiny spatial sizes (down to 1×1
// and a filter larger than the image with 'same'); odd sizes that leave stride remainders.
const cases: ConvCase[] = [
  { n: 2, h: 9, w: 9, c: 5, k: 3, co: 7, s: 1, pad: 'same' },
  { n: 2, h: 9, w: 9, c: 5, k: 3, co: 7, s: 2, pad: 'same' },
  { n: 3, h: 8, w: 6, c: 4, k: 3, co: 6, s: 2, pad: 'valid' },
  { n: 1, h: 7, w: 7, c: 3, k: 3, co: 8, s: 1, pad: 'valid' },
  { n: 2, h: 8, w: 8, c: 16, k: 1, co: 32, s: 2, pad: 'valid' },
  { n: 2, h: 5, w: 5, c: 8, k: 1, co: 8, s: 1, pad: 'same' },
  { n: 2, h: 7, w: 7, c: 2, k: 7, co: 1, s: 1, pad: 'same' },
  { n: 1, h: 11, w: 9, c: 2, k: 7, co: 3, s: 2, pad: 'valid' },
  { n: 2, h: 3, w: 3, c: 4, k: 7, co: 5, s: 2, pad: 'same' },
  { n: 4, h: 1, w: 1, c: 6, k: 1, co: 4, s: 1, pad: 'valid' },
  { n: 2, h: 2, w: 2, c: 3, k: 3, co: 2, s: 2, pad: 'same' },
  { n: 2, h: 6, w: 6, c: 3, k: 3, co: 4, s: 1, pad: 1 },
  { n: 2, h: 14, w: 14, c: 64, k: 3, co: 64, s: 2, pad: 'same' },
];

// Random extra shapes, seeded so a failure reproduces.
for (let i = 0; i < 12; i++) {
  const r = (lo: number, hi: number) => lo + ((i * 7919 + hi * 104729 + lo * 31) % (hi - lo + 1));
  const k = [1, 3, 7][i % 3]!;
  const pad = i % 4 < 2 ? 'same' : 'valid';
  // 'valid' needs the filter to fit: such a shape grows to the filter's size instead of being dropped.
  const fit = (x: number) => (pad === 'valid' ? Math.max(x, k) : x);
  cases.push({
    n: r(1, 3),
    h: fit(r(1, 12)),
    w: fit(r(1, 12)),
    c: r(1, 9),
    k,
    co: r(1, 9),
    s: 1 + (i % 2),
    pad,
  });
}

const name = (c: ConvCase) => `x[${c.n},${c.h},${c.w},${c.c}] ${c.k}×${c.k}→${c.co} s${c.s} ${c.pad}`;
const TOL = 2e-5;

test('every conv shape listed runs (none is dropped for not fitting)', () => {
  assert.equal(cases.length, 25);
  for (const c of cases) if (c.pad === 'valid') assert.ok(c.h >= c.k && c.w >= c.k, name(c));
});

for (const c of cases) {
  test(`Conv2D and its gradients match cpu: ${name(c)}`, async () => {
    const x = input([c.n, c.h, c.w, c.c], 1);
    const w = input([c.k, c.k, c.c, c.co], 2);
    const info = tf.backend_util.computeConv2DInfo(
      [c.n, c.h, c.w, c.c],
      [c.k, c.k, c.c, c.co],
      c.s,
      1,
      c.pad,
    );
    const up = input(info.outShape, 3);
    const f = (xt: tf.Tensor, wt: tf.Tensor, upt: tf.Tensor) => {
      const conv = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad);
      const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a, b), upt)))([xt, wt]);
      return [conv(xt, wt), gx!, gw!];
    };
    const ref = await runOn('cpu', [x, w, up], f);
    const got = await runOn('native', [x, w, up], f);
    for (const [i, what] of ['y', 'dx', 'dw'].entries()) {
      const d = maxRelDiff(got[i]!, ref[i]!);
      assert.ok(d < TOL, `${what}: max relative difference ${d}`);
    }
  });
}

test('FusedConv2D with bias and relu / prelu matches cpu, including its gradients', async () => {
  const x = input([2, 6, 6, 4], 4);
  const w = input([3, 3, 4, 5], 5);
  const b = input([5], 6);
  const alpha = input([5], 7);
  for (const activation of ['linear', 'relu', 'prelu', 'sigmoid'] as const) {
    const f = (xt: tf.Tensor, wt: tf.Tensor, bt: tf.Tensor, at: tf.Tensor) => {
      const conv = (a: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        tf.fused.conv2d({
          x: a as tf.Tensor4D,
          filter: ww as tf.Tensor4D,
          strides: 1,
          pad: 'same',
          bias: bb,
          activation,
          preluActivationWeights: activation === 'prelu' ? at : undefined,
        });
      const [gx, gw, gb] = tf.grads((a: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.square(conv(a, ww, bb))),
      )([xt, wt, bt]);
      return [conv(xt, wt, bt), gx!, gw!, gb!];
    };
    const ref = await runOn('cpu', [x, w, b, alpha], f);
    const got = await runOn('native', [x, w, b, alpha], f);
    for (let i = 0; i < ref.length; i++) {
      const d = maxRelDiff(got[i]!, ref[i]!);
      assert.ok(d < TOL, `${activation} output ${i}: max relative difference ${d}`);
    }
  }
});

test('BatchMatMul and _FusedMatMul match cpu for every transpose, batch broadcasting, bias and activation', async () => {
  const shapes: [number[], number[], boolean, boolean][] = [
    [[4, 5], [5, 3], false, false],
    [[5, 4], [5, 3], true, false],
    [[4, 5], [3, 5], false, true],
    [[5, 4], [3, 5], true, true],
    [[3, 4, 5], [3, 5, 6], false, false],
    [[3, 5, 4], [1, 5, 6], true, false],
    [[1, 4, 5], [2, 6, 5], false, true],
    [[2, 3, 4, 5], [2, 3, 5, 2], false, false],
    [[1, 1], [1, 1], false, false],
    [[33, 65], [65, 17], false, false],
  ];
  for (const [sa, sb, ta, tb] of shapes) {
    const a = input(sa, 8);
    const b = input(sb, 9);
    const n = tb ? sb[sb.length - 2]! : sb[sb.length - 1]!;
    const bias = input([n], 10);
    const f = (at: tf.Tensor, bt: tf.Tensor, biast: tf.Tensor) => {
      // tfjs's BatchMatMul gradient does not reduce broadcast batches; only check it without broadcasting.
      const sameBatch = sa.slice(0, -2).join() === sb.slice(0, -2).join();
      const [ga, gb] = sameBatch
        ? tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, ta, tb))))([at, bt])
        : [tf.zeros([1]), tf.zeros([1])];
      const fused =
        at.rank === 2 && bt.rank === 2
          ? tf.fused.matMul({
              a: at as tf.Tensor2D,
              b: bt as tf.Tensor2D,
              transposeA: ta,
              transposeB: tb,
              bias: biast,
              activation: 'relu',
            })
          : tf.matMul(at, bt, ta, tb);
      return [tf.matMul(at, bt, ta, tb), ga!, gb!, fused];
    };
    const ref = await runOn('cpu', [a, b, bias], f);
    const got = await runOn('native', [a, b, bias], f);
    for (let i = 0; i < ref.length; i++) {
      const d = maxRelDiff(got[i]!, ref[i]!);
      assert.ok(d < TOL, `[${sa}]·[${sb}] ta=${ta} tb=${tb} output ${i}: max relative difference ${d}`);
    }
  }
});

test('native keeps every cpu kernel, and convolutions reuse cached primitives', async () => {
  const cpu = new Set(tf.getKernelsForBackend('cpu').map((k) => k.kernelName));
  const native = new Set(tf.getKernelsForBackend('native').map((k) => k.kernelName));
  assert.deepEqual(
    [...cpu].filter((k) => !native.has(k)),
    [],
  );
  const { loadDnnlAddon } = await import('../src/index.js');
  const addon = loadDnnlAddon().addon!;
  const x: Input = input([2, 10, 10, 3], 11);
  const w: Input = input([3, 3, 3, 4], 12);
  const f = (xt: tf.Tensor, wt: tf.Tensor) => [tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, 1, 'same')];
  await runOn('native', [x, w], f);
  const size = addon.cacheSize();
  await runOn('native', [x, w], f);
  assert.equal(addon.cacheSize(), size);
});
