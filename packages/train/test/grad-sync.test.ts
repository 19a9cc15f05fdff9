import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { GradientBucketer, gradientsOnDevice, type GradientGroup } from '../src/grad-sync.js';

await tf.setBackend('cpu');

/** In-process group of `w` ranks: each allReduce call resolves once every rank has contributed. */
function fakeGroups(w: number): GradientGroup[] {
  let pending: { buf: Float32Array; resolve: () => void }[] = [];
  const calls: number[] = [];
  return Array.from({ length: w }, (_, rank) => ({
    rank,
    worldSize: w,
    allReduce(buf: Float32Array, opts?: { op?: string }) {
      calls.push(buf.length);
      return new Promise<void>((resolve) => {
        pending.push({ buf, resolve });
        if (pending.length === w) {
          const all = pending;
          pending = [];
          assert.ok(
            all.every((p) => p.buf.length === all[0]!.buf.length),
            'ranks reduce the same bucket',
          );
          const sum = new Float32Array(buf.length);
          for (const p of all) p.buf.forEach((v, i) => (sum[i] += v));
          if (opts?.op === 'mean') sum.forEach((v, i) => (sum[i] = v / w));
          for (const p of all) p.buf.set(sum);
          setImmediate(() => all.forEach((p) => p.resolve()));
        }
      });
    },
  }));
}

test('buckets hold parameters in reverse order and respect bucketBytes', () => {
  const shapes = [[10], [3, 4], [5], [20], [2]];
  const b = new GradientBucketer(shapes, { bucketBytes: 4 * 16, wire: 'f32' });
  assert.deepEqual(
    b.buckets.map((x) => x.params),
    [[4, 3], [2, 1], [0]],
    'a bucket closes once it reaches the cap',
  );
  assert.deepEqual(
    b.buckets.map((x) => x.buffer.length),
    [22, 17, 10],
  );
  const one = new GradientBucketer(shapes, { bucketBytes: 25 * 2 ** 20, wire: 'f32' });
  assert.equal(one.buckets.length, 1);
  assert.deepEqual(one.buckets[0]!.params, [4, 3, 2, 1, 0]);
});

test('two ranks end with the mean of their gradients, unscaled, in parameter order', async () => {
  const shapes = [[3], [2, 2], [5]];
  const groups = fakeGroups(2);
  const scale = 1024;
  const per = [0, 1].map((r) => shapes.map((s, i) => tf.fill(s, (r + 1) * (i + 1))));
  const before = tf.memory().numTensors;
  const results = await Promise.all(
    groups.map((g, r) =>
      new GradientBucketer(shapes, { bucketBytes: 20, wire: 'f16' }).sync(per[r]!, g, scale),
    ),
  );
  for (const res of results) {
    assert.ok(res.grads);
    res.grads.forEach((t, i) => {
      assert.deepEqual(t.shape, shapes[i]);
      assert.ok(Array.from(t.dataSync()).every((v) => v === 1.5 * (i + 1)));
    });
    assert.equal(res.timings.buckets, 2);
    assert.equal(res.timings.bytes, 4 * 12);
    res.grads.forEach((t) => t.dispose());
  }
  assert.equal(tf.memory().numTensors, before, 'sync leaves no tensors beyond the returned gradients');
  per.flat().forEach((t) => t.dispose());
});

test('an inf on one rank makes every rank report the overflow', async () => {
  const shapes = [[4], [4]];
  const groups = fakeGroups(2);
  const grads = [
    [tf.tensor([1, 2, 3, 4]), tf.tensor([1, Infinity, 3, 4])],
    [tf.tensor([1, 2, 3, 4]), tf.tensor([1, 2, 3, 4])],
  ];
  const results = await Promise.all(
    groups.map((g, r) =>
      new GradientBucketer(shapes, { bucketBytes: 16, wire: 'f32' }).sync(grads[r]!, g, 8),
    ),
  );
  assert.deepEqual(
    results.map((r) => r.grads),
    [null, null],
  );
});

