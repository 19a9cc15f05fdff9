// The release-compatibility knobs of the trainer: the constant learning rate the release trains at,
// the FAS networks' own Adam rates (--d_lr, --g_lr), and the discriminator output means it logs.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { Trainer } from '../src/trainer.js';
import { fasDiscriminatorGradients, fasGeneratorGradients, fasSource } from '../src/steps.js';
import { tinyConfig, randomBatch } from './helpers.js';

const CLASSES = 10;

before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
});

test('release.constant_lr: the FR lr is fr_optim.lr at every step, without it the schedule applies', async () => {
  const schedule = ['mode=aifr', 'fr_optim.lr=0.2', 'fr_optim.warmup=10', 'fr_optim.milestones=[15]'];
  const constant = new Trainer(tinyConfig([...schedule, 'release.constant_lr=true']), {
    numClasses: CLASSES,
    group: null,
  });
  const scheduled = new Trainer(tinyConfig(schedule), { numClasses: CLASSES, group: null });
  try {
    for (let it = 0; it < 20; it++) assert.equal(constant.frLr(it), 0.2);
    assert.ok(Math.abs(scheduled.frLr(0) - 0.02) < 1e-12, 'warm-up: 1/10 of lr at the first step');
    assert.ok(Math.abs(scheduled.frLr(19) - 0.02) < 1e-12, 'after the milestone: ×0.1');
    const cfg = constant.cfg;
    const r = await constant.step(randomBatch(4, cfg.model.input_size, CLASSES, 1, cfg.model.groups), 0);
    assert.equal(r.lr.fr, 0.2);
  } finally {
    constant.dispose();
    scheduled.dispose();
  }
});

/** Largest |after − before| over a list of parameters. */
function maxMove(before: Float32Array[], after: Float32Array[]): number {
  let m = 0;
  before.forEach((b, i) => b.forEach((x, j) => (m = Math.max(m, Math.abs(after[i]![j]! - x)))));
  return m;
}

test("fas_optim.d_lr / g_lr: each FAS network's Adam steps with its own rate", async () => {
  // Adam's first step moves a parameter by lr·g/(|g|+eps): about lr wherever |g| ≫ eps, never more.
  const cfg = tinyConfig(['mode=fas', 'amp=false', 'fas_optim.d_lr=0.003', 'fas_optim.g_lr=0.0005']);
  const t = new Trainer(cfg, { numClasses: CLASSES, group: null });
  try {
    const snap = (names: string[]): Float32Array[] =>
      t.nets.params(names, 0).map((p) => p.variable.dataSync().slice() as Float32Array);
    const [d0, g0] = [snap(['discriminator']), snap(['generator'])];
    const r = await t.step(randomBatch(4, cfg.model.input_size, CLASSES, 2, cfg.model.groups), 0);
    assert.deepEqual(r.skipped, []);
    assert.deepEqual({ d: r.lr.fas_d, g: r.lr.fas }, { d: 0.003, g: 0.0005 });
    const [dMove, gMove] = [maxMove(d0, snap(['discriminator'])), maxMove(g0, snap(['generator']))];
    assert.ok(Math.abs(dMove - 0.003) < 0.003 * 1e-3, `discriminator moved by ${dMove}`);
    assert.ok(Math.abs(gMove - 0.0005) < 0.0005 * 1e-3, `generator moved by ${gMove}`);
  } finally {
    t.dispose();
  }
});

test('the FAS steps return the means of D(real), D(G detached) and D(G), as the release logs them', () => {
  // Eval mode: no power iteration, fixed batch statistics, so D and G give the same outputs again.
  const cfg = tinyConfig(['mode=fas']);
  const t = new Trainer(cfg, { numClasses: CLASSES, group: null });
  t.nets.train(false);
  const startTensors = tf.memory().numTensors;
  const src = fasSource(t.nets, randomBatch(4, cfg.model.input_size, CLASSES, 3, cfg.model.groups));
  try {
    const gd = fasDiscriminatorGradients(t.nets, t.fasD!.params, src);
    const gg = fasGeneratorGradients(t.nets, t.fasG!.params, src, { gan: 1, id: 1, age: 1 });
    const got = {
      d1: gd.losses.d1_logit!.dataSync()[0]!,
      d3: gd.losses.d3_logit!.dataSync()[0]!,
      g: gg.losses.g_logit!.dataSync()[0]!,
    };
    const d = t.nets.discriminator!;
    const meanOf = (x: tf.Tensor4D): number =>
      tf.tidy(() => tf.mean(d.forward(x, src.targets)).dataSync()[0]!);
    const real = meanOf(src.real);
    const fake = meanOf(gg.generated);
    assert.ok(Math.abs(got.d1 - real) < 1e-5, `d1 ${got.d1} vs ${real}`);
    assert.ok(Math.abs(got.d3 - fake) < 1e-5, `d3 ${got.d3} vs ${fake}`);
    assert.ok(Math.abs(got.g - fake) < 1e-5, `g ${got.g} vs ${fake}`);
    assert.notEqual(real, fake);
    for (const r of [gd, gg]) {
      r.grads.forEach((x) => x?.dispose());
      Object.values(r.losses).forEach((x) => x.dispose());
    }
    gg.generated.dispose();
  } finally {
    src.dispose();
  }
  assert.equal(tf.memory().numTensors, startTensors, 'the steps keep nothing beyond what they return');
  t.dispose();
});
