// Checkpoint/resume: a run stopped at k and resumed reaches k+m with the weights of a run never stopped.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { rawToInt32 } from '@mtlface/model';
import { findLatestCheckpoint, readCheckpointTensors } from '@mtlface/train';
import { runTraining } from '../workers/src/train/run.js';
import { QUIET_RUN, sixIterationRun, tinySynth } from './train-helpers.js';

let data: string;
before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
  data = await tinySynth();
});

function cfg(dir: string, extra: string[]) {
  return sixIterationRun(data, dir, ['keep_checkpoints=5', ...extra]);
}

const quiet = QUIET_RUN;

test('joint run stopped at iteration 3 and resumed reaches iteration 6 with the same weights as an uninterrupted run', async () => {
  const straight = mkdtempSync(join(tmpdir(), 'mtl-resume-a-'));
  const stopped = mkdtempSync(join(tmpdir(), 'mtl-resume-b-'));
  const tensorsBefore = tf.memory().numTensors;
  await runTraining(cfg(straight, []), quiet);
  const first = await runTraining(cfg(stopped, ['stop_at=3']), quiet);
  assert.equal(first.iterations, 3);
  const second = await runTraining(cfg(stopped, ['resume=true']), quiet);
  assert.equal(second.iterations, 3, 'the resumed run does iterations 4..6 only');
  assert.equal(tf.memory().numTensors, tensorsBefore, 'runs release every tensor');

  const a = findLatestCheckpoint(straight)!;
  const b = findLatestCheckpoint(stopped)!;
  assert.equal(a.sidecar.iteration, 6);
  assert.equal(b.sidecar.iteration, 6);
  assert.deepEqual(b.sidecar.scalers, a.sidecar.scalers);
  assert.deepEqual(b.sidecar.optimizers, a.sidecar.optimizers);
  const ta = readCheckpointTensors(a);
  const tb = readCheckpointTensors(b);
  assert.deepEqual([...tb.keys()].sort(), [...ta.keys()].sort());
  assert.ok(
    [...ta.keys()].some((k) => k.startsWith('optim.fr.')) &&
      [...ta.keys()].some((k) => k.startsWith('optim.generator.')),
  );
  for (const [k, v] of ta) assert.deepEqual(tb.get(k)!.bytes, v.bytes, `${k} differs after resume`);
  // And training did something: the weights moved from iteration 3.
  const mid = readCheckpointTensors(findLatestCheckpoint(join(straight, 'ckpt-0000003.json'))!);
  assert.notDeepEqual(
    mid.get('backbone.input_layer.0.weight')!.bytes,
    ta.get('backbone.input_layer.0.weight')!.bytes,
  );
});

test('FAS recipe starts from an AIFR checkpoint (init_checkpoint) and keeps that backbone and estimator frozen', async () => {
  // fas_estimator 'train' (the release's default): no optimizer steps the estimator, but its
  // BatchNorm counts the generated faces in its running statistics, one batch per FAS step.
  const aifrDir = mkdtempSync(join(tmpdir(), 'mtl-init-aifr-'));
  const fasDir = mkdtempSync(join(tmpdir(), 'mtl-init-fas-'));
  await runTraining(cfg(aifrDir, ['mode=aifr', 'iterations=2', 'checkpoint_interval=2']), quiet);
  await runTraining(
    cfg(fasDir, ['mode=fas', 'iterations=2', 'checkpoint_interval=2', `init_checkpoint=${aifrDir}`]),
    quiet,
  );
  const aifr = readCheckpointTensors(findLatestCheckpoint(aifrDir)!);
  const fas = readCheckpointTensors(findLatestCheckpoint(fasDir)!);
  const estimatorStatistic = /^estimation\..*(running_mean|running_var|num_batches_tracked)$/;
  for (const [k, v] of aifr) {
    if (!k.startsWith('backbone.') && !k.startsWith('estimation.')) continue;
    if (estimatorStatistic.test(k)) continue;
    assert.deepEqual(fas.get(k)?.bytes, v.bytes, `${k} is not the AIFR checkpoint's (or was updated by FAS)`);
  }
  const counter = 'estimation.age_output_layer.0.num_batches_tracked';
  const count = (m: typeof aifr) => rawToInt32(m.get(counter)!, counter)[0]!;
  assert.equal(count(fas), count(aifr) + 2, 'the estimator counted each FAS step once');
  assert.ok([...fas.keys()].some((k) => k.startsWith('generator.')));
  assert.ok([...fas.keys()].some((k) => k.startsWith('optim.discriminator.')));
});
