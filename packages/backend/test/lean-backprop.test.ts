import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { randomValues, setup } from './helpers.js';
import { installLeanBackprop, leanBackpropStats, setLeanBackprop } from '../src/lean-backprop.js';

// The early-freeing backward walk against tfjs's own (the same engine with it switched off): the same
// gradients bit for bit, no tensor left behind, and a lower peak of live tensor bytes.
setup();
installLeanBackprop({});
await tf.setBackend('native');

/** Passes dy through as is (a gradient function returning its own dy). */
const passThrough = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const x = args[0] as tf.Tensor;
  return { value: tf.mul(x, 1), gradFunc: (dy: tf.Tensor) => [dy] };
});

/** A batch norm whose gradient is computed eagerly with full-size intermediates (as the model's). */
const norm = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const x = args[0] as tf.Tensor;
  const save = args[1] as tf.GradSaveFunc;
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  const inv = tf.rsqrt(tf.add(variance, 1e-5));
  const xh = tf.mul(tf.sub(x, mean), inv);
  save([xh, inv]);
  return {
    value: xh,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [h, i] = saved as [tf.Tensor, tf.Tensor];
      const c = tf.sub(dy, tf.mean(dy, [0, 1, 2]));
      return [tf.mul(tf.sub(c, tf.mul(h, tf.mean(tf.mul(dy, h), [0, 1, 2]))), i)];
    },
  };
});

const C = 8;
const vars = {
  w1: tf.variable(tf.tensor4d(randomValues(9 * 3 * C, 1), [3, 3, 3, C]), true, 'lean.w1'),
  w2: tf.variable(tf.tensor4d(randomValues(9 * C * C, 2), [3, 3, C, C]), true, 'lean.w2'),
  alpha: tf.variable(tf.fill([C], 0.25), true, 'lean.alpha'),
  bias: tf.variable(tf.tensor1d(randomValues(C, 3)), true, 'lean.bias'),
  head: tf.variable(tf.tensor2d(randomValues(C * 10, 4), [C, 10]), true, 'lean.head'),
};
const x = tf.tensor4d(randomValues(4 * 16 * 16 * 3, 5), [4, 16, 16, 3]);

function loss(): tf.Scalar {
  const h1 = tf.prelu(norm(tf.conv2d(x, vars.w1, 1, 'same')), vars.alpha);
  const h2 = tf.add(passThrough(norm(tf.conv2d(h1, vars.w2, 1, 'same'))), h1); // residual: two uses of h1
  const pooled = tf.reshape(tf.mean(tf.add(h2, vars.bias), [1, 2]), [4, C]);
  // Slice, PadV2, Sum, AddN: kernels whose saved inputs become shape-only stand-ins.
  const border = tf.pad(tf.slice(h2, [0, 1, 1, 0], [4, 14, 14, C]), [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]);
  const rim = tf.sum(tf.addN([border, h1, h2]), [1, 2]);
  return tf.add(tf.mean(tf.square(tf.matMul(pooled, vars.head))), tf.mean(tf.mul(rim, 1e-3)));
}

/** Gradients of loss() for every variable, the tensor count after, and the peak of live bytes. */
async function run(
  lean: boolean,
): Promise<{ grads: Map<string, Float32Array>; leaked: number; peak: number }> {
  setLeanBackprop(lean);
  const before = tf.memory().numTensors;
  const grads = new Map<string, Float32Array>();
  const info = await tf.profile(() => {
    const { value, grads: g } = tf.variableGrads(loss);
    for (const [k, t] of Object.entries(g)) grads.set(k, t.dataSync().slice() as Float32Array);
    tf.dispose([value, ...Object.values(g)]);
  });
  return { grads, leaked: tf.memory().numTensors - before, peak: info.peakBytes };
}

test('lean backward gives bit-identical gradients, frees early, leaks nothing', async () => {
  const stock = await run(false);
  const s0 = leanBackpropStats();
  const lean = await run(true);
  const s1 = leanBackpropStats();
  setLeanBackprop(true);
  assert.equal(stock.leaked, 0);
  assert.equal(lean.leaked, 0);
  assert.deepEqual(
    [...lean.grads.keys()].sort(),
    Object.values(vars)
      .map((v) => v.name)
      .sort(),
  );
  for (const [k, g] of stock.grads) assert.deepEqual(lean.grads.get(k), g, k);
  assert.ok(s1.disposed - s0.disposed > 10, `disposed early: ${s1.disposed - s0.disposed}`);
  assert.ok(lean.peak < stock.peak, `peak bytes lean ${lean.peak} vs stock ${stock.peak}`);
});

test('higher-order gradients and gradients of intermediates are those of the stock walk', () => {
  const results = [false, true].map((lean) => {
    setLeanBackprop(lean);
    const before = tf.memory().numTensors;
    // d²/da² of sum(prelu(a·w)²) through a nested tape: nothing may be freed while it records.
    const second = tf.grad((a: tf.Tensor) => tf.grad((b: tf.Tensor) => tf.sum(tf.square(tf.mul(b, b))))(a));
    const a = tf.tensor1d([0.5, -1.5, 2]);
    const g2 = second(a);
    // The gradient w.r.t. an intermediate that is also an output of a node on the path.
    const { grads } = tf.tidy(() => {
      const inter = tf.mul(a, 3);
      const r = tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(tf.exp(u), v)));
      return { grads: r([inter, a]) };
    });
    const out = [g2.dataSync().slice(), ...grads.map((t) => t.dataSync().slice())];
    tf.dispose([a, g2, ...grads]);
    assert.equal(tf.memory().numTensors, before, `lean=${lean}: tensors left`);
    return out;
  });
  setLeanBackprop(true);
  assert.deepEqual(results[1], results[0]);
  // and the second derivative is the float64 one: d²/da² Σ a⁴ = 12a²
  assert.deepEqual(
    Array.from(results[0]![0]!),
    [0.5, -1.5, 2].map((v) => Math.fround(12 * v * v)),
  );
});
