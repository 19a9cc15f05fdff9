import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { DistributedSampler, permutation } from '../src/index.js';

/**
 * Independent reading of the spec: the stream of global batches is the concatenation over epochs
 * e = 0, 1, … of consecutive chunks of B·W entries of permutation(N, seed + e) (the incomplete last
 * chunk dropped); in each global batch, rank r owns the entries at positions r, r+W, r+2W, ….
 */
function referenceBatch(N: number, B: number, W: number, r: number, seed: number, k: number): number[] {
  let epoch = 0;
  let remaining = k;
  for (;;) {
    const perm = Array.from(permutation(N, seed + epoch));
    const chunks: number[][] = [];
    for (let s = 0; s + B * W <= N; s += B * W) chunks.push(perm.slice(s, s + B * W));
    if (remaining < chunks.length) return (chunks[remaining] as number[]).filter((_, pos) => pos % W === r);
    remaining -= chunks.length;
    epoch++;
  }
}

test('permutation is a permutation and depends on the seed', () => {
  const a = Array.from(permutation(1000, 1));
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  assert.notDeepEqual(a, Array.from(permutation(1000, 2)));
  assert.deepEqual(a, Array.from(permutation(1000, 1)));
});

test('sampler batches equal the reference for many sizes, world sizes, ranks and iterations (incl. resume at k)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200 }),
      fc.integer({ min: 1, max: 7 }),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 0, max: 1000 }),
      fc.integer({ min: 0, max: 30 }),
      (N, B, W, seed, k) => {
        fc.pre(N >= B * W);
        for (let r = 0; r < W; r++) {
          // A fresh sampler asked for iteration k directly = resuming at k.
          const s = new DistributedSampler({ size: N, batchSize: B, worldSize: W, rank: r, seed });
          assert.deepEqual(Array.from(s.batch(k)), referenceBatch(N, B, W, r, seed, k));
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('resuming at k yields exactly the batches an uninterrupted run yields from k on', () => {
  const opts = { size: 103, batchSize: 4, worldSize: 3, rank: 1, seed: 7 };
  const full = [...new DistributedSampler(opts).batches(0, 40)].map((b) => Array.from(b.indices));
  const resumed = [...new DistributedSampler(opts).batches(17, 23)].map((b) => Array.from(b.indices));
  assert.deepEqual(resumed, full.slice(17));
});

test('in one epoch the ranks partition the kept prefix: disjoint, each sample at most once, tail dropped', () => {
  for (const W of [1, 2, 3, 4, 8]) {
    const N = 250;
    const B = 5;
    const samplers = Array.from({ length: W }, (_, r) => new DistributedSampler({ size: N, batchSize: B, worldSize: W, rank: r, seed: 3 }));
    const all = samplers.flatMap((s) => Array.from(s.epochIndices(2)));
    const kept = Math.floor(N / (B * W)) * B * W;
    assert.equal(all.length, kept);
    assert.equal(new Set(all).size, kept, `duplicates with W=${W}`);
    assert.equal((samplers[0] as DistributedSampler).batchesPerEpoch, kept / (B * W));
  }
});

test('epochs are shuffled differently, deterministically (seed + epoch)', () => {
  const s = new DistributedSampler({ size: 64, batchSize: 8, worldSize: 2, rank: 0, seed: 5 });
  assert.notDeepEqual(Array.from(s.epochIndices(0)), Array.from(s.epochIndices(1)));
  // seed 5 epoch 1 == seed 6 epoch 0
  const t = new DistributedSampler({ size: 64, batchSize: 8, worldSize: 2, rank: 0, seed: 6 });
  assert.deepEqual(Array.from(s.epochIndices(1)), Array.from(t.epochIndices(0)));
  assert.deepEqual(s.position(9), { epoch: 2, step: 1 });
});

test('shuffle: false keeps dataset order', () => {
  const s = new DistributedSampler({ size: 10, batchSize: 2, worldSize: 2, rank: 1, seed: 0, shuffle: false });
  assert.deepEqual(Array.from(s.batch(0)), [1, 3]);
  assert.deepEqual(Array.from(s.batch(1)), [5, 7]);
  assert.deepEqual(Array.from(s.batch(2)), [1, 3]);
});

test('bad options are rejected with the field named', () => {
  assert.throws(() => new DistributedSampler({ size: 10, batchSize: 2, worldSize: 2, rank: 2, seed: 0 }), /rank must be in \[0, 2\)/);
  assert.throws(() => new DistributedSampler({ size: 3, batchSize: 2, worldSize: 2, rank: 0, seed: 0 }), /cannot fill one global batch/);
  assert.throws(() => new DistributedSampler({ size: 10, batchSize: 0, worldSize: 1, rank: 0, seed: 0 }), /batchSize/);
});

test('permutation and sampler batches equal an independent Python derivation of the documented algorithm', () => {
  // The reference above reuses `permutation`; this one re-derives it (hash, PRNG, Fisher–Yates)
  // in Python integers from rng.ts's documentation, so a change of the shuffle cannot pass unseen.
  const cases = [
    { name: 'small', N: 10, B: 2, W: 2, seed: 0, count: 7 },
    { name: 'odd', N: 103, B: 4, W: 3, seed: 7, count: 20 },
    { name: 'many-ranks', N: 250, B: 5, W: 8, seed: 12345, count: 9 },
  ];
  const script = fileURLToPath(new URL('./fixtures/sampler_reference.py', import.meta.url));
  const r = spawnSync('/usr/bin/python3', [script, JSON.stringify(cases)], { encoding: 'utf8' });
  assert.equal(r.status, 0, `python3 failed: ${r.stderr}${r.error?.message ?? ''}`);
  const ref = JSON.parse(r.stdout) as Record<string, number[][][]>;
  for (const c of cases) {
    for (let rank = 0; rank < c.W; rank++) {
      const s = new DistributedSampler({ size: c.N, batchSize: c.B, worldSize: c.W, rank, seed: c.seed });
      const ours = Array.from({ length: c.count }, (_, k) => Array.from(s.batch(k)));
      assert.deepEqual(ours, ref[c.name]![rank], `${c.name}, rank ${rank}`);
    }
  }
});
