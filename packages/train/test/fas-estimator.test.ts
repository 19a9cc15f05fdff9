// The FAS step's age estimator: the release never puts it in eval mode, so its BatchNorm counts the
// generated faces in its running statistics ('train', the default); 'eval' is the paper's frozen net.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '@mtlface/backend';
import { BatchNorm, type Module } from '@mtlface/model';
import { Trainer } from '../src/trainer.js';
import { randomBatch, tinyConfig } from './helpers.js';

before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
});

/** Batch counters of every BatchNorm of a network. */
function counts(m: Module): number[] {
  return m
    .namedModules()
    .flatMap(([, c]) => (c instanceof BatchNorm ? [c.numBatchesTracked.dataSync()[0]!] : []));
}

for (const [mode, counted] of [
  ['train', 1],
  ['eval', 0],
] as const) {
  test(`fas_estimator=${mode}: a FAS step counts ${counted} batch in the estimator's statistics, none in the backbone's`, async () => {
    const cfg = tinyConfig(['mode=fas', 'amp=false', 'model.dropout=0', `fas_estimator=${mode}`]);
    const t = new Trainer(cfg, { numClasses: 10, group: null });
    try {
      const [est, bb] = [counts(t.nets.estimation), counts(t.nets.backbone)];
      assert.ok(est.length > 0 && bb.length > 0);
      await t.step(randomBatch(4, cfg.model.input_size, 10, 3, cfg.model.groups), 0);
      assert.deepEqual(
        counts(t.nets.estimation),
        est.map((c) => c + counted),
      );
      assert.deepEqual(counts(t.nets.backbone), bb);
    } finally {
      t.dispose();
    }
  });
}
