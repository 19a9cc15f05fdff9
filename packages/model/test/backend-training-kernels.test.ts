// The native backend's single-pass BatchNorm (training mode), BatchNorm → PReLU and PReLU-backward
// kernels, through the model's layers: forward, every gradient and the running statistics bit for
// bit against the composite ops they replace (the same backend without the kernels), and against a
// float64 reference written here from the definitions and the cpu backend's composite.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { BatchNorm, PReLU, Sequential } from '@mtlface/model';
import { TRAINING_KERNELS } from '@mtlface/backend';
import { randomValues, setup } from '@mtlface/backend/testing';

setup();

/** Runs `fn` on `native` without the training kernels: the composite ops they replace. */
async function composite<T>(fn: () => Promise<T>): Promise<T> {
  const saved = Object.values(TRAINING_KERNELS).map((k) => tf.getKernel(k, 'native')!);
  for (const k of saved) tf.unregisterKernel(k.kernelName, 'native');
  try {
    return await fn();
  } finally {
    for (const k of saved) tf.registerKernel(k);
  }
}

/** Every float32 of `a` has the bits of `b`'s. */
function assertSameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  const x = Float32Array.from(a);
  const y = Float32Array.from(b);
  const ux = new Uint32Array(x.buffer);
  const uy = new Uint32Array(y.buffer);
  assert.equal(ux.length, uy.length, what);
  const bad = ux.findIndex((v, i) => v !== uy[i]);
  assert.equal(bad, -1, `${what}: [${bad}] ${x[bad]} vs ${y[bad]}`);
}

/** max |a − b| / max(|b|, floor): the error relative to the reference's scale. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  assert.equal(a.length, b.length);
  let scale = floor;
  let err = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < b.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
  return err / scale;
}

interface BnResult {
  y: Float64Array | Float32Array;
  dx: Float64Array | Float32Array;
  dw: Float64Array | Float32Array;
  db: Float64Array | Float32Array;
  runningMean: Float64Array | Float32Array;
  runningVar: Float64Array | Float32Array;
}

/** Training-mode batch norm in float64 over x viewed as [n, C]; loss = Σ y·t (so dy = t). */
function bnReference(
  x: Float32Array,
  w: Float32Array,
  b: Float32Array,
  t: Float32Array,
  C: number,
  eps: number,
  momentum: number,
): BnResult {
  const n = x.length / C;
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let i = 0; i < x.length; i++) mean[i % C]! += x[i]! / n;
  for (let i = 0; i < x.length; i++) variance[i % C]! += (x[i]! - mean[i % C]!) ** 2 / n;
  const inv = variance.map((v) => 1 / Math.sqrt(v + eps));
  const xh = new Float64Array(x.length);
  const y = new Float64Array(x.length);
  const dw = new Float64Array(C);
  const db = new Float64Array(C);
  for (let i = 0; i < x.length; i++) {
    const c = i % C;
    xh[i] = (x[i]! - mean[c]!) * inv[c]!;
    y[i] = xh[i]! * w[c]! + b[c]!;
    dw[c]! += t[i]! * xh[i]!;
    db[c]! += t[i]!;
  }
  const dx = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % C;
    // d/dx of Σ t·(x̂·w + b): w·inv·(t − mean(t) − x̂·mean(t·x̂))
    dx[i] = w[c]! * inv[c]! * (t[i]! - db[c]! / n - (xh[i]! * dw[c]!) / n);
  }
  return {
    y,
    dx,
    dw,
    db,
    runningMean: mean.map((m) => momentum * m),
    runningVar: variance.map((v) => (1 - momentum) * 1 + (momentum * v * n) / (n - 1)),
  };
}

