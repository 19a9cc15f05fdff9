// Distributed-step correctness on the real collective, world size 2 in one process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { StoreServer, type ProcessGroup } from '@mtlface/collective';
import { BatchNorm } from '@mtlface/model';
import { Trainer } from '../src/trainer.js';
import { localGroups, tinyConfig, randomBatch, sliceBatch } from './helpers.js';
import type { TrainConfig } from '../src/config.js';

const CLASSES = 10;
let store: StoreServer;
let groups: ProcessGroup[];
let runCount = 0;

before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
  store = await StoreServer.listen({ host: '127.0.0.1', port: 0, token: 't' });
});
after(async () => {
  await store.close();
});

function makeGroups(): Promise<ProcessGroup[]> {
  return localGroups(store.port, `trainer-test-${process.pid}-${runCount++}`);
}

function params(t: Trainer): Map<string, Float32Array> {
  return new Map(
    t.nets
      .params(['backbone', 'head', 'estimation', 'da_discriminator', 'generator', 'discriminator'], 0)
      .map((p) => [p.name, p.variable.dataSync() as Float32Array]),
  );
}

/** Copies `src`'s whole state into `dst` (so every trainer starts identical). */
function copyState(src: Trainer, dst: Trainer): void {
  dst.loadState(src.checkpointTensors(), null);
}

async function equivalence(cfg: TrainConfig, trained: string[], frozen: string[]): Promise<void> {
  const B = 4;
  const big = randomBatch(2 * B, cfg.model.input_size, CLASSES, 123, cfg.model.groups);
  const one = new Trainer(cfg, { numClasses: CLASSES, group: null, frozenStatistics: true });
  groups = await makeGroups();
  const two = groups.map((g) => new Trainer(cfg, { numClasses: CLASSES, group: g, frozenStatistics: true }));
  try {
    two.forEach((t) => copyState(one, t));
    const initial = params(one);
    const r1 = await one.step(big, 0);
    const r2 = await Promise.all(two.map((t, r) => t.step(sliceBatch(big, r * B, (r + 1) * B), 0)));
    assert.deepEqual(r1.skipped, []);
    r2.forEach((r) => assert.deepEqual(r.skipped, []));
    const p1 = params(one);
    const [pa, pb] = two.map(params);
    let maxDiff = 0;
    const movedBy = new Map<string, number>();
    for (const [name, v] of p1) {
      const a = pa!.get(name)!;
      const b = pb!.get(name)!;
      const v0 = initial.get(name)!;
      const net = name.slice(0, name.indexOf('.'));
      for (let i = 0; i < v.length; i++) {
        assert.equal(a[i], b[i], `ranks disagree on ${name}[${i}]`);
        maxDiff = Math.max(maxDiff, Math.abs(v[i]! - a[i]!) / Math.max(1, Math.abs(v[i]!)));
        movedBy.set(net, Math.max(movedBy.get(net) ?? 0, Math.abs(v[i]! - v0[i]!)));
      }
    }
    for (const net of trained) assert.ok((movedBy.get(net) ?? 0) > 1e-6, `${net} did not move`);
    for (const net of frozen) assert.equal(movedBy.get(net) ?? 0, 0, `${net} must stay frozen`);
    assert.ok(maxDiff < 2e-5, `world size 2 × ${B} differs from world size 1 × ${2 * B} by ${maxDiff}`);
  } finally {
    one.dispose();
    two.forEach((t) => t.dispose());
    await Promise.all(groups.map((g) => g.close()));
  }
}

test('FR step: world size 2 with batch B gives the parameters of world size 1 with batch 2B', async () => {
  await equivalence(
    tinyConfig(['mode=aifr', 'amp=false', 'model.dropout=0']),
    ['backbone', 'head', 'estimation', 'da_discriminator'],
    [],
  );
});

test('FAS step (D then G): world size 2 × B ≡ world size 1 × 2B', async () => {
  await equivalence(
    tinyConfig(['mode=fas', 'amp=false', 'model.dropout=0']),
    ['generator', 'discriminator'],
    ['backbone', 'head', 'estimation', 'da_discriminator'],
  );
});