test('a missing gradient counts as zeros; world size 1 communicates nothing', async () => {
  const b = new GradientBucketer([[2], [2]], { bucketBytes: 1 << 20, wire: 'f32' });
  const g = tf.tensor([3, 4]);
  const res = await b.sync([null, g], null, 4);
  assert.deepEqual(Array.from(res.grads![0]!.dataSync()), [0, 0]);
  assert.deepEqual(Array.from(res.grads![1]!.dataSync()), [3, 4]);
  assert.equal(res.timings.bytes, 0);
  await assert.rejects(b.sync([g], null), /1 gradients for 2 parameters/);
});

test('measurePeerWait reports the wait for a late rank apart from communication', async () => {
  const shapes = [[4]];
  const groups = fakeGroups(2);
  // Rank 1 arrives 60 ms after rank 0: rank 0's barrier wait is that lateness.
  let arrived = 0;
  let release: () => void = () => {};
  const all = new Promise<void>((r) => (release = r));
  const withBarrier = groups.map((g) => ({
    ...g,
    barrier: async () => {
      if (++arrived === 2) release();
      await all;
    },
  }));
  const grads = [tf.tensor([1, 2, 3, 4]), tf.tensor([3, 4, 5, 6])];
  const sync = (r: number) =>
    new GradientBucketer(shapes, { bucketBytes: 16, wire: 'f32' }).sync([grads[r]!], withBarrier[r]!, 1, {
      measurePeerWait: true,
    });
  // Rank 1 arrives `lateMs` after rank 0. Both waits also hold the barrier's own latency, which a
  // loaded machine stretches, so the checks compare the ranks with each other, not with a clock.
  const lateMs = 200;
  const early = sync(0);
  await new Promise((r) => setTimeout(r, lateMs));
  const late = sync(1);
  const [r0, r1] = await Promise.all([early, late]);
  const [w0, w1] = [r0.timings.peerWaitMs, r1.timings.peerWaitMs];
  assert.ok(w0 >= lateMs * 0.9, `rank 0 waited ${w0} ms for rank 1, which came ${lateMs} ms late`);
  assert.ok(w0 - w1 >= lateMs / 2, `rank 1 found rank 0 waiting (waits ${w0} vs ${w1} ms)`);
  assert.ok(r0.timings.exposedCommMs < w0, 'the lateness is not counted as communication');
  assert.deepEqual(Array.from(r0.grads![0]!.dataSync()), [2, 3, 4, 5]);
  [...r0.grads!, ...r1.grads!, ...grads].forEach((t) => t.dispose());
  await assert.rejects(
    new GradientBucketer(shapes, { bucketBytes: 16, wire: 'f32' }).sync([null], groups[0]!, 1, {
      measurePeerWait: true,
    }),
    /measurePeerWait needs a group with barrier/,
  );
});

/** Counts the backend's device-to-host reads (data() and dataSync() both end in read/readSync). */
function countReads(): { reads: () => number; restore: () => void } {
  const backend = tf.backend() as unknown as {
    read: (id: object) => Promise<unknown>;
    readSync: (id: object) => unknown;
  };
  const { read, readSync } = backend;
  let n = 0;
  let inRead = false; // the cpu backend's read() calls its readSync(): one read, counted once
  backend.read = function (id) {
    n++;
    inRead = true;
    try {
      return read.call(this, id);
    } finally {
      inRead = false;
    }
  };
  backend.readSync = function (id) {
    if (!inRead) n++;
    return readSync.call(this, id);
  };
  return {
    reads: () => n,
    restore: () => Object.assign(backend, { read, readSync }),
  };
}

const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