/** One training forward + backward of the model's BatchNorm on `backend`; the kernels it ran. */
async function bnOn(
  backend: string,
  shape: number[],
  x: Float32Array,
  w: Float32Array,
  b: Float32Array,
  t: Float32Array,
): Promise<BnResult & { kernels: string[] }> {
  assert.ok(await tf.setBackend(backend));
  const bn = new BatchNorm(shape[shape.length - 1]!);
  bn.train();
  bn.weight.assign(tf.tensor1d(w));
  bn.bias.assign(tf.tensor1d(b));
  const before = tf.memory().numTensors;
  const xv = tf.tidy(() => tf.variable(tf.tensor(x, shape)));
  const ts = tf.tensor(t, shape);
  let r: BnResult | undefined;
  const info = await tf.profile(() => {
    tf.tidy(() => {
      let y: Float32Array | undefined;
      const { grads } = tf.variableGrads(() => {
        const out = bn.forward(xv);
        y = out.dataSync().slice();
        return tf.sum(tf.mul(out, ts)) as tf.Scalar;
      }, [xv, bn.weight, bn.bias]);
      r = {
        y: y!,
        dx: grads[xv.name]!.dataSync().slice(),
        dw: grads[bn.weight.name]!.dataSync().slice(),
        db: grads[bn.bias.name]!.dataSync().slice(),
        runningMean: bn.runningMean.dataSync().slice(),
        runningVar: bn.runningVar.dataSync().slice(),
      };
    });
  });
  tf.dispose([xv, ts]);
  assert.equal(tf.memory().numTensors, before, `${backend}: a step leaked tensors`);
  bn.dispose();
  return { ...r!, kernels: info.kernels.map((k) => k.name) };
}

// The last two shapes are past the kernels' threading threshold (65536 elements, ≥ 32 channels): their
// channels are split between the OpenMP threads, unevenly (72 = 32 + 40), which must not change a bit.
const THREADED = [
  [4, 16, 16, 72],
  [2, 8, 8, 1024],
];
for (const shape of [[4, 5, 6, 8], [3, 7, 7, 64], [16, 32], ...THREADED]) {
  test(`BatchNorm training on native: one kernel each way, bit-identical to the composite, near float64, [${shape}]`, async () => {
    const size = shape.reduce((a, c) => a * c, 1);
    const C = shape[shape.length - 1]!;
    // channels far from zero mean (3 + …) so a one-pass E[x²] − E[x]² would show
    const x = randomValues(size, 11).map((v, i) => 3 + (i % C) * 0.25 + 2 * v);
    const w = randomValues(C, 12).map((v) => 1 + v / 2);
    const b = randomValues(C, 13);
    const t = randomValues(size, 14);
    const ref = bnReference(x, w, b, t, C, 1e-5, 0.1);
    const native = await bnOn('native', shape, x, w, b, t);
    const comp = await composite(() => bnOn('native', shape, x, w, b, t));
    const cpu = await bnOn('cpu', shape, x, w, b, t);
    for (const k of [TRAINING_KERNELS.batchNormTrain, TRAINING_KERNELS.batchNormTrainGrad])
      assert.equal(native.kernels.filter((n) => n === k).length, 1, `${k} ran once on native`);
    assert.ok(!comp.kernels.some((n) => n.startsWith('Mtl')), 'the composite run used no kernel');
    assert.ok(!cpu.kernels.some((n) => n.startsWith('Mtl')), 'cpu keeps the composite');
    for (const key of ['y', 'dx', 'dw', 'db', 'runningMean', 'runningVar'] as const) {
      assertSameBits(native[key], comp[key], `native ${key} vs the composite`);
      const en = relErr(native[key], ref[key]);
      const ec = relErr(cpu[key], ref[key]);
      assert.ok(en < 1e-4, `native ${key}: relative error ${en}`);
      assert.ok(ec < 1e-4, `cpu ${key}: relative error ${ec}`);
    }
  });
}

/** PReLU (slopes per channel) in float64: y = x > 0 ? x : a·x; loss = Σ y·t. */
function preluReference(x: Float32Array, a: Float32Array, t: Float32Array, C: number) {
  const y = new Float64Array(x.length);
  const dx = new Float64Array(x.length);
  const da = new Float64Array(C);
  for (let i = 0; i < x.length; i++) {
    const c = i % C;
    const pos = x[i]! > 0;
    y[i] = pos ? x[i]! : a[c]! * x[i]!;
    dx[i] = pos ? t[i]! : a[c]! * t[i]!;
    if (!pos) da[c]! += t[i]! * x[i]!;
  }
  return { y, dx, da };
}

