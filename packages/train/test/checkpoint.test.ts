import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  mkdtempSync,
  readdirSync,
  truncateSync,
  writeFileSync,
  statSync,
  openSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { rawToTensor } from '@mtlface/model';
import {
  writeCheckpoint,
  findLatestCheckpoint,
  readCheckpointTensors,
  type CheckpointMeta,
} from '../src/checkpoint.js';

await tf.setBackend('cpu');

function meta(iteration: number): CheckpointMeta {
  return {
    iteration,
    mode: 'aifr',
    scalers: { fr: { scale: 1024, growthTracker: iteration } },
    optimizers: { sgd: { stepCount: iteration } },
    sampler: { iteration, epoch: 0 },
    rng: { seed: 7 },
    worldSize: 2,
    config: { any: 'thing' },
    configHash: 'abc',
    run: { id: 'run-a', attempt: 0 },
  };
}

function tensorsAt(iteration: number): [string, tf.Tensor][] {
  return [
    ['backbone.w', tf.fill([3, 2], iteration)],
    ['optim.sgd.backbone.w.momentum_buffer', tf.fill([3, 2], -iteration)],
    ['backbone.bn.num_batches_tracked', tf.scalar(iteration, 'int32')],
  ];
}

test('round trip: tensors, sidecar state, and pruning keeps the newest two', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-ckpt-'));
  for (const it of [10, 20, 30]) {
    const ts = tensorsAt(it);
    await writeCheckpoint(dir, ts, meta(it), 2);
    ts.forEach(([, t]) => t.dispose());
  }
  assert.deepEqual(readdirSync(dir).sort(), [
    'ckpt-0000020.json',
    'ckpt-0000020.safetensors',
    'ckpt-0000030.json',
    'ckpt-0000030.safetensors',
  ]);
  const found = findLatestCheckpoint(dir);
  assert.ok(found);
  assert.equal(found.sidecar.iteration, 30);
  assert.deepEqual(found.sidecar.scalers, { fr: { scale: 1024, growthTracker: 30 } });
  assert.equal(found.sidecar.tensors.count, 3);
  const raw = readCheckpointTensors(found);
  const w = rawToTensor(raw.get('backbone.w')!);
  assert.deepEqual(w.shape, [3, 2]);
  assert.ok(Array.from(w.dataSync()).every((v) => v === 30));
  assert.equal(raw.get('backbone.bn.num_batches_tracked')!.dtype, 'I32');
  w.dispose();
});

test('a torn or corrupt newest checkpoint is reported and the previous one is used', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-ckpt-'));
  for (const it of [1, 2]) {
    const ts = tensorsAt(it);
    await writeCheckpoint(dir, ts, meta(it), 5);
    ts.forEach(([, t]) => t.dispose());
  }
  const newest = join(dir, 'ckpt-0000002.safetensors');
  truncateSync(newest, statSync(newest).size - 5);
  const warnings: string[] = [];
  const found = findLatestCheckpoint(dir, (m) => warnings.push(m));
  assert.equal(found?.sidecar.iteration, 1);
  assert.match(warnings[0]!, /ckpt-0000002\.json is not usable: .*bytes.*torn write.*previous/);

  // Same size, flipped content: the checksum catches it.
  const ts = tensorsAt(3);
  await writeCheckpoint(dir, ts, meta(3), 5);
  ts.forEach(([, t]) => t.dispose());
  const f3 = join(dir, 'ckpt-0000003.safetensors');
  const size = statSync(f3).size;
  truncateSync(f3, size - 4);
  const fd = openSync(f3, 'a');
  writeSync(fd, new Uint8Array([1, 2, 3, 4]));
  closeSync(fd);
  warnings.length = 0;
  assert.equal(findLatestCheckpoint(dir, (m) => warnings.push(m))?.sidecar.iteration, 1);
  assert.match(warnings[0]!, /ckpt-0000003\.json.*sha256/);

  // A half-written sidecar (crash mid-write would leave only a .tmp, but be defensive).
  writeFileSync(join(dir, 'ckpt-0000004.json'), '{"format": "mtlface-chec');
  warnings.length = 0;
  assert.equal(findLatestCheckpoint(dir, (m) => warnings.push(m))?.sidecar.iteration, 1);
  assert.match(warnings[0]!, /ckpt-0000004\.json.*torn/);
});

test('an empty or missing directory has no checkpoint', () => {
  assert.equal(findLatestCheckpoint(join(tmpdir(), 'mtl-no-such-dir-xyz')), null);
});
