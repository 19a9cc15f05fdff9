import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setup } from './helpers.js';
import { BufferPool, NativeBackendCPU, poolBoundsFromEnv } from '../src/native/pool.js';

// The native output pool: idle bytes never above its bound, recycled arrays only ones no caller can
// still see (read with dataSync, or shared by a second tensor).
setup();
const N = 4096; // 16 KiB: above the test pools' 1 KiB tracking floor

/** A pool-allocated array, attached to one (pretend) tensor. */
function take(pool: BufferPool): Float32Array {
  const a = pool.get(N);
  pool.attach(a);
  return a;
}

test('idle bytes stay within the bound; the rest is left to the GC', () => {
  const bound = 3 * N * 4;
  const pool = new BufferPool(bound, 1024, 1);
  const arrays = Array.from({ length: 10 }, () => take(pool));
  for (const a of arrays) {
    pool.detach(a);
    assert.ok(pool.stats().idleBytes <= bound, `idle ${pool.stats().idleBytes} > ${bound}`);
  }
  assert.equal(pool.stats().idleBytes, bound);
  // The next requests get the three pooled arrays back (the first detached ones), then fresh ones.
  const again = Array.from({ length: 5 }, () => pool.get(N));
  assert.equal(again.filter((a) => arrays.includes(a)).length, 3);
  assert.deepEqual(
    again.slice(0, 3).map((a) => arrays.indexOf(a)),
    [2, 1, 0],
  );
  assert.equal(pool.stats().idleBytes, 0);
  assert.equal(pool.stats().hits, 3);
  // Bound 0: nothing is kept.
  const none = new BufferPool(0, 1024, 1);
  const a = take(none);
  none.detach(a);
  assert.equal(none.stats().idleBytes, 0);
  assert.notEqual(none.get(N), a);
});

test('read (escaped) or shared arrays are never recycled', () => {
  const pool = new BufferPool(1 << 30, 1024, 1);
  const read = take(pool);
  pool.escape(read);
  pool.detach(read);
  const shared = take(pool);
  pool.attach(shared); // a second tensor on the same storage
  pool.detach(shared);
  pool.detach(shared);
  const sub = take(pool);
  pool.detach(sub.subarray(0, N / 2)); // a view is not the array the pool handed out
  assert.equal(pool.stats().idleBytes, 0);
  for (let i = 0; i < 4; i++) {
    const b = pool.get(N);
    assert.ok(b !== read && b !== shared && b !== sub);
  }
});

test('idle bytes stay within a fraction of the most ever in use', () => {
  const pool = new BufferPool(1 << 30, 1024, 0.25);
  const arrays = Array.from({ length: 8 }, () => take(pool)); // peak in use: 8 arrays
  assert.equal(pool.stats().peakInUseBytes, 8 * N * 4);
  for (const a of arrays) pool.detach(a);
  assert.equal(pool.stats().idleBytes, 2 * N * 4); // 0.25 of 8 arrays
  assert.equal(pool.stats().inUseBytes, 0);
  // Read arrays count as in use until their tensor goes, then leave the books (never the pool).
  const read = take(pool);
  pool.escape(read);
  assert.equal(pool.stats().inUseBytes, N * 4);
  pool.detach(read);
  assert.equal(pool.stats().inUseBytes, 0);
  assert.equal(pool.stats().idleBytes, N * 4); // `read` was one of the two idle ones; it never comes back
});

test('MTL_POOL_MAX_MB and MTL_POOL_IDLE_FRACTION set the bounds; a bad value is one clear error', () => {
  assert.deepEqual(poolBoundsFromEnv({ MTL_POOL_MAX_MB: '256', MTL_POOL_IDLE_FRACTION: '0.5' }), {
    maxPooledBytes: 256 * 2 ** 20,
    idleFraction: 0.5,
  });
  assert.equal(poolBoundsFromEnv({ MTL_POOL_MAX_MB: '0' }).maxPooledBytes, 0);
  assert.throws(() => poolBoundsFromEnv({ MTL_POOL_MAX_MB: 'lots' }), /MTL_POOL_MAX_MB: .*'lots'/);
  assert.throws(() => poolBoundsFromEnv({ MTL_POOL_IDLE_FRACTION: '-1' }), /MTL_POOL_IDLE_FRACTION: .*'-1'/);
});

test('through the native backend: idle bytes within the bound, values a caller read intact', async () => {
  await tf.setBackend('native');
  const backend = tf.backend() as NativeBackendCPU;
  assert.ok(backend instanceof NativeBackendCPU);
  const before = tf.memory().numTensors;
  const x = tf.randomUniform([256, 1024], -1, 1, 'float32', 3);
  const read = tf.mul(x, 2);
  const kept = read.dataSync();
  const expected = Float32Array.from(x.dataSync(), (v) => Math.fround(v * 2));
  read.dispose();
  for (let i = 0; i < 20; i++) {
    tf.tidy(() => {
      // six outputs in use at once: the default fraction (1/4) keeps one idle for the next round
      tf.addN([tf.mul(x, i), tf.sub(x, i), tf.mul(x, i + 1), tf.sub(x, i + 1), tf.add(x, i)]);
    });
    const { idleBytes, maxIdleBytes } = backend.pool.stats();
    assert.ok(idleBytes <= maxIdleBytes);
  }
  assert.deepEqual(kept, expected);
  assert.ok(backend.pool.stats().hits > 0, 'outputs were recycled');
  x.dispose();
  assert.equal(tf.memory().numTensors, before);
});