async function preluOn(backend: string, shape: number[], x: Float32Array, a: Float32Array, t: Float32Array) {
  assert.ok(await tf.setBackend(backend));
  const p = new PReLU(shape[shape.length - 1]!);
  p.weight.assign(tf.tensor1d(a));
  const before = tf.memory().numTensors;
  const xv = tf.tidy(() => tf.variable(tf.tensor(x, shape)));
  const ts = tf.tensor(t, shape);
  let r: { y: Float32Array; dx: Float32Array; da: Float32Array } | undefined;
  const info = await tf.profile(() => {
    tf.tidy(() => {
      let y: Float32Array | undefined;
      const { grads } = tf.variableGrads(() => {
        const out = p.forward(xv);
        y = out.dataSync().slice();
        return tf.sum(tf.mul(out, ts)) as tf.Scalar;
      }, [xv, p.weight]);
      r = { y: y!, dx: grads[xv.name]!.dataSync().slice(), da: grads[p.weight.name]!.dataSync().slice() };
    });
  });
  tf.dispose([xv, ts]);
  assert.equal(tf.memory().numTensors, before, `${backend}: a step leaked tensors`);
  p.dispose();
  return { ...r!, kernels: info.kernels.map((k) => k.name) };
}

for (const shape of [[2, 5, 6, 8], [16, 32], THREADED[0]!]) {
  test(`PReLU backward on native is one kernel, bit-identical to the composite, near float64, [${shape}]`, async () => {
    const size = shape.reduce((a, c) => a * c, 1);
    const C = shape[shape.length - 1]!;
    // exact zeros included: they take the slope branch (x > 0 is false), as tfjs and PyTorch
    const x = randomValues(size, 21).map((v, i) => (i % 7 === 0 ? 0 : v));
    const a = randomValues(C, 22).map((v) => 0.25 + v / 4);
    const t = randomValues(size, 23);
    const ref = preluReference(x, a, t, C);
    const native = await preluOn('native', shape, x, a, t);
    const comp = await composite(() => preluOn('native', shape, x, a, t));
    const cpu = await preluOn('cpu', shape, x, a, t);
    for (const key of ['y', 'dx', 'da'] as const)
      assertSameBits(native[key], comp[key], `native ${key} vs the composite`);
    assert.equal(native.kernels.filter((n) => n === TRAINING_KERNELS.preluGrad).length, 1);
    assert.ok(!cpu.kernels.includes(TRAINING_KERNELS.preluGrad));
    for (const key of ['y', 'dx', 'da'] as const) {
      const en = relErr(native[key], ref[key]);
      const ec = relErr(cpu[key], ref[key]);
      assert.ok(en < 1e-5, `native ${key}: relative error ${en}`);
      assert.ok(ec < 1e-5, `cpu ${key}: relative error ${ec}`);
    }
  });
}