/** Gradients with awkward values: subnormals, extremes, ±0, and some parameters without one. */
function awkwardGradients(shapes: number[][], seed: number): (tf.Tensor | null)[] {
  let s = seed;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const special = [1e-42, -3e-45, 3.4e33, -0, 0, 1.1754944e-38];
  return shapes.map((shape, i) => {
    if (i % 4 === 2) return null;
    const v = new Float32Array(tf.util.sizeFromShape(shape)).map((_, k) =>
      k % 7 === 3 ? special[(k + i) % special.length]! : next() * 10 ** Math.round(next() * 6),
    );
    return tf.tensor(v, shape);
  });
}

test('packed read-back: one read per bucket, bit-identical to per-tensor on two ranks', async () => {
  const shapes = [[3, 5], [7], [2, 2, 2], [11], [1], [6, 4], [9], [4, 4]];
  // Buckets of >= 24 values: several parameters per bucket, a bucket with a missing gradient.
  const opts = { bucketBytes: 4 * 24, wire: 'f32' as const };
  const per = [1, 2].map((seed) => awkwardGradients(shapes, seed));
  const run = async (readBack: 'per-tensor' | 'packed', scale: number) => {
    const groups = fakeGroups(2);
    const bucketers = groups.map(() => new GradientBucketer(shapes, { ...opts, readBack }));
    const counter = countReads();
    const before = tf.memory().numTensors;
    try {
      const res = await Promise.all(groups.map((g, r) => bucketers[r]!.sync(per[r]!, g, scale)));
      const out = res.map((x) => x.grads!);
      assert.equal(
        tf.memory().numTensors,
        before + out.flat().length,
        `${readBack}: only the returned gradients remain`,
      );
      return { res, reads: counter.reads() };
    } finally {
      counter.restore();
    }
  };
  const present = per[0]!.filter((g) => g !== null).length;
  for (const scale of [1, 2 ** 12]) {
    const a = await run('per-tensor', scale);
    const b = await run('packed', scale);
    const buckets = new GradientBucketer(shapes, opts).buckets;
    const withGrad = buckets.filter((k) => k.params.some((p) => per[0]![p] !== null)).length;
    assert.ok(buckets.length >= 3 && withGrad < present, 'the test has several buckets of several gradients');
    // per-tensor on a host backend reads each gradient's own array in place (hostValues): no read-back
    assert.equal(a.reads, 0, 'per-tensor on the host: no backend read');
    assert.equal(b.reads, 2 * withGrad, 'packed: one read per bucket that has a gradient, per rank');
    for (const r of [0, 1]) {
      assert.equal(a.res[r]!.timings.readBacks, present);
      assert.equal(b.res[r]!.timings.readBacks, withGrad);
      assert.equal(a.res[r]!.timings.uploads, shapes.length);
      assert.equal(b.res[r]!.timings.uploads, buckets.length);
      assert.equal(b.res[r]!.timings.readBack, 'packed');
      shapes.forEach((shape, p) => {
        const [x, y] = [a.res[r]!.grads![p]!, b.res[r]!.grads![p]!];
        assert.deepEqual(y.shape, shape);
        assert.deepEqual(bits(y), bits(x), `scale ${scale}, rank ${r}, parameter ${p}`);
      });
    }
    [a, b].forEach((x) => x.res.forEach((r) => r.grads!.forEach((t) => t.dispose())));
  }
  per.flat().forEach((t) => t?.dispose());
});

test('packed read-back returns the input bit for bit at world size 1 (power-of-two scale)', async () => {
  const shapes = [[5, 3], [4], [8], [2, 3]];
  const grads = awkwardGradients(shapes, 9);
  const b = new GradientBucketer(shapes, { bucketBytes: 4 * 16, wire: 'f32', readBack: 'packed' });
  const res = await b.sync(grads, null, 2 ** 10);
  shapes.forEach((shape, p) => {
    const want = grads[p] ? bits(grads[p]) : new Array<number>(tf.util.sizeFromShape(shape)).fill(0);
    assert.deepEqual(bits(res.grads![p]!), want, `parameter ${p}`);
  });
  res.grads!.forEach((t) => t.dispose());
  grads.forEach((t) => t?.dispose());
  // An overflow after scaling is still found on the packed path.
  const big = [tf.tensor([1, 3e38]), tf.tensor([1])];
  const over = await new GradientBucketer([[2], [1]], {
    bucketBytes: 64,
    wire: 'f32',
    readBack: 'packed',
  }).sync(big, null, 4);
  assert.equal(over.grads, null);
  big.forEach((t) => t.dispose());
});

