// The loop on demo data: losses go down, no tensor leaks across 50 steps, flat resident memory.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { loadConfig, GradientBucketer, SGD, LossScaler } from '@mtlface/train';
import { runTraining } from '../workers/src/train/run.js';
import { REPO, TINY, tinySynth, dataOverrides } from './train-helpers.js';

let data: string;
before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
  data = await tinySynth();
});

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('50 AIFR steps on the synthetic set: the FR loss decreases and tf.memory().numTensors stays flat', async () => {
  const cfg = loadConfig(join(REPO, 'configs/demo.yaml'), [
    ...TINY,
    ...dataOverrides(data),
    'mode=aifr',
    'iterations=50',
    'checkpoint_interval=50',
    'fr_optim.warmup=5',
    'fr_optim.lr=0.05',
    'model.dropout=0',
    `checkpoint_dir=${mkdtempSync(join(tmpdir(), 'mtl-loop-'))}`,
  ]);
  const losses: number[] = [];
  const counts: number[] = [];
  const before = tf.memory().numTensors;
  await runTraining(cfg, {
    log: () => {},
    env: {},
    skipBackendInit: true,
    group: null,
    onIteration: (r) => {
      losses.push(r.losses.fr_total!);
      counts.push(tf.memory().numTensors);
    },
  });
  assert.equal(losses.length, 50);
  // Slots appear on the first real step; from then on the count must not move.
  const settled = counts.slice(5);
  assert.ok(
    settled.every((c) => c === settled[0]),
    `tensor count drifted: ${[...new Set(counts)].join(', ')}`,
  );
  assert.equal(tf.memory().numTensors, before, 'the run releases everything at the end');
  const first = mean(losses.slice(0, 10));
  const last = mean(losses.slice(-10));
  assert.ok(
    last < first * 0.9,
    `FR loss did not decrease: first 10 steps ${first.toFixed(3)}, last 10 ${last.toFixed(3)}`,
  );
});

test('resident memory is flat across 500 sync + optimizer steps (bucketing, scaler, SGD)', async () => {
  // The per-step allocations outside tfjs kernels (bucket buffers, gradient tensors, slots) are what
  // could grow over a long run; 500 whole model steps would not fit the test budget on 2 cores.
  const shapes = [[64, 3, 3, 16], [16], [256, 64], [64]];
  const params = shapes.map((s, i) => ({
    name: `p${i}`,
    variable: tf.variable(tf.randomNormal(s)),
    weightDecay: 5e-4,
  }));
  const opt = new SGD(params, 0.9);
  const scaler = new LossScaler({ init: 1024 });
  const bucketer = new GradientBucketer(shapes, { bucketBytes: 16 * 1024, wire: 'f16' });
  const rss: number[] = [];
  const tensors = tf.memory().numTensors;
  for (let step = 0; step < 500; step++) {
    const grads = shapes.map((s) => tf.randomNormal(s));
    const r = await bucketer.sync(grads, null, scaler.scale);
    grads.forEach((g) => g.dispose());
    scaler.update(r.grads === null);
    if (r.grads) {
      opt.step(r.grads, 0.01);
      r.grads.forEach((g) => g.dispose());
    }
    if (step % 50 === 49) {
      global.gc?.();
      rss.push(process.memoryUsage().rss);
    }
  }
  assert.equal(tf.memory().numTensors, tensors + opt.slots().size, 'only the momentum buffers remain');
  const growthMb = (rss.at(-1)! - rss[1]!) / 2 ** 20;
  assert.ok(growthMb < 20, `RSS grew by ${growthMb.toFixed(1)} MB over 450 steps`);
  opt.dispose();
  params.forEach((p) => p.variable.dispose());
});
