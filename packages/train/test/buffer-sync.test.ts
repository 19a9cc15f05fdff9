// Buffers at world size 2, as DDP's broadcast_buffers keeps them: each rank's batch-norm running
// statistics follow its own batches, but before each training forward of a DDP-wrapped network
// (the release wraps all but the backbone it hands to the FAS step) rank 0's buffers replace them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { ProcessGroup } from '@mtlface/collective';
import type { NetworkName } from '@mtlface/model';
import { Trainer } from '../src/trainer.js';
import { localGroups, tinyConfig, randomBatch, sliceBatch, withStore } from './helpers.js';
import type { TrainConfig } from '../src/config.js';

const CLASSES = 10;
const B = 4;
const store = withStore();

/** Every buffer of the named networks, by checkpoint name (copies). */
function buffers(t: Trainer, networks: readonly NetworkName[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [prefix, mod] of t.nets.modules()) {
    if (!networks.includes(prefix)) continue;
    for (const [n, v] of mod.namedBuffers()) out.set(`${prefix}.${n}`, Float32Array.from(v.dataSync()));
  }
  return out;
}

function differing(a: Map<string, Float32Array>, b: Map<string, Float32Array>): string[] {
  return [...a.keys()].filter((k) => !tf.util.arraysEqual(a.get(k)!, b.get(k)!));
}

/**
 * Two steps at world size 2; then a world-size-1 trainer restored from rank 0's state after step 0
 * runs rank 1's second batch. Its buffers in `synced` must be rank 1's exactly: rank 1 started the
 * step from rank 0's buffers and updated them with its own batch.
 */
async function rank1FollowsRank0(
  cfg: TrainConfig,
  synced: NetworkName[],
  agree: NetworkName[],
  tag: string,
): Promise<void> {
  const groups: ProcessGroup[] = await localGroups(store.port(), `buffer-sync-${process.pid}-${tag}`);
  const two = groups.map((g) => new Trainer(cfg, { numClasses: CLASSES, group: g }));
  const ref = new Trainer(cfg, { numClasses: CLASSES, group: null });
  const batch = (it: number) => randomBatch(2 * B, cfg.model.input_size, CLASSES, 40 + it, cfg.model.groups);
  const half = (it: number, r: number) => sliceBatch(batch(it), r * B, (r + 1) * B);
  try {
    two[1]!.loadState(two[0]!.checkpointTensors(), null);
    await Promise.all(two.map((t, r) => t.step(half(0, r), 0)));
    const after0 = two.map((t) => buffers(t, synced));
    const drifted = differing(after0[0]!, after0[1]!);
    assert.ok(drifted.length > 0, 'after one step the ranks hold different running statistics');
    ref.loadState(two[0]!.checkpointTensors(), null);
    const tensors = tf.memory().numTensors;
    await Promise.all(two.map((t, r) => t.step(half(1, r), 1)));
    assert.equal(tf.memory().numTensors, tensors, 'no tensor leaked by the step (broadcast included)');
    await ref.step(half(1, 1), 1);
    const [b0, b1] = two.map((t) => buffers(t, synced));
    assert.deepEqual(differing(b1!, buffers(ref, synced)), [], "rank 1 = rank 0's buffers + rank 1's batch");
    assert.ok(differing(b0!, b1!).length > 0, 'rank 0 and rank 1 still update on their own batches');
    const [a0, a1] = two.map((t) => buffers(t, agree));
    assert.deepEqual(differing(a0!, a1!), [], 'buffers both ranks compute identically agree');
  } finally {
    ref.dispose();
    two.forEach((t) => t.dispose());
    await Promise.all(groups.map((g) => g.close()));
  }
}

test("FR step at world size 2: each FR network starts from rank 0's buffers", async () => {
  const cfg = tinyConfig(['mode=aifr', 'amp=false', 'model.dropout=0']);
  await rank1FollowsRank0(cfg, ['backbone', 'head', 'estimation', 'da_discriminator'], [], 'fr');
});

test("FAS step at world size 2: generator and age estimator start from rank 0's buffers, D's agree", async () => {
  const cfg = tinyConfig(['mode=fas', 'amp=false', 'model.dropout=0', 'fas_estimator=train']);
  // The discriminator's spectral-norm vectors depend on its updated weights in the G step, which the
  // rank-1-only reference does not share; both ranks iterate identically, so they must simply agree.
  await rank1FollowsRank0(cfg, ['generator', 'estimation'], ['discriminator'], 'fas');
});
