import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameReader, framePrefix, PayloadPool, PullFrameReader } from '../src/transport/frameReader.js';

type Frame = [Buffer, Buffer];

/** A stream of frames with headers and payloads from empty to past the 64 KiB scratch buffer. */
const framesArb = fc.array(
  fc.record({
    header: fc.integer({ min: 1, max: 300 }),
    payload: fc.oneof(
      fc.constant(0),
      fc.integer({ min: 1, max: 2000 }),
      fc.integer({ min: 60_000, max: 200_000 }),
    ),
    seed: fc.integer({ min: 0, max: 255 }),
  }),
  { minLength: 1, maxLength: 12 },
);

function build(specs: { header: number; payload: number; seed: number }[]): {
  bytes: Buffer;
  frames: Frame[];
} {
  const frames: Frame[] = specs.map(({ header, payload, seed }) => [
    Buffer.from(Array.from({ length: header }, (_, i) => (seed + i) & 0xff)),
    Buffer.from(Array.from({ length: payload }, (_, i) => (seed * 7 + i * 13) & 0xff)),
  ]);
  const bytes = Buffer.concat(frames.flatMap(([h, p]) => [framePrefix(h.length, p.length), h, p]));
  return { bytes, frames };
}

test('FrameReader splits any stream into the frames that were written, whatever the chunk sizes', () => {
  fc.assert(
    fc.property(
      framesArb,
      fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 20 }),
      (specs, sizes) => {
        const { bytes, frames } = build(specs);
        const pushed: Frame[] = [];
        const a = new FrameReader(1024, 1 << 20, (h, p) => pushed.push([Buffer.from(h), Buffer.from(p)]));
        for (let off = 0, k = 0; off < bytes.length; k++) {
          const n = Math.min(sizes[k % sizes.length]!, bytes.length - off);
          a.push(bytes.subarray(off, off + n));
          off += n;
        }
        assert.deepEqual(pushed, frames);
      },
    ),
    { numRuns: 200 },
  );
});

test('FrameReader refuses a frame over its limits before allocating it', () => {
  const r = new FrameReader(16, 100, () => undefined);
  assert.throws(() => r.push(framePrefix(4, 101)), /frame payload of 101 bytes \(limit 100\)/);
  const h = new FrameReader(16, 100, () => undefined);
  assert.throws(() => h.push(framePrefix(17, 0)), /frame header of 17 bytes \(limit 16\)/);
});

test('PullFrameReader gives back the frames written whatever the reads fill, large payloads in pooled buffers', () => {
  fc.assert(
    fc.property(
      framesArb,
      fc.array(fc.integer({ min: 1, max: 300_000 }), { minLength: 1, maxLength: 20 }),
      fc.boolean(),
      (specs, sizes, recycle) => {
        const { bytes, frames } = build(specs);
        const pool = new PayloadPool();
        const got: Frame[] = [];
        const r = new PullFrameReader(1024, 1 << 20, pool, (h, p, pooled) => {
          // A pooled payload is a buffer of its own (never a view of the staging buffer).
          assert.equal(pooled, p.length > 64 * 1024);
          if (pooled) assert.equal(p.byteOffset, 0);
          got.push([Buffer.from(h), Buffer.from(p)]);
          // Giving it back at once and scribbling on it must not disturb later frames.
          if (pooled && recycle) {
            pool.give(p);
            p.fill(0xee);
          }
        });
        let off = 0;
        for (let k = 0; off < bytes.length; k++) {
          const t = r.target();
          assert.ok(t.length > 0, 'a read target is never empty');
          // The "kernel" writes up to the read size into the target, and never past it.
          const n = Math.min(sizes[k % sizes.length]!, t.length, bytes.length - off);
          t.set(bytes.subarray(off, off + n));
          off += n;
          r.filled(n);
        }
        assert.deepEqual(got, frames);
      },
    ),
    { numRuns: 200 },
  );
});

test('PullFrameReader refuses a frame over its limits before allocating it', () => {
  const fill = (r: PullFrameReader, b: Buffer) => {
    r.target().set(b);
    r.filled(b.length);
  };
  const pool = new PayloadPool();
  assert.throws(
    () => fill(new PullFrameReader(16, 100, pool, () => undefined), framePrefix(4, 101)),
    /frame payload of 101 bytes \(limit 100\)/,
  );
  assert.throws(
    () => fill(new PullFrameReader(16, 100, pool, () => undefined), framePrefix(17, 0)),
    /frame header of 17 bytes \(limit 16\)/,
  );
});
