import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { AgingModule, PatchDiscriminator, groupConditionMap, withInitSeeds } from '@mtlface/model';
import { useCpu } from './helpers.js';

await useCpu();

test('generator (AgingModule) at 112 with 7 groups has the reference 54,041,920 parameters', () => {
  const g = new AgingModule({ init: 'zeros' });
  assert.equal(g.numParameters(), 54_041_920);
  assert.deepEqual(g.stateDict().get('transform.3.router2._unit_mapping')!.shape, [7, 819]);
  assert.deepEqual(g.stateDict().get('up_4.shortcut.weight')!.shape, [1, 1, 64, 32]);
  g.dispose();
});

test('discriminator has the reference 6,973,889 parameters and spectral-norm names', () => {
  const d = new PatchDiscriminator();
  assert.equal(d.numParameters(), 6_973_889);
  const sd = d.stateDict();
  assert.deepEqual(sd.get('main.0.weight_orig')!.shape, [4, 4, 71, 128]);
  assert.deepEqual(sd.get('main.0.weight_u')!.shape, [128]);
  assert.deepEqual(sd.get('main.0.weight_v')!.shape, [71 * 16]);
  assert.ok(sd.has('main.8.weight') && !sd.has('main.8.weight_orig'));
  d.dispose();
});

test('one-hot condition maps put 1 in the target group channel everywhere', () => {
  const m = groupConditionMap(tf.tensor1d([2, 0], 'int32'), 4, 2, 3);
  assert.deepEqual(m.shape, [2, 2, 3, 4]);
  const v = m.arraySync();
  assert.deepEqual(v[0]![1]![2], [0, 0, 1, 0]);
  assert.deepEqual(v[1]![0]![0], [1, 0, 0, 0]);
  m.dispose();
});

test('generator output has the image shape for each target group', () => {
  const g = new AgingModule({ widths: [16, 32, 64, 128], unitCount: 16, repeat: 1 }).eval();
  tf.tidy(() => {
    const img = tf.randomUniform([1, 16, 16, 3], -1, 1);
    const out = g.forward({
      image: img,
      x2: tf.randomNormal([1, 8, 8, 16]),
      x3: tf.randomNormal([1, 4, 4, 32]),
      x4: tf.randomNormal([1, 2, 2, 64]),
      xId: tf.randomNormal([1, 1, 1, 128]),
      targetGroups: tf.tensor1d([3], 'int32'),
    });
    assert.deepEqual(out.shape, [1, 16, 16, 3]);
  });
  g.dispose();
});

// Narrow widths keep it quick; the spatial structure (strides, paddings, upsampling) is the released one.
test('at a 112 input the generator returns 112×112×3 and the discriminator a 5×5×1 patch map', () => {
  const g = new AgingModule({ widths: [16, 32, 64, 128], unitCount: 8, repeat: 1 }).eval();
  const d = new PatchDiscriminator({ convDim: 4 }).eval();
  tf.tidy(() => {
    const img = tf.zeros([1, 112, 112, 3]) as tf.Tensor4D;
    const out = g.forward({
      image: img,
      x2: tf.zeros([1, 56, 56, 16]),
      x3: tf.zeros([1, 28, 28, 32]),
      x4: tf.zeros([1, 14, 14, 64]),
      xId: tf.zeros([1, 7, 7, 128]),
      targetGroups: tf.tensor1d([6], 'int32'),
    });
    assert.deepEqual(out.shape, [1, 112, 112, 3]);
    assert.deepEqual(d.forward(img, tf.tensor1d([6], 'int32')).shape, [1, 5, 5, 1]);
  });
  g.dispose();
  d.dispose();
});

test('withInitSeeds fixes every initial weight and buffer without touching Math.random', () => {
  const seq = (seed: number) => {
    let s = seed;
    return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2 ** 32);
  };
  // A small generator and a spectral-norm discriminator: uniform, normal and power-iteration draws.
  const build = () => [
    new AgingModule({ widths: [8, 16, 32, 64], unitCount: 8, repeat: 1 }),
    new PatchDiscriminator({ convDim: 4 }),
  ];
  const values = (mods: ReturnType<typeof build>) =>
    mods.flatMap((m) => [...m.stateDict().values()].map((t) => Array.from(t.dataSync())));
  const real = Math.random;
  let a: number[][], b: number[][], c: number[][];
  try {
    Math.random = () => {
      throw new Error('an initialiser drew its seed from Math.random');
    };
    const ma = withInitSeeds(seq(1), build);
    const mb = withInitSeeds(seq(1), build);
    const mc = withInitSeeds(seq(2), build);
    [a, b, c] = [values(ma), values(mb), values(mc)];
    for (const m of [...ma, ...mb, ...mc]) m.dispose();
  } finally {
    Math.random = real;
  }
  assert.deepEqual(a, b, 'same seed source, same weights');
  const differs = a.map((x, i) => x.some((v, j) => v !== c[i]![j]));
  const random = a.map((x) => new Set(x).size > 2); // drawn (a 1-element bias is drawn too, not counted)
  const constant = a.map((x) => x.length > 1 && new Set(x).size === 1); // zeros, ones
  assert.ok(
    random.filter(Boolean).length > 10,
    `${random.filter(Boolean).length} randomly initialised tensors`,
  );
  random.forEach(
    (r, i) => r && assert.ok(differs[i], `tensor ${i} is drawn but the same under another seed`),
  );
  constant.forEach((k, i) => k && assert.ok(!differs[i], `constant tensor ${i} changed with the seed`));
});
