// loss.fr_id, the weight of the CosFace identity loss (EXPERIMENTS.md amendment 2's plain age estimator
// sets it to 0). The FR loss is linear in it, so with the same batch and weights the gradient at w_id = 2
// minus that at 1 equals the gradient at 1 minus that at 0 (the identity loss's own gradient), and at 0
// the CosFace head gets no gradient at all.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { Trainer } from '../src/trainer.js';
import { frGradients } from '../src/steps.js';
import { randomBatch, tinyConfig } from './helpers.js';

before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
});

test('loss.fr_id: the default is the release (1); config accepts 0 and refuses a negative weight', () => {
  assert.equal(tinyConfig().loss.fr_id, 1);
  assert.equal(tinyConfig(['loss.fr_id=0']).loss.fr_id, 0);
  assert.throws(() => tinyConfig(['loss.fr_id=-1']), /fr_id/);
});

test('loss.fr_id scales the identity term alone: gradients linear in it, none for the head at 0', () => {
  const cfg = tinyConfig(['mode=aifr', 'amp=false', 'model.dropout=0']);
  const t = new Trainer(cfg, { numClasses: 10, group: null });
  try {
    t.nets.train(true);
    const params = t.fr!.params;
    const batch = randomBatch(4, cfg.model.input_size, 10, 5, cfg.model.groups);
    const start = tf.memory().numTensors;
    const at = (id: number) => {
      const g = frGradients(t.nets, params, batch, { id, age: 0.001, da: 0.002 });
      const grads = g.grads.map((x) => (x ? x.dataSync().slice() : null));
      const losses = Object.fromEntries(Object.entries(g.losses).map(([k, v]) => [k, v.dataSync()[0]!]));
      g.grads.forEach((x) => x?.dispose());
      Object.values(g.losses).forEach((v) => v.dispose());
      return { grads, losses };
    };
    const [g0, g1, g2] = [at(0), at(1), at(2)];
    assert.equal(tf.memory().numTensors, start, 'frGradients leaks no tensor');
    // The parts do not depend on the weight; the total is w_id·id + 0.001·age + 0.002·da.
    for (const [w, g] of [
      [0, g0],
      [1, g1],
      [2, g2],
    ] as const) {
      assert.ok(Math.abs(g.losses.id! - g1.losses.id!) <= 1e-6 * Math.abs(g1.losses.id!));
      const expected = w * g.losses.id! + 0.001 * g.losses.age! + 0.002 * g.losses.da!;
      assert.ok(Math.abs(g.losses.total! - expected) <= 1e-5 * Math.abs(expected), `total at w_id=${w}`);
    }
    let headParams = 0;
    let compared = 0;
    params.forEach((p, i) => {
      const [a, b, c] = [g0.grads[i], g1.grads[i], g2.grads[i]];
      if (p.name.startsWith('head.')) {
        headParams++;
        assert.ok(!a || a.every((v) => v === 0), `${p.name}: gradient at w_id = 0`);
        assert.ok(b && b.some((v) => v !== 0), `${p.name}: no gradient at w_id = 1`);
      }
      if (!a || !b || !c) return;
      let scale = 0;
      for (let k = 0; k < b.length; k++) scale = Math.max(scale, Math.abs(b[k]! - a[k]!));
      for (let k = 0; k < b.length; k++) {
        const second = c[k]! - b[k]!;
        const first = b[k]! - a[k]!;
        assert.ok(Math.abs(second - first) <= 1e-4 * scale + 1e-7, `${p.name}[${k}]: ${second} vs ${first}`);
      }
      compared++;
    });
    assert.ok(headParams > 0, 'the head has parameters');
    assert.ok(compared > 10, `${compared} gradients compared`);
  } finally {
    t.dispose();
  }
});
