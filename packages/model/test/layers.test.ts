import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import {
  BatchNorm,
  SpectralNormConv2d,
  adaptiveBins,
  adaptivePoolFlat,
  convWeightMatrix,
  cosFaceLogits,
  gradientReversal,
  routerMasks,
  routerStarts,
  routerWidth,
  upsampleBilinear2x,
  dexAge,
  crossEntropy,
  buildBackbone,
  CosFace,
  AgeEstimation,
  cosFaceLoss,
  ageLoss,
  withInitSeeds,
} from '@mtlface/model';
import { maxAbsDiff, useCpu } from './helpers.js';

await useCpu();

test('adaptive bins on 7 follow PyTorch: overlapping 2- and 3-bins', () => {
  assert.deepEqual(adaptiveBins(7, 1), [[0, 7]]);
  assert.deepEqual(adaptiveBins(7, 2), [
    [0, 4],
    [3, 7],
  ]);
  assert.deepEqual(adaptiveBins(7, 3), [
    [0, 3],
    [2, 5],
    [4, 7],
  ]);
});

test('adaptive avg/max pooling of a 7×7 map equals brute force over the bins, flattened (C,H,W)', () => {
  const [h, w, c] = [7, 7, 2];
  const vals = Float32Array.from({ length: h * w * c }, (_, i) => Math.sin(i * 1.7) * 10);
  const x = tf.tensor4d(vals, [1, h, w, c]);
  for (const n of [1, 2, 3]) {
    for (const mode of ['avg', 'max'] as const) {
      const got = adaptivePoolFlat(x, n, mode);
      const want: number[] = [];
      for (let ch = 0; ch < c; ch++) {
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            const r0 = Math.floor((i * h) / n),
              r1 = Math.ceil(((i + 1) * h) / n);
            const c0 = Math.floor((j * w) / n),
              c1 = Math.ceil(((j + 1) * w) / n);
            const cell: number[] = [];
            for (let r = r0; r < r1; r++)
              for (let q = c0; q < c1; q++) cell.push(vals[(r * w + q) * c + ch]!);
            want.push(mode === 'max' ? Math.max(...cell) : cell.reduce((a, b) => a + b, 0) / cell.length);
          }
        }
      }
      assert.ok(maxAbsDiff(got.dataSync(), want) < 1e-5, `${mode} ${n}`);
      got.dispose();
    }
  }
  x.dispose();
});

test('router: width 819, starts 0,115,…,690, 128 ones per group, neighbours share 13 channels, 818 unused', () => {
  const shape = { groups: 7, unitCount: 128, sigma: 0.1 };
  assert.equal(routerWidth(shape), 819);
  assert.deepEqual(routerStarts(shape), [0, 115, 230, 345, 460, 575, 690]);
  const m = routerMasks(shape);
  const row = (k: number) => m.subarray(k * 819, (k + 1) * 819);
  for (let k = 0; k < 7; k++) {
    assert.equal(
      row(k).reduce((a, b) => a + b, 0),
      128,
    );
    assert.equal(row(k)[115 * k], 1);
    assert.equal(row(k)[115 * k + 127], 1);
    if (k < 6) {
      let shared = 0;
      for (let i = 0; i < 819; i++) shared += row(k)[i]! * row(k + 1)[i]!;
      assert.equal(shared, 13);
    }
  }
  for (let k = 0; k < 7; k++) assert.equal(row(k)[818], 0);
});

test('gradient reversal: identity forward, gradient = −coeff × upstream', () => {
  const x = tf.tensor1d([1, -2, 3]);
  const up = tf.tensor1d([0.5, 2, -1]);
  const coeff = 0.7;
  const y = gradientReversal(x, coeff);
  assert.deepEqual([...y.dataSync()], [1, -2, 3]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gradientReversal(t, coeff), up)))(x);
  assert.ok(maxAbsDiff(g.dataSync(), [-0.35, -1.4, 0.7]) < 1e-6);
  tf.dispose([x, up, y, g]);
});

test('spectral norm: power iterations converge to σ(W/σ) = 1 on a matrix with known singular values', () => {
  // 1×1 conv 3→2: weight matrix [[3,0,0],[0,1,0]] has σ_max = 3
  const sn = new SpectralNormConv2d(3, 2, 1, 1, 0);
  sn.weightOrig.assign(tf.tensor4d([3, 0, 0, 1, 0, 0], [1, 1, 3, 2]));
  for (let i = 0; i < 30; i++) sn.powerIteration();
  const sigma = sn.sigma();
  assert.ok(Math.abs(sigma.dataSync()[0]! - 3) < 1e-4);
  const wn = sn.weight();
  const m = convWeightMatrix(wn);
  // largest singular value of W/σ: sqrt of the largest eigenvalue of M Mᵀ (2×2 here)
  const [a, b, , d] = tf.matMul(m, m, false, true).dataSync();
  const lmax = (a! + d! + Math.sqrt((a! - d!) ** 2 + 4 * b! * b!)) / 2;
  assert.ok(Math.abs(Math.sqrt(lmax) - 1) < 1e-4);
  tf.dispose([sigma, wn, m]);
  sn.dispose();
});

