import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { aggregateSnapshots, foldRetired, forNode } from '../src/aggregate.js';
import { createWorkerMetrics, NODE_SUMMED } from '@mtlface/metrics';
import { find, parseExposition } from './helpers.js';

async function snapshotOf(rank: number, images: number, loss: number, computeSeconds: number[]) {
  const m = createWorkerMetrics({ rank, timeline: null, defaultMetrics: false });
  m.images(images);
  m.loss('fr', 'id', loss);
  for (const s of computeSeconds) m.stepPhase('compute', s);
  return m.registry.getMetricsAsJSON();
}

test('node aggregation keeps per-rank series and sums node totals', async () => {
  const a = await snapshotOf(0, 64, 1.5, [0.01, 0.3]);
  const b = await snapshotOf(1, 32, 2.5, [0.02]);
  const s = parseExposition(
    await aggregateSnapshots([forNode(a, NODE_SUMMED), forNode(b, NODE_SUMMED)]).metrics(),
  );
  assert.deepEqual(
    find(s, 'mtl_loss').map((x) => [x.labels.rank, x.value]),
    [
      ['0', 1.5],
      ['1', 2.5],
    ],
  );
  const images = find(s, 'mtl_images_total');
  assert.equal(images.length, 1);
  assert.equal(images[0]!.value, 96);
  assert.equal(images[0]!.labels.rank, undefined);
  assert.equal(find(s, 'mtl_step_phase_seconds_count', { phase: 'compute', rank: '0' })[0]!.value, 2);
  assert.equal(find(s, 'mtl_step_phase_seconds_count', { phase: 'compute', rank: '1' })[0]!.value, 1);
});

test('summed node counters equal the sum over ranks, and retiring workers keep them monotonic', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.nat(10_000), { minLength: 1, maxLength: 6 }), async (counts) => {
      const snaps = await Promise.all(counts.map((c, rank) => snapshotOf(rank, c, 0, [])));
      const total = counts.reduce((x, y) => x + y, 0);
      const live = parseExposition(
        await aggregateSnapshots(snaps.map((x) => forNode(x, NODE_SUMMED))).metrics(),
      );
      assert.equal(find(live, 'mtl_images_total')[0]!.value, total);
      // Every worker retires: the node total stays, and per-rank series are not kept.
      let retired: Awaited<ReturnType<typeof snapshotOf>> = [];
      for (const snap of snaps) retired = foldRetired(retired, snap, NODE_SUMMED);
      const after = parseExposition(await aggregateSnapshots([retired]).metrics());
      assert.equal(find(after, 'mtl_images_total')[0]!.value, total);
      assert.equal(find(after, 'mtl_loss').length, 0);
    }),
    { numRuns: 25 },
  );
});
