// The native backend's one-pass SGD and Adam kernels against the composite tfjs ops they replace:
// bit-identical parameters and slots along real training trajectories (gradients of a small
// network's loss, weight decay on some parameters and not others, a changing learning rate), and
// the composite is the float32 operations, in PyTorch's order, that optim.test.ts checks against torch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { TRAINING_KERNELS } from '@mtlface/model';
import { randomValues, setup } from '@mtlface/backend/testing';
import { Adam, SGD, type NamedParam, type Optimizer } from '../src/optim.js';

setup();

// The hidden layer is wide enough (24 × 2903 = 69672 elements, past the kernels' 65536) for the update of
// p0 and p2 to be split between the OpenMP threads, at a boundary that is no multiple of the vector width.
const HIDDEN = 2903;
const SHAPES = [[24, HIDDEN], [HIDDEN], [HIDDEN, 10], [10]];
const DECAY = [5e-4, 0, 5e-4, 0];
const STEPS = 6;

const initial = (i: number) =>
  Float32Array.from(randomValues(tf.util.sizeFromShape(SHAPES[i]!), 31 + i), (v) => Math.fround(v * 0.3));

/** A 2-layer MLP's parameters and `STEPS` steps of its loss gradients; params and slots bit by bit. */
async function trajectory(
  make: (p: NamedParam[]) => Optimizer,
  composite: boolean,
): Promise<{ kernelCalls: number; values: Map<string, Float32Array>; p0Kept: boolean[] }> {
  assert.ok(await tf.setBackend('native'));
  const saved = Object.values(TRAINING_KERNELS).map((k) => tf.getKernel(k, 'native'));
  if (composite) for (const k of Object.values(TRAINING_KERNELS)) tf.unregisterKernel(k, 'native');
  try {
    const params: NamedParam[] = SHAPES.map((s, i) => ({
      name: `p${i}`,
      variable: tf.tidy(() => tf.variable(tf.tensor(initial(i), s))),
      weightDecay: DECAY[i]!,
    }));
    const opt = make(params);
    const x = tf.tensor2d(randomValues(16 * 24, 40), [16, 24]);
    const y = tf.oneHot(
      tf.tensor1d(
        Array.from({ length: 16 }, (_, i) => i % 10),
        'int32',
      ),
      10,
    );
    const before = tf.memory().numTensors;
    let kernelCalls = 0;
    // Per step, whether p0 kept its data (updated in place); after step 3 its array is read (handed out).
    const p0Kept: boolean[] = [];
    let held: { array: Float32Array; copy: Float32Array } | null = null;
    for (let t = 0; t < STEPS; t++) {
      const { value, grads } = tf.variableGrads(
        () => {
          const [w1, b1, w2, b2] = params.map((p) => p.variable);
          const h = tf.relu(tf.add(tf.matMul(x, w1 as tf.Tensor2D), b1!));
          return tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(h, w2 as tf.Tensor2D), b2!)) as tf.Scalar;
        },
        params.map((p) => p.variable),
      );
      const g = params.map((p) => grads[p.variable.name]!);
      const lr = 0.1 * (1 - t / STEPS);
      const p0Data = params[0]!.variable.dataId;
      const info = await tf.profile(() => opt.step(g, lr));
      p0Kept.push(params[0]!.variable.dataId === p0Data);
      if (t === 3) {
        const array = (await params[0]!.variable.data()) as Float32Array;
        held = { array, copy: array.slice() };
      }
      const names = info.kernels.map((k) => k.name);
      kernelCalls += names.filter(
        (n) => n === TRAINING_KERNELS.sgdStep || n === TRAINING_KERNELS.adamStep,
      ).length;
      tf.dispose([value, ...g]);
    }
    assert.equal(tf.memory().numTensors, before + opt.slots().size, 'the steps leaked tensors');
    // an array handed out by data() is never overwritten by a later update
    assert.deepEqual(held!.array, held!.copy, 'the array read after step 3 was overwritten');
    const values = new Map<string, Float32Array>();
    for (const p of params) values.set(p.name, p.variable.dataSync().slice());
    for (const [k, s] of opt.slots()) values.set(k, s.dataSync().slice());
    opt.dispose();
    tf.dispose([x, y, ...params.map((p) => p.variable)]);
    return { kernelCalls, values, p0Kept };
  } finally {
    if (composite) for (const k of saved) if (k) tf.registerKernel(k);
  }
}

function assertBitIdentical(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `${what}: the same slots`);
  for (const [k, v] of a) {
    const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
    const w = b.get(k)!;
    const uw = new Uint32Array(w.buffer, w.byteOffset, w.length);
    const bad = u.findIndex((bits, i) => bits !== uw[i]);
    assert.equal(bad, -1, `${what}: ${k}[${bad}] ${v[bad]} vs ${w[bad]}`);
  }
}

const OPTIMIZERS: [string, (p: NamedParam[]) => Optimizer][] = [
  ['SGD with momentum', (p) => new SGD(p, 0.9)],
  ['SGD without momentum', (p) => new SGD(p, 0)],
  ['Adam', (p) => new Adam(p, 0.9, 0.999, 1e-8)],
];

for (const [label, make] of OPTIMIZERS) {
  test(`${label}: the native one-pass kernel is bit-identical to the composite ops over a trajectory`, async () => {
    const kernel = await trajectory(make, false);
    const composite = await trajectory(make, true);
    assert.equal(kernel.kernelCalls, SHAPES.length * STEPS, 'one kernel call per parameter and step');
    assert.equal(composite.kernelCalls, 0, 'the composite run used no kernel');
    // In place from the second step (the first input is the test's own array, not the pool's), except
    // the step after p0's array was handed out (step 4 writes a fresh array, which step 5 updates in place).
    assert.deepEqual(kernel.p0Kept, [false, true, true, true, false, true], 'p0 updated in place');
    assert.ok(!composite.p0Kept.includes(true), 'the composite ops always make a new array');
    assertBitIdentical(kernel.values, composite.values, 'native kernel vs composite');
    // the trajectory moved: a kernel that returned its input would not pass
    assert.ok(
      kernel.values.get('p0')!.some((v, i) => v !== initial(0)[i]),
      'p0 changed',
    );
  });
}
