// What a training worker exports after a joint run: every series the dashboard queries that a
// worker owns exists, and each task's series carry their own task label (FAS overflows and the FAS
// loss scale used to be exported under task "fr", or not at all).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@mtlface/backend';
import { loadConfig } from '@mtlface/train';
import type { WorkerMetrics } from '@mtlface/metrics';
import { runTraining } from '../workers/src/train/run.js';
import { dashboardQueries, metricNamesIn } from './metrics-promql.js';
import { REPO, TINY, tinySynth, dataOverrides } from './train-helpers.js';

let data: string;
before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
  data = await tinySynth();
});

/**
 * Series a worker does not export from its own training registry: the launcher's (restarts, exits,
 * up, the age of a worker's last report) and the process defaults, which a worker collects only
 * when it runs under the launcher (they are not training series).
 */
const NOT_TRAINING_SERIES =
  /^(process_|mtl_worker_nodejs_|mtl_worker_process_|mtl_worker_metrics_age|mtl_launcher_|mtl_worker_up$|mtl_worker_exits_total$)/;

test('after a joint run with validation, the worker exports every dashboard series it owns, FAS ones under task="fas"', async () => {
  const cfg = loadConfig(join(REPO, 'configs/demo.yaml'), [
    ...TINY,
    ...dataOverrides(data),
    'mode=joint',
    'iterations=3',
    'checkpoint_interval=3',
    'val_interval=3',
    `val_pairs=[${join(data, 'pairs.txt')}]`,
    // A scale that overflows on the f16 wire: both tasks skip steps, so their skip counters exist.
    'loss_scale.init=1.0e30',
    `checkpoint_dir=${mkdtempSync(join(tmpdir(), 'mtl-metrics-'))}`,
  ]);
  let metrics: WorkerMetrics | null = null;
  await runTraining(cfg, {
    log: () => {},
    env: {},
    skipBackendInit: true,
    group: null,
    onMetrics: (m) => (metrics = m),
  });
  const text = await metrics!.registry.metrics();
  const present = new Set([...text.matchAll(/^(mtl_[a-z0-9_]+)(?:\{|\s)/gm)].map((m) => m[1]!));
  const wanted = new Set(dashboardQueries().flatMap((q) => metricNamesIn(q.expr)));
  const missing = [...wanted].filter((n) => !NOT_TRAINING_SERIES.test(n) && !present.has(n));
  assert.deepEqual(missing, [], 'dashboard series a worker should export after a joint run');
  const labelled = (name: string, task: string) =>
    new RegExp(`^${name}\\{[^}]*task="${task}"[^}]*\\} `, 'm').test(text);
  for (const task of ['fr', 'fas']) {
    assert.ok(labelled('mtl_loss_scale', task), `mtl_loss_scale{task="${task}"}`);
    assert.ok(labelled('mtl_skipped_steps_total', task), `mtl_skipped_steps_total{task="${task}"}`);
    assert.ok(labelled('mtl_learning_rate', task), `mtl_learning_rate{task="${task}"}`);
    assert.ok(labelled('mtl_loss', task), `mtl_loss{task="${task}"}`);
  }
  assert.doesNotMatch(
    text,
    /^mtl_loss\{[^}]*task="fr"[^}]*name="(d|g|g_gan|g_id|g_age)"/m,
    'no FAS loss under fr',
  );
});