test('spectral norm updates u and v in training forward only', () => {
  const sn = new SpectralNormConv2d(2, 3, 3, 1, 1);
  const x = tf.randomNormal([1, 4, 4, 2], 0, 1, 'float32', 5);
  const u0 = sn.weightU.dataSync().slice();
  sn.eval();
  tf.tidy(() => sn.forward(x));
  assert.deepEqual(sn.weightU.dataSync(), u0);
  sn.train();
  tf.tidy(() => sn.forward(x));
  assert.ok(maxAbsDiff(sn.weightU.dataSync(), u0) > 1e-6);
  x.dispose();
  sn.dispose();
});

test('CosFace logits on a hand-computed case', () => {
  const emb = tf.tensor2d([
    [3, 4],
    [1, 0],
  ]);
  const w = tf.tensor2d([
    [1, 0],
    [0, 2],
    [-1, -1],
  ]);
  const logits = cosFaceLogits(emb, w, tf.tensor1d([1, 2], 'int32'), 64, 0.35);
  const r = Math.SQRT1_2;
  const want = [64 * 0.6, 64 * (0.8 - 0.35), 64 * (-0.6 - 0.8) * r, 64 * 1, 0, 64 * (-r - 0.35)];
  assert.ok(maxAbsDiff(logits.dataSync(), want) < 1e-4);
  tf.dispose([emb, w, logits]);
});

test('DEX age is the softmax expectation and cross-entropy matches −log p', () => {
  const logits = tf.tensor2d([[0, Math.log(3), -Infinity]]);
  assert.ok(Math.abs(dexAge(logits).dataSync()[0]! - 0.75) < 1e-6);
  const ce = crossEntropy(tf.tensor2d([[1, 2, 3]]), tf.tensor1d([0], 'int32'));
  const p0 = Math.exp(1) / (Math.exp(1) + Math.exp(2) + Math.exp(3));
  assert.ok(Math.abs(ce.dataSync()[0]! + Math.log(p0)) < 1e-5);
});

for (const momentum of [0.1, 0.01]) {
  test(`batch norm (momentum ${momentum}) updates running stats PyTorch's way in training and freezes them in eval`, () => {
    const bn = new BatchNorm(2, { momentum });
    const vals = [1, 10, 2, 20, 4, 30, 5, 60];
    const x = tf.tensor2d(vals, [4, 2]);
    const y = bn.forward(x);
    const ch0 = [1, 2, 4, 5],
      ch1 = [10, 20, 30, 60];
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const varU = (a: number[]) => a.reduce((s, v) => s + (v - mean(a)) ** 2, 0) / (a.length - 1);
    const varB = (a: number[]) => (varU(a) * (a.length - 1)) / a.length;
    const m = momentum;
    assert.ok(maxAbsDiff(bn.runningMean.dataSync(), [m * mean(ch0), m * mean(ch1)]) < 1e-5);
    assert.ok(maxAbsDiff(bn.runningVar.dataSync(), [1 - m + m * varU(ch0), 1 - m + m * varU(ch1)]) < 1e-4);
    assert.equal(bn.numBatchesTracked.dataSync()[0], 1);
    const wantY = vals.map((v, i) => {
      const ch = i % 2 === 0 ? ch0 : ch1;
      return (v - mean(ch)) / Math.sqrt(varB(ch) + 1e-5);
    });
    assert.ok(maxAbsDiff(y.dataSync(), wantY) < 1e-4);
    bn.eval();
    const rm = bn.runningMean.dataSync().slice();
    const ye = bn.forward(x);
    assert.deepEqual(bn.runningMean.dataSync(), rm);
    assert.equal(bn.numBatchesTracked.dataSync()[0], 1);
    const rv = bn.runningVar.dataSync();
    assert.ok(Math.abs(ye.dataSync()[0]! - (1 - rm[0]!) / Math.sqrt(rv[0]! + 1e-5)) < 1e-4);
    tf.dispose([x, y, ye]);
    bn.dispose();
  });
}

