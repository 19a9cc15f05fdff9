// Validation during training: every val_interval iterations (and at the end) the pairs sets are evaluated,
// rank 0 logs one line per set and exports mtl_validation_score; sharded over 2 ranks = world size 1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { StoreServer } from '@mtlface/collective';
import { faceModelFromModules, loadPairsSet, validate, type ValidationReport } from '@mtlface/eval/model';
import type { WorkerMetrics } from '@mtlface/metrics';
import { loadConfig, ConfigError } from '@mtlface/train';
import { runTraining } from '../workers/src/train/run.js';
import { REPO, TINY, tinySynth, dataOverrides } from './train-helpers.js';
import { localGroups } from '../packages/train/test/helpers.js';

let data: string;
let store: StoreServer;
before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
  data = await tinySynth();
  store = await StoreServer.listen({ host: '127.0.0.1', port: 0, token: 't' });
});
after(async () => {
  await store.close();
});

function cfg(extra: string[] = []) {
  return loadConfig(join(REPO, 'configs/demo.yaml'), [
    ...TINY,
    ...dataOverrides(data),
    'mode=aifr',
    'iterations=4',
    'checkpoint_interval=100',
    `checkpoint_dir=${mkdtempSync(join(tmpdir(), 'mtl-val-'))}`,
    'val_interval=2',
    `val_pairs=[${join(data, 'pairs.txt')}]`,
    ...extra,
  ]);
}

test('val_interval without val_pairs is a config error naming the key', () => {
  assert.throws(
    () => loadConfig(join(REPO, 'configs/demo.yaml'), [...TINY, 'val_interval=5', 'val_pairs=[]']),
    (e: Error) =>
      e instanceof ConfigError && /key "val_pairs"/.test(e.message) && /demo\.yaml/.test(e.message),
  );
  assert.throws(
    () => loadConfig(join(REPO, 'configs/demo.yaml'), [...TINY, 'val_interval=-1']),
    (e: Error) => e instanceof ConfigError && /key "val_interval"/.test(e.message),
  );
});

test('world size 1: validation at iterations 2 and 4 is logged, exported, leaks nothing, and leaves train mode on', async () => {
  const lines: string[] = [];
  const counts: number[] = [];
  const modes: boolean[] = [];
  let metrics: WorkerMetrics | null = null;
  const tensors = tf.memory().numTensors;
  const r = await runTraining(cfg(), {
    log: (l) => lines.push(l),
    env: {},
    skipBackendInit: true,
    group: null,
    onMetrics: (m) => (metrics = m),
    onIteration: (_r, t) => {
      counts.push(tf.memory().numTensors);
      modes.push(t.nets.backbone.training && t.nets.estimation.training);
    },
  });
  assert.deepEqual(
    r.validations.map((v) => v.iteration),
    [2, 4],
  );
  const val = lines.filter((l) => l.startsWith('[val] '));
  assert.equal(val.length, 2, lines.join('\n'));
  const s = r.validations[1]!.report.sets[0]!;
  assert.equal(s.name, 'pairs');
  assert.equal(s.pairs, 40);
  assert.ok(s.accuracy > 0 && s.accuracy <= 1);
  assert.match(val[1]!, /^\[val\] pairs it 4: acc \d+\.\d% ± \d+\.\d \(thr -?\d\.\d{3}\), TAR@1e-3 \d+\.\d%/);
  assert.ok(val[1]!.includes(`acc ${(100 * s.accuracy).toFixed(1)}%`));
  assert.ok(!lines.some((l) => /leak/.test(l)), lines.join('\n'));
  // iteration 3 ran after the validation at 2: same tensor count, networks back in train mode
  assert.equal(counts[2], counts[1]);
  assert.deepEqual(modes, [true, true, true, true]);
  assert.equal(tf.memory().numTensors, tensors, 'the run releases everything');

  const exported = (await metrics!.registry.getMetricsAsJSON()).find(
    (m) => m.name === 'mtl_validation_score',
  );
  const byMetric = new Map(exported!.values.map((v) => [String(v.labels.metric), v]));
  assert.equal(byMetric.get('accuracy')?.value, s.accuracy);
  assert.equal(byMetric.get('accuracy')?.labels.set, 'pairs');
  assert.equal(byMetric.get('tar@far=0.001')?.value, s.tarAtFar[0]!.tar);
  assert.equal(byMetric.get('threshold')?.value, s.threshold);
});

test('world size 2: the sharded validation equals an unsharded one on the same weights; only rank 0 logs', async () => {
  const groups = await localGroups(store.port, `val-test-${process.pid}`);
  const c = cfg(['iterations=2']);
  const set = await loadPairsSet(join(data, 'pairs.txt'), { size: c.model.input_size });
  const logs: string[][] = [[], []];
  let reference: ValidationReport | null = null;
  let steps = 0;
  try {
    const runs = await Promise.all(
      groups.map((group, rank) =>
        runTraining(c, {
          log: (l) => logs[rank]!.push(l),
          env: {},
          skipBackendInit: true,
          group,
          onIteration: async (_report, t) => {
            // the weights the loop validates right after this hook, evaluated by one rank alone
            if (rank === 0 && ++steps === 2) {
              reference = await validate(faceModelFromModules(t.nets), [set], {
                batchSize: c.val_batch_size,
              });
            }
          },
        }),
      ),
    );
    assert.ok(reference, 'reference computed');
    const ref = (reference as ValidationReport).sets;
    for (const r of runs) {
      assert.deepEqual(
        r.validations.map((v) => v.iteration),
        [2],
      );
      // embeddings of a half batch differ from the full batch's by float rounding (1e-8 here): the
      // threshold may move by that much, every decision and rate must be the same
      const [got] = r.validations[0]!.report.sets;
      const [want] = ref;
      assert.ok(Math.abs(got!.threshold - want!.threshold) < 1e-5, `${got!.threshold} vs ${want!.threshold}`);
      assert.deepEqual({ ...got, threshold: 0 }, { ...want, threshold: 0 });
    }
    assert.equal(logs[0]!.filter((l) => l.startsWith('[val] ')).length, 1, logs[0]!.join('\n'));
    assert.equal(logs[1]!.filter((l) => l.startsWith('[val] ')).length, 0, logs[1]!.join('\n'));
  } finally {
    await Promise.all(groups.map((g) => g.close().catch(() => undefined)));
  }
});