test("readBack 'auto' reads per tensor on cpu and packs on device backends", async () => {
  assert.equal(gradientsOnDevice('cpu'), false);
  assert.equal(gradientsOnDevice('native'), false);
  assert.equal(gradientsOnDevice('webgpu'), true);
  const g = tf.tensor([1, 2]);
  const res = await new GradientBucketer([[2]], { bucketBytes: 64, wire: 'f32' }).sync([g], null);
  assert.equal(res.timings.readBack, 'per-tensor');
  res.grads!.forEach((t) => t.dispose());
  g.dispose();
});

test('world size 1 on the host: the gradients pass through, bit for bit what the bucket path returns, overflow found alike', async () => {
  const shapes = [[5, 3], [4], [8], [2, 3], [6]];
  const grads = awkwardGradients(shapes, 5);
  for (const scale of [1, 2 ** 10, 2 ** 16]) {
    // the bucket path at world size 1 (packed forces it on cpu) is the reference
    const ref = await new GradientBucketer(shapes, {
      bucketBytes: 4 * 16,
      wire: 'f32',
      readBack: 'packed',
    }).sync(grads, null, scale);
    const counter = countReads();
    const before = tf.memory().numTensors;
    let res;
    try {
      res = await new GradientBucketer(shapes, { bucketBytes: 4 * 16, wire: 'f32' }).sync(grads, null, scale);
    } finally {
      counter.restore();
    }
    assert.equal(counter.reads(), 0, 'no read-back');
    assert.equal(res.timings.uploads, 0, 'no new arrays');
    assert.equal(tf.memory().numTensors, before + shapes.length, 'only the returned gradients remain');
    shapes.forEach((shape, p) => {
      assert.deepEqual(res.grads![p]!.shape, shape);
      assert.deepEqual(bits(res.grads![p]!), bits(ref.grads![p]!), `scale ${scale}, parameter ${p}`);
      // the same data as the input, not a copy
      if (grads[p]) assert.equal(res.grads![p]!.dataId, grads[p]!.dataId);
    });
    [...res.grads!, ...ref.grads!].forEach((t) => t.dispose());
  }
  grads.forEach((t) => t?.dispose());
  // Overflow after scaling, at the boundary: 2^118·2^10 = 2^128 is inf in float32, the float below it is not.
  const below = Math.fround(2 ** 118 * (1 - 2 ** -24));
  for (const [values, overflows] of [
    [[1, below, -below], false],
    [[1, 2 ** 118], true],
    [[-(2 ** 118), 0], true],
    [[1, NaN], true],
    [[Infinity, 1], true],
  ] as [number[], boolean][]) {
    const g = [tf.tensor(values), null];
    const sh = [[values.length], [2]];
    const fast = await new GradientBucketer(sh, { bucketBytes: 64, wire: 'f32' }).sync(g, null, 2 ** 10);
    const slow = await new GradientBucketer(sh, { bucketBytes: 64, wire: 'f32', readBack: 'packed' }).sync(
      g,
      null,
      2 ** 10,
    );
    assert.equal(fast.grads === null, overflows, `[${values}] overflows: ${overflows}`);
    assert.equal(slow.grads === null, overflows, `[${values}], bucket path`);
    [...(fast.grads ?? []), ...(slow.grads ?? [])].forEach((t) => t.dispose());
    g[0]!.dispose();
  }
});
