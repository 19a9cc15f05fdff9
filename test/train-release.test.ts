// A run moved between us and PyTorch through the release's save_models folder: started here and
// saved in the release's form, re-saved by PyTorch (torch.load + torch.save, /usr/bin/python3),
// continued here with release.restore_iter, it ends with the weights of a run never moved.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { importTorchState, readTorchWeights } from '@mtlface/model';
import { loadConfig, findLatestCheckpoint, readCheckpointTensors, Trainer } from '@mtlface/train';
import { runTraining } from '../workers/src/train/run.js';
import { QUIET_RUN, REPO, TINY, dataOverrides, sixIterationRun, tinySynth } from './train-helpers.js';

let data: string;
before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
  data = await tinySynth();
});

const cfg = (dir: string, extra: string[]) => sixIterationRun(data, dir, extra);
const quiet = QUIET_RUN;
const tmp = (name: string) => mkdtempSync(join(tmpdir(), `mtl-release-${name}-`));

/** PyTorch reads every file of the folder and writes it again, as a run continued there would. */
function resaveInTorch(dir: string): void {
  const code =
    'import os, sys, torch\nfor f in os.listdir(sys.argv[1]):\n    p = os.path.join(sys.argv[1], f)\n    torch.save(torch.load(p), p)';
  const r = spawnSync('/usr/bin/python3', ['-c', code, dir], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0)
    throw new Error(
      `torch.load/torch.save under /usr/bin/python3 (PyTorch 1.13 must be installed) failed: ${r.stderr}`,
    );
}

test('joint run saved in the release form at 3, re-saved by PyTorch and restored with restore_iter, reaches 6 as a run never moved', async () => {
  const straight = tmp('a');
  const first = tmp('b');
  const second = tmp('c');
  const saveModels = tmp('save-models');
  const tensorsBefore = tf.memory().numTensors;
  await runTraining(cfg(straight, []), quiet);
  await runTraining(cfg(first, ['stop_at=3', `release.save_models=${saveModels}`]), quiet);
  assert.deepEqual(
    readdirSync(saveModels).sort(),
    [
      'backbone',
      'd_optim',
      'da_discriminator',
      'discriminator',
      'estimation_network',
      'fas_scaler',
      'g_optim',
      'generator',
      'head',
      'optimizer',
      'scaler',
    ].map((f) => `${f}-3`),
  );
  resaveInTorch(saveModels);
  const lines: string[] = [];
  const resumed = await runTraining(
    cfg(second, [`release.save_models=${saveModels}`, 'release.restore_iter=3']),
    { ...quiet, log: (l: string) => lines.push(l) },
  );
  assert.equal(resumed.iterations, 3, 'iterations 4..6 only');
  assert.ok(lines.some((l) => l.includes(`restored iteration 3 from the release's files in ${saveModels}`)));
  assert.equal(tf.memory().numTensors, tensorsBefore, 'runs release every tensor');
  const a = findLatestCheckpoint(straight)!;
  const c = findLatestCheckpoint(second)!;
  assert.equal(c.sidecar.iteration, 6);
  assert.deepEqual(c.sidecar.scalers, a.sidecar.scalers);
  assert.deepEqual(c.sidecar.optimizers, a.sidecar.optimizers);
  const ta = readCheckpointTensors(a);
  const tc = readCheckpointTensors(c);
  assert.deepEqual([...tc.keys()].sort(), [...ta.keys()].sort());
  for (const [k, v] of ta) assert.deepEqual(tc.get(k)!.bytes, v.bytes, `${k} differs after the move`);
  // the end of the run is in the release's form too
  assert.ok(readdirSync(saveModels).includes('g_optim-6'));
});

test('a missing save_models file stops the start with one line naming it', async () => {
  const saveModels = tmp('empty');
  await assert.rejects(
    runTraining(cfg(tmp('d'), [`release.save_models=${saveModels}`, 'release.restore_iter=3']), quiet),
    (e: Error) =>
      e.message === `${join(saveModels, 'backbone-3')}: missing (restore_iter 3 reads backbone-3)`,
  );
});

test('id_pretrained_path / age_pretrained_path load into the backbone and age estimator of a fresh start', async () => {
  const source = tmp('src');
  const saveModels = tmp('pre');
  await runTraining(cfg(source, ['mode=aifr', 'iterations=1', `release.save_models=${saveModels}`]), quiet);
  const run = tmp('e');
  await runTraining(
    cfg(run, [
      'mode=fas',
      'fas_estimator=eval',
      'iterations=1',
      `release.id_pretrained_path=${join(saveModels, 'backbone-1')}`,
      `release.age_pretrained_path=${join(saveModels, 'estimation_network-1')}`,
    ]),
    quiet,
  );
  // FAS keeps both frozen: the run's checkpoint holds exactly the pretrained tensors
  const c = loadConfig(join(REPO, 'configs/demo.yaml'), [...TINY, ...dataOverrides(data), 'mode=fas']);
  const reference = new Trainer(c, { numClasses: 20, group: null });
  try {
    importTorchState(reference.nets.backbone, readTorchWeights(join(saveModels, 'backbone-1')));
    importTorchState(reference.nets.estimation, readTorchWeights(join(saveModels, 'estimation_network-1')));
    const got = readCheckpointTensors(findLatestCheckpoint(run)!);
    for (const [k, v] of reference.nets.stateDict()) {
      if (!k.startsWith('backbone.') && !k.startsWith('estimation.')) continue;
      assert.deepEqual(got.get(k)!.bytes, new Uint8Array((await v.data()).buffer), k);
    }
  } finally {
    reference.dispose();
  }
});
