import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import {
  AgeEstimation,
  AgingModule,
  BatchNorm,
  CosFace,
  PatchDiscriminator,
  buildBackbone,
  encodeSafetensors,
  gradientReversal,
  readSafetensors,
  rawToTensor,
  tensorsToRaw,
  ageLoss,
  cosFaceLoss,
  lsganDiscriminatorLoss,
  lsganGeneratorLoss,
  identityLoss,
} from '@mtlface/model';
import { useCpu } from './helpers.js';

await useCpu();

// 16 px keeps the pure-JS convolution backprop quick
const demo = () => buildBackbone({ arch: 'demo', inputSize: 16 });

test('a state dict exported to safetensors and re-imported round-trips bit-exactly', async () => {
  const a = demo();
  // move running statistics and the batch counter off their initial values
  tf.tidy(() => void a.forward(tf.randomNormal([2, 16, 16, 3])));
  const bytes = encodeSafetensors(await tensorsToRaw(a.stateDict()), { arch: 'demo' });
  const file = readSafetensors(bytes);
  assert.equal(file.metadata.arch, 'demo');
  const b = demo();
  const loaded = new Map([...file.tensors].map(([n, r]) => [n, rawToTensor(r, n)]));
  b.loadStateDict(loaded);
  tf.dispose([...loaded.values()]);
  const sa = a.stateDict();
  for (const [name, vb] of b.stateDict()) {
    const va = sa.get(name)!;
    assert.equal(vb.dtype, va.dtype, name);
    assert.deepEqual(Buffer.from(vb.dataSync().buffer), Buffer.from(va.dataSync().buffer), name);
  }
  assert.equal(b.stateDict().get('input_layer.1.num_batches_tracked')!.dataSync()[0], 1);
  a.dispose();
  b.dispose();
});

test('loadStateDict with a renamed or mis-shaped tensor fails naming it and changes nothing', () => {
  const a = demo();
  const b = demo();
  const before = b.stateDict().get('block1.0.res_layer.1.weight')!.dataSync().slice();
  const renamed = new Map<string, tf.Tensor>(a.stateDict());
  renamed.set('block1.0.res_layer.1.weights', renamed.get('block1.0.res_layer.1.weight')!);
  renamed.delete('block1.0.res_layer.1.weight');
  assert.throws(
    () => b.loadStateDict(renamed),
    (e: Error) =>
      /unexpected tensor 'block1\.0\.res_layer\.1\.weights'/.test(e.message) &&
      /missing tensor 'block1\.0\.res_layer\.1\.weight'/.test(e.message),
  );
  const misShaped = new Map<string, tf.Tensor>(a.stateDict());
  const wrong = tf.zeros([3, 3, 16, 8]);
  misShaped.set('block1.0.res_layer.1.weight', wrong);
  assert.throws(
    () => b.loadStateDict(misShaped),
    /tensor 'block1\.0\.res_layer\.1\.weight' has shape \[3,3,16,8\], expected \[3,3,16,16\]/,
  );
  assert.deepEqual(b.stateDict().get('block1.0.res_layer.1.weight')!.dataSync(), before);
  wrong.dispose();
  a.dispose();
  b.dispose();
});

test('attention batch norms use momentum 0.01, the others 0.1', () => {
  const b = demo();
  const bns = b.namedModules().filter(([, m]) => m instanceof BatchNorm) as Array<[string, BatchNorm]>;
  for (const [name, bn] of bns) assert.equal(bn.momentum, name.startsWith('fsm.') ? 0.01 : 0.1, name);
  assert.equal(bns.filter(([n]) => n.startsWith('fsm.')).length, 2);
  b.dispose();
});

for (const mode of ['train', 'eval'] as const) {
  test(`no tensor leaks: FR forward+backward (backbone, CosFace, estimation, DA via GRL) in ${mode} mode`, () => {
    const b = demo();
    const head = new CosFace(512, 10);
    const est = new AgeEstimation({ channels: 128, inputSize: 16, groups: 7 });
    const da = new AgeEstimation({ channels: 128, inputSize: 16, groups: 7 });
    for (const m of [b, head, est, da]) m.train(mode === 'train');
    const x = tf.randomUniform([2, 16, 16, 3], -1, 1);
    const labels = tf.tensor1d([1, 7], 'int32');
    const ages = tf.tensor1d([23, 67]);
    const groups = tf.tensor1d([2, 6], 'int32');
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => {
      const f = b.forward(x);
      const e = est.forward(f.xAge);
      const d = da.forward(gradientReversal(f.xId));
      return tf.addN([
        cosFaceLoss(head.forward(f.embedding, labels), labels),
        tf.mul(ageLoss(e.ageLogits, e.groupLogits, ages, groups), 0.001),
        tf.mul(ageLoss(d.ageLogits, d.groupLogits, ages, groups), 0.002),
      ]) as tf.Scalar;
    });
    assert.ok(Number.isFinite(value.dataSync()[0]));
    assert.ok(Object.keys(grads).length > 0);
    value.dispose();
    tf.dispose(Object.values(grads));
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, labels, ages, groups]);
    for (const m of [b, head, est, da]) m.dispose();
  });
}

test('no tensor leaks: FAS generator + discriminator forward+backward in train and eval mode', () => {
  const b = demo().eval();
  const g = new AgingModule({ widths: [16, 32, 64, 128], unitCount: 16, repeat: 2 });
  const d = new PatchDiscriminator({ convDim: 8, repeatNum: 2 });
  const img = tf.randomUniform([2, 16, 16, 3], -1, 1);
  const target = tf.tensor1d([0, 6], 'int32');
  for (const mode of [true, false]) {
    g.train(mode);
    d.train(mode);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => {
      const f = b.forward(img);
      const gen = g.forward({ image: img, x2: f.x2, x3: f.x3, x4: f.x4, xId: f.xId, targetGroups: target });
      assert.deepEqual(gen.shape, [2, 16, 16, 3]);
      const fg = b.forward(gen);
      return tf.addN([
        lsganGeneratorLoss(d.forward(gen, target)),
        lsganDiscriminatorLoss(d.forward(img, target), d.forward(gen, target)),
        identityLoss(f.xId, fg.xId),
      ]) as tf.Scalar;
    }, [...g.parameters(), ...d.parameters()]);
    value.dispose();
    tf.dispose(Object.values(grads));
    assert.equal(tf.memory().numTensors, before, `mode train=${mode}`);
  }
  tf.dispose([img, target]);
  for (const m of [b, g, d]) m.dispose();
});
