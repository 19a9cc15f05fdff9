import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { buildBackbone } from '@mtlface/model';
import { input, randomValues, setup, setupWebgpu } from '@mtlface/backend/testing';

const SEED = Number(process.env.MTL_GRAD_SEED ?? 1000);

setup();
before(setupWebgpu);

// The model engineer's backbone (same design as ir50, narrow and small) through a whole
// training-mode forward and backward: every parameter's gradient on native and wasm must
// match the pure-JS cpu backend up to float rounding accumulated over the network.
test('whole-model gradients of the demo backbone match cpu on native, wasm and webgpu', async (t) => {
  await tf.setBackend('cpu');
  const model = buildBackbone({ arch: 'demo', inputSize: 32, dropout: 0 });
  model.train();
  // Fixed weights: the model's init draws from tf.random (unseeded), so every run tested another
  // network, and a failure could not be replayed. Draws whose BN channels have a mean far above
  // their spread exposed wasm's float32 running sums in Sum/Mean (1.08e-2 on a fresh clone, 3.4e-3
  // on seed 2014; 2.7e-4 there with the float64 reductions of registerWasmFixes). Seeded
  // Xavier-uniform, as the model's init: the same network every run (MTL_GRAD_SEED to try others).
  model.namedParameters().forEach(([, v], i) => {
    if (v.rank !== 4 && v.rank !== 2) return; // BN and PReLU start from constants already
    const [fanIn, fanOut] =
      v.rank === 4
        ? [v.shape[0]! * v.shape[1]! * v.shape[2]!, v.shape[0]! * v.shape[1]! * v.shape[3]!]
        : [v.shape[1]!, v.shape[0]!];
    const bound = Math.sqrt(6 / (fanIn + fanOut));
    tf.tidy(() => v.assign(tf.mul(tf.tensor(randomValues(v.size, SEED + i), v.shape), bound)));
  });
  // The embedding head ends in a BatchNorm1d over the batch, whose output for 2 samples is ±1
  // whatever the input: its gradients are rounding noise. Check everything up to the fsm split.
  const params = model.namedParameters().filter(([name]) => !name.startsWith('output_layer.'));
  const x = input([4, 32, 32, 3], 90);
  const target = input([4, 2, 2, 128], 91);

  const gradsOn = async (backend: string) => {
    assert.ok(await tf.setBackend(backend));
    const before = tf.memory().numTensors;
    const images = tf.tensor4d(x.values, x.shape as [number, number, number, number]);
    const t = tf.tensor(target.values, target.shape);
    const { grads, value } = tf.variableGrads(
      () => {
        const { xId, xAge } = model.forward(images);
        return tf.add(tf.sum(tf.mul(xId, t)), tf.sum(tf.square(xAge))) as tf.Scalar;
      },
      params.map(([, v]) => v),
    );
    const out = new Map<string, Float32Array>();
    for (const [name, v] of params) out.set(name, (await grads[v.name]!.data()) as Float32Array);
    const loss = (await value.data())[0]!;
    tf.dispose([images, t, value, ...Object.values(grads)]);
    assert.equal(tf.memory().numTensors, before, `${backend}: tensors leaked by a step`);
    return { out, loss };
  };

  const ref = await gradsOn('cpu');
  // Some gradients are ~0 by construction (a BN's shift feeding another BN), so they are pure
  // rounding noise; measure every difference against at least 1e-4 of the largest gradient.
  let globalScale = 0;
  for (const g of ref.out.values()) for (const v of g) globalScale = Math.max(globalScale, Math.abs(v));
  for (const backend of ['native', 'wasm', 'webgpu']) {
    const t0 = performance.now();
    const got = await gradsOn(backend);
    const ms = performance.now() - t0;
    assert.ok(
      Math.abs(got.loss - ref.loss) <= 1e-4 * (1 + Math.abs(ref.loss)),
      `${backend} loss ${got.loss} vs ${ref.loss}`,
    );
    let worst = 0;
    let worstName = '';
    for (const [name, g] of ref.out) {
      const h = got.out.get(name)!;
      let scale = 1e-4 * globalScale;
      let diff = 0;
      for (let i = 0; i < g.length; i++) {
        scale = Math.max(scale, Math.abs(g[i]!));
        diff = Math.max(diff, Math.abs(g[i]! - h[i]!));
      }
      // 1e-2: the fsm's channel attention normalises over the batch only (4 values per
      // channel), which amplifies the convolutions' summation-order rounding; a wrong
      // kernel is off by O(1).
      assert.ok(diff <= 1e-2 * scale, `${backend} ${name}: max |Δ| ${diff} vs max |g| ${scale}`);
      if (diff / scale > worst) [worst, worstName] = [diff / scale, name];
    }
    t.diagnostic(
      `${backend}: worst relative gradient difference ${worst.toExponential(2)} (${worstName}), step ${ms.toFixed(0)} ms`,
    );
  }
  model.dispose();
});