for (const shape of [[4, 6, 6, 16], [16, 32], ...THREADED]) {
  test(`BatchNorm → PReLU in a Sequential is one fused kernel each way on native, bit-identical to the pair, [${shape}]`, async () => {
    const size = shape.reduce((a, c) => a * c, 1);
    const C = shape[shape.length - 1]!;
    const x = randomValues(size, 51).map((v, i) => 1 + (i % C) * 0.1 + 2 * v);
    const w = randomValues(C, 52).map((v) => 1 + v / 2);
    const b = randomValues(C, 53).map((v) => v / 2);
    const a = randomValues(C, 54).map((v) => 0.25 + v / 4);
    const t = randomValues(size, 55);
    // float64: y = bn(x), z = prelu(y); dz = t, dy = prelu'(y)·t, then the batch norm's backward of dy
    const bnFwd = bnReference(x, w, b, t, C, 1e-5, 0.1);
    const pr = preluReference(Float32Array.from(bnFwd.y), a, t, C);
    const bnBwd = bnReference(x, w, b, Float32Array.from(pr.dx), C, 1e-5, 0.1);
    const ref = { ...bnBwd, y: pr.y, da: pr.da };

    const run = async (backend: string) => {
      assert.ok(await tf.setBackend(backend));
      const seq = new Sequential([new BatchNorm(C), new PReLU(C)]);
      seq.train();
      const [bn, p] = seq.layers as [BatchNorm, PReLU];
      bn.weight.assign(tf.tensor1d(w));
      bn.bias.assign(tf.tensor1d(b));
      p.weight.assign(tf.tensor1d(a));
      const before = tf.memory().numTensors;
      const xv = tf.tidy(() => tf.variable(tf.tensor(x, shape)));
      const ts = tf.tensor(t, shape);
      let r: Record<string, Float32Array> = {};
      const info = await tf.profile(() => {
        tf.tidy(() => {
          let y: Float32Array | undefined;
          const { grads } = tf.variableGrads(() => {
            const out = seq.forward(xv);
            y = out.dataSync().slice();
            return tf.sum(tf.mul(out, ts)) as tf.Scalar;
          }, [xv, bn.weight, bn.bias, p.weight]);
          r = {
            y: y!,
            dx: grads[xv.name]!.dataSync().slice(),
            dw: grads[bn.weight.name]!.dataSync().slice(),
            db: grads[bn.bias.name]!.dataSync().slice(),
            da: grads[p.weight.name]!.dataSync().slice(),
            runningMean: bn.runningMean.dataSync().slice(),
            runningVar: bn.runningVar.dataSync().slice(),
          };
        });
      });
      tf.dispose([xv, ts]);
      assert.equal(tf.memory().numTensors, before, `${backend}: a step leaked tensors`);
      seq.dispose();
      return { r, kernels: info.kernels.map((k) => k.name) };
    };
    const native = await run('native');
    const comp = await composite(() => run('native'));
    const cpu = await run('cpu');
    for (const k of [TRAINING_KERNELS.batchNormPreluTrain, TRAINING_KERNELS.batchNormPreluTrainGrad])
      assert.equal(native.kernels.filter((n) => n === k).length, 1, `${k} ran once`);
    for (const k of ['Prelu', TRAINING_KERNELS.batchNormTrain, TRAINING_KERNELS.preluGrad])
      assert.ok(!native.kernels.includes(k), `no separate ${k} on native`);
    for (const key of ['y', 'dx', 'dw', 'db', 'da', 'runningMean', 'runningVar'] as const) {
      assertSameBits(native.r[key]!, comp.r[key]!, `native ${key} vs the composite pair`);
      const en = relErr(native.r[key]!, ref[key]);
      const ec = relErr(cpu.r[key]!, ref[key]);
      assert.ok(en < 1e-4, `native ${key}: relative error ${en}`);
      assert.ok(ec < 1e-4, `cpu ${key}: relative error ${ec}`);
    }
  });
}

test('eval mode and a PReLU over other channels do not fuse (the composite path, same values)', async () => {
  assert.ok(await tf.setBackend('native'));
  const bn = new BatchNorm(8);
  const p = new PReLU(8);
  bn.eval();
  const x = tf.tensor(randomValues(2 * 3 * 3 * 8, 61), [2, 3, 3, 8]);
  assert.equal(bn.forwardWithNext(x, p), null, 'eval: no fusion');
  bn.train();
  const shared = new PReLU(1);
  assert.equal(bn.forwardWithNext(x, shared), null, 'shared slope: no fusion');
  shared.dispose();
  const fused = bn.forwardWithNext(x, p)!;
  bn.updateStats = false;
  const apart = p.forward(bn.forward(x));
  assert.deepEqual(fused.dataSync(), apart.dataSync(), 'the fused forward is the pair, bit for bit');
  tf.dispose([x, fused, apart]);
  bn.dispose();
  p.dispose();
});
