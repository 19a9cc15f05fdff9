import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameReader, framePrefix } from '../src/transport/frameReader.js';

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
