import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { AgeEstimation, buildBackbone, type BackboneArch } from '@mtlface/model';
import { useCpu } from './helpers.js';

await useCpu();

const REFERENCE: Array<[BackboneArch, number]> = [
  ['ir34', 37_576_868],
  ['ir50', 47_028_388],
  ['ir64', 42_302_628],
  ['ir101', 68_593_700],
  ['irse101', 68_965_924],
];

for (const [arch, count] of REFERENCE) {
  test(`${arch} at 112 has the reference parameter count ${count}, fsm 3,441,764 and output_layer 12,847,616`, () => {
    const b = buildBackbone({ arch, inputSize: 112, init: 'zeros' });
    try {
      assert.equal(b.numParameters(), count);
      assert.equal(b.fsm.numParameters(), 3_441_764);
      assert.equal(b.outputLayer.numParameters(), 12_847_616);
    } finally {
      b.dispose();
    }
  });
}

test('the ir50 state dict has 482 entries with the reference names', () => {
  const b = buildBackbone({ arch: 'ir50', init: 'zeros' });
  try {
    const names = [...b.stateDict().keys()];
    assert.equal(names.length, 482);
    for (const n of [
      'input_layer.0.weight',
      'input_layer.1.running_var',
      'block1.0.res_layer.1.weight',
      'block2.0.shortcut_layer.0.weight',
      'block3.13.res_layer.5.num_batches_tracked',
      'fsm.channel.0.weight',
      'fsm.channel.3.running_mean',
      'fsm.spatial.0.weight',
      'output_layer.3.weight',
      'output_layer.4.bias',
    ]) {
      assert.ok(names.includes(n), `missing ${n}`);
    }
    assert.deepEqual(b.stateDict().get('output_layer.3.weight')!.shape, [512, 25088]);
    assert.deepEqual(b.stateDict().get('block1.0.res_layer.1.weight')!.shape, [3, 3, 64, 64]);
  } finally {
    b.dispose();
  }
});

test('irse101 units carry squeeze-excitation convs fc1/fc2 of width c/16', () => {
  const b = buildBackbone({ arch: 'irse101', init: 'zeros' });
  try {
    assert.deepEqual(b.stateDict().get('block4.2.res_layer.6.fc1.weight')!.shape, [1, 1, 512, 32]);
  } finally {
    b.dispose();
  }
});

test('the age estimator at 112 with 7 groups has 12,899,119 parameters', () => {
  const a = new AgeEstimation({ inputSize: 112, groups: 7 });
  try {
    assert.equal(a.numParameters(), 12_899_119);
  } finally {
    a.dispose();
  }
});

// ir-tiny has ir50's widths (shapes are the same) and 1 unit per stage, so the pure-JS forward is quick.
test('feature shapes for a 112 input match the spec (x2..x5, x_id, x_age, embedding)', () => {
  const b = buildBackbone({ arch: 'ir-tiny', init: 'zeros' }).eval();
  try {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const f = b.forward(tf.zeros([1, 112, 112, 3]));
      assert.deepEqual(f.x1.shape, [1, 112, 112, 64]);
      assert.deepEqual(f.x2.shape, [1, 56, 56, 64]);
      assert.deepEqual(f.x3.shape, [1, 28, 28, 128]);
      assert.deepEqual(f.x4.shape, [1, 14, 14, 256]);
      assert.deepEqual(f.x5.shape, [1, 7, 7, 512]);
      assert.deepEqual(f.xId.shape, [1, 7, 7, 512]);
      assert.deepEqual(f.xAge.shape, [1, 7, 7, 512]);
      assert.deepEqual(f.embedding.shape, [1, 512]);
    });
    assert.equal(tf.memory().numTensors, before);
  } finally {
    b.dispose();
  }
});

test('bad backbone options are rejected with the field named', () => {
  assert.throws(() => buildBackbone({ inputSize: 100 }), /inputSize must be a positive multiple of 16/);
  assert.throws(() => buildBackbone({ units: [1, 0, 1, 1] }), /units/);
  assert.throws(() => buildBackbone({ arch: 'ir18' as BackboneArch }), /unknown backbone arch 'ir18'/);
});