test('an overflow injected on one rank makes both ranks skip the step and halve the scale', async () => {
  const cfg = tinyConfig(['mode=aifr', 'amp=true', 'wire=f16', 'loss_scale.init=1024']);
  groups = await makeGroups();
  const trainers = groups.map(
    (g) =>
      new Trainer(cfg, {
        numClasses: CLASSES,
        group: g,
        beforeSync: (task, it, grads) => {
          if (g.rank === 1 && it === 0) {
            const old = grads[0]!;
            grads[0] = tf.fill(old.shape, Infinity);
            old.dispose();
          }
        },
      }),
  );
  try {
    copyState(trainers[0]!, trainers[1]!);
    const before = trainers.map(params);
    const batch = randomBatch(8, cfg.model.input_size, CLASSES, 5);
    const r0 = await Promise.all(trainers.map((t, r) => t.step(sliceBatch(batch, 4 * r, 4 * r + 4), 0)));
    for (const r of r0) {
      assert.deepEqual(r.skipped, ['fr']);
      assert.equal(r.scale.fr, 512);
    }
    trainers.forEach((t, r) => {
      for (const [name, v] of params(t))
        assert.deepEqual(v, before[r]!.get(name), `${name} changed on a skipped step`);
      assert.equal(t.optimizers()[0]!.stepCount, 0);
    });
    const r1 = await Promise.all(trainers.map((t, r) => t.step(sliceBatch(batch, 4 * r, 4 * r + 4), 1)));
    for (const r of r1) {
      assert.deepEqual(r.skipped, []);
      assert.equal(r.scale.fr, 512);
    }
  } finally {
    trainers.forEach((t) => t.dispose());
    await Promise.all(groups.map((g) => g.close()));
  }
});

test("a FAS step counts its batch once in the generator's BatchNorm statistics, as PyTorch's single forward does", async () => {
  const cfg = tinyConfig(['mode=fas', 'amp=false', 'model.dropout=0']);
  const t = new Trainer(cfg, { numClasses: CLASSES, group: null });
  try {
    const norms = t.nets.generator!.namedModules().filter(([, m]) => m instanceof BatchNorm) as [
      string,
      BatchNorm,
    ][];
    assert.ok(norms.length > 0, 'the generator has BatchNorm layers');
    const counts = () => norms.map(([, m]) => m.numBatchesTracked.dataSync()[0]!);
    const means = () => norms.map(([, m]) => Array.from(m.runningMean.dataSync()));
    const batch = (seed: number) => randomBatch(4, cfg.model.input_size, CLASSES, seed, cfg.model.groups);
    const c = counts();
    await t.step(batch(7), 0); // the first step also creates the optimizers' slots
    assert.deepEqual(
      counts(),
      c.map((x) => x + 1),
      'first step: each BatchNorm counted the batch once',
    );
    const [c0, m0] = [counts(), means()];
    const tensors = tf.memory().numTensors;
    await t.step(batch(8), 1);
    assert.equal(tf.memory().numTensors, tensors, 'no tensor leaked by the step');
    assert.deepEqual(
      counts(),
      c0.map((c) => c + 1),
      'each BatchNorm counted the batch exactly once',
    );
    means().forEach((m, i) =>
      assert.ok(
        m.some((v, j) => v !== m0[i]![j]),
        `${norms[i]![0]} running mean moved`,
      ),
    );
  } finally {
    t.dispose();
  }
});

test('joint AMP steps on two ranks: packed read-back gives the parameters of per-tensor bit for bit', async () => {
  // Small buckets (about 4 KB) so that each task's sync has many buckets of several gradients.
  const cfg = tinyConfig(['mode=joint', 'amp=true', 'wire=f16', 'bucket_mb=0.004', 'model.dropout=0']);
  const batch = randomBatch(8, cfg.model.input_size, CLASSES, 31, cfg.model.groups);
  const run = async (readBack: 'per-tensor' | 'packed') => {
    groups = await makeGroups();
    const ts = groups.map((g) => new Trainer(cfg, { numClasses: CLASSES, group: g, readBack }));
    try {
      ts.forEach((t) => t.loadState(template.checkpointTensors(), null));
      const reports = [];
      for (let it = 0; it < 2; it++)
        reports.push(await Promise.all(ts.map((t, r) => t.step(sliceBatch(batch, 4 * r, 4 * r + 4), it))));
      return { params: ts.map(params), reports };
    } finally {
      ts.forEach((t) => t.dispose());
      await Promise.all(groups.map((g) => g.close()));
    }
  };
  const template = new Trainer(cfg, { numClasses: CLASSES, group: null });
  try {
    const a = await run('per-tensor');
    const b = await run('packed');
    const sync = b.reports[1]![0]!.timings.syncs;
    for (const name of ['fr', 'fas_d', 'fas_g'] as const) {
      const s = sync[name]!;
      assert.equal(s.readBack, 'packed');
      assert.ok(s.buckets > 1, `${name}: several buckets`);
      assert.equal(s.readBacks, s.buckets, `${name}: one read-back per bucket`);
      assert.ok(
        a.reports[1]![0]!.timings.syncs[name]!.readBacks > s.buckets,
        `${name}: fewer than per tensor`,
      );
    }
    for (const r of [0, 1])
      for (const [name, v] of a.params[r]!) {
        const w = b.params[r]!.get(name)!;
        assert.deepEqual(new Uint32Array(w.buffer), new Uint32Array(v.buffer), `rank ${r}: ${name}`);
      }
  } finally {
    template.dispose();
  }
});