test('bilinear ×2 with half-pixel centres matches the PyTorch formula and its gradient is the adjoint', () => {
  const x = tf.tensor4d([1, 2, 4, 8, 16, 32], [1, 2, 3, 1]);
  const y = upsampleBilinear2x(x);
  assert.deepEqual(y.shape, [1, 4, 6, 1]);
  // PyTorch align_corners=False: src = (dst + 0.5)/2 − 0.5, clamped at 0, neighbours clamped at the edge
  const src = (d: number, n: number) => {
    const s = Math.max((d + 0.5) / 2 - 0.5, 0);
    const i0 = Math.floor(s);
    return [i0, Math.min(i0 + 1, n - 1), s - i0] as const;
  };
  const xv = [1, 2, 4, 8, 16, 32];
  const want: number[] = [];
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 6; c++) {
      const [r0, r1, lr] = src(r, 2);
      const [c0, c1, lc] = src(c, 3);
      const at = (i: number, j: number) => xv[i * 3 + j]!;
      want.push(
        (1 - lr) * ((1 - lc) * at(r0, c0) + lc * at(r0, c1)) + lr * ((1 - lc) * at(r1, c0) + lc * at(r1, c1)),
      );
    }
  }
  assert.ok(maxAbsDiff(y.dataSync(), want) < 1e-5);
  // adjoint test: <U x, g> = <x, Uᵀ g>
  const g = tf.randomNormal([1, 4, 6, 1], 0, 1, 'float32', 6);
  const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(upsampleBilinear2x(t as tf.Tensor4D), g)))(x);
  const lhs = tf.sum(tf.mul(y, g)).dataSync()[0]!;
  const rhs = tf.sum(tf.mul(x, dx)).dataSync()[0]!;
  assert.ok(Math.abs(lhs - rhs) < 1e-4);
});

test('numerical gradient check of a small backbone + CosFace + age estimation (train-mode BN, no dropout)', () => {
  // Seeded, so that a failure can be replayed: MTL_TEST_SEED=<the seed in the message>.
  const seed = Number(process.env.MTL_TEST_SEED ?? 11);
  let s = seed >>> 0;
  const next = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const { b, head, est } = withInitSeeds(next, () => ({
    b: buildBackbone({
      arch: 'demo',
      widths: [16, 16, 16, 16],
      inputSize: 16,
      dropout: 0,
      embeddingSize: 8,
    }),
    head: new CosFace(8, 5, 4, 0.35),
    est: new AgeEstimation({ channels: 16, inputSize: 16, groups: 3, hidden: 8 }),
  }));
  const x = tf.randomUniform([3, 16, 16, 3], -1, 1, 'float32', seed);
  const labels = tf.tensor1d([0, 3, 4], 'int32');
  const ages = tf.tensor1d([20, 45, 61]);
  const groups = tf.tensor1d([0, 1, 2], 'int32');
  const loss = () =>
    tf.tidy(() => {
      const f = b.forward(x);
      const { ageLogits, groupLogits } = est.forward(f.xAge);
      return tf.add(
        cosFaceLoss(head.forward(f.embedding, labels), labels),
        tf.mul(ageLoss(ageLogits, groupLogits, ages, groups), 0.01),
      ) as tf.Scalar;
    });
  const named = new Map([
    ...b.namedParameters(),
    ...head.namedParameters('head'),
    ...est.namedParameters('est'),
  ]);
  const checked = [
    'input_layer.0.weight',
    'block2.0.res_layer.4.weight',
    'block3.0.res_layer.3.weight',
    'fsm.channel.0.weight',
    'fsm.spatial.0.weight',
    'output_layer.3.weight',
    'head.weight',
    'est.age_output_layer.0.weight',
    'est.age_output_layer.4.weight',
    'est.group_output_layer.bias',
  ];
  const { grads, value } = tf.variableGrads(
    loss,
    checked.map((n) => named.get(n)!),
  );
  value.dispose();
  for (const name of checked) {
    const v = named.get(name)!;
    const g = grads[v.name]!.dataSync();
    const orig = v.dataSync().slice();
    // probe the coordinates with the largest analytic gradient (well above float32 noise)
    const idx = [...g.keys()].sort((i, j) => Math.abs(g[j]!) - Math.abs(g[i]!)).slice(0, 2);
    for (const i of idx) {
      const h = 1e-3;
      const at = (delta: number) => {
        const w = orig.slice();
        w[i]! += delta;
        tf.tidy(() => v.assign(tf.tensor(w, v.shape)));
        const l = loss();
        const out = l.dataSync()[0]!;
        l.dispose();
        return out;
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      tf.tidy(() => v.assign(tf.tensor(orig, v.shape)));
      const rel = Math.abs(numeric - g[i]!) / Math.max(Math.abs(g[i]!), 1e-2);
      assert.ok(rel < 0.05, `${name}[${i}]: analytic ${g[i]} numeric ${numeric} (seed ${seed})`);
    }
  }
  tf.dispose(Object.values(grads));
  tf.dispose([x, labels, ages, groups]);
  b.dispose();
  head.dispose();
  est.dispose();
});
