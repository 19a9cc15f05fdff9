import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import {
  BatchLoader,
  DistributedSampler,
  FasTargetSampler,
  ImagePool,
  decodeJpegRgba,
  decodeResize,
  loadImageInto,
  buildDataset,
  parseAnnotations,
  type FasBatch,
} from '../src/index.js';

/** A 4×4 PNG whose pixel (x, y) is (10x+60y, 200−40x, 17y) – every value distinct per column. */
async function knownImage(path: string): Promise<number[]> {
  const px: number[] = [];
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) px.push(10 * x + 60 * y, 200 - 40 * x, 17 * y);
  await sharp(Buffer.from(px), { raw: { width: 4, height: 4, channels: 3 } }).png().toFile(path);
  return px;
}

test('decode → float NHWC in [-1, 1]: exact values, and a flip mirrors columns', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-img-'));
  const px = await knownImage(join(dir, 'k.png'));
  const pool = new ImagePool({ threads: 1 });
  try {
    const { images, errors } = await pool.decode(dir, ['k.png', 'k.png'], 4, Uint8Array.from([0, 1]));
    assert.deepEqual(errors, ['', '']);
    const plain = Array.from(images.subarray(0, 48));
    const flipped = Array.from(images.subarray(48, 96));
    assert.deepEqual(plain, px.map((v) => Math.fround(v * (1 / 127.5) - 1)));
    for (let y = 0; y < 4; y++)
      for (let x = 0; x < 4; x++)
        for (let c = 0; c < 3; c++) assert.equal(flipped[(y * 4 + x) * 3 + c], plain[(y * 4 + (3 - x)) * 3 + c]);
    assert.ok(plain.every((v) => v >= -1 && v <= 1));
    assert.equal(Math.min(...plain), -1); // value 0
  } finally {
    await pool.close();
  }
});

test('grey and RGBA images come out as 3-channel RGB; resize gives the requested size', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-img-'));
  await sharp({ create: { width: 20, height: 10, channels: 3, background: { r: 255, g: 255, b: 255 } } }).grayscale().jpeg().toFile(join(dir, 'g.jpg'));
  await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 255, b: 0, alpha: 0.5 } } }).png().toFile(join(dir, 'a.png'));
  const pool = new ImagePool({ threads: 1 });
  try {
    const { images, errors } = await pool.decode(dir, ['g.jpg', 'a.png'], 6);
    assert.deepEqual(errors, ['', '']);
    assert.equal(images.length, 2 * 6 * 6 * 3);
    assert.ok(Array.from(images.subarray(0, 108)).every((v) => v > 0.98));
    assert.deepEqual(Array.from(images.subarray(108, 111)), [-1, 1, -1]);
  } finally {
    await pool.close();
  }
});

test('the WebAssembly JPEG path agrees with sharp (±1 level) and is taken only at the target size', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-img-'));
  const px = Buffer.alloc(16 * 16 * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37 + (i >> 5) * 11) % 256;
  const file = join(dir, 'n.jpg');
  await sharp(px, { raw: { width: 16, height: 16, channels: 3 } }).jpeg({ quality: 80 }).toFile(file);
  const bytes = await readFile(file);
  const fast = decodeJpegRgba(bytes);
  assert.ok(fast !== undefined);
  assert.equal(fast.width, 16);
  const ref = await decodeResize(bytes, 16);
  let maxDiff = 0;
  for (let p = 0; p < 256; p++) for (let c = 0; c < 3; c++) maxDiff = Math.max(maxDiff, Math.abs(fast.data[p * 4 + c]! - ref.data[p * 3 + c]!));
  assert.ok(maxDiff <= 1, `max difference ${maxDiff}`);
  const a = new Float32Array(16 * 16 * 3);
  await loadImageInto(file, 16, true, a, 0);
  assert.equal(a[0], Math.fround(fast.data[15 * 4]! / 127.5 - 1)); // flipped: pixel (0,0) ← (15,0)
  // Not JPEG, or not at the size: undefined / the sharp path.
  assert.equal(decodeJpegRgba(Buffer.from('GIF89a')), undefined);
  assert.equal(decodeJpegRgba(bytes.subarray(0, 40)), undefined);
  const garbage = Buffer.concat([bytes.subarray(0, 20), Buffer.alloc(200, 0x5a)]);
  assert.equal(decodeJpegRgba(garbage), undefined);
  // A failure inside the decoder leaves it usable: the next good file decodes identically.
  assert.deepEqual(decodeJpegRgba(bytes)?.data, fast.data);
  const b = new Float32Array(8 * 8 * 3);
  await loadImageInto(file, 8, false, b, 0);
  assert.ok(b.every((v) => v >= -1 && v <= 1));
});

async function tinyDataset(n: number, dir: string): Promise<string> {
  await mkdir(join(dir, 'img'), { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    // Pixel (0,0) red channel encodes the index: the test reads it back to see which file it got.
    const px = Buffer.alloc(2 * 2 * 3, 0);
    px[0] = i;
    await sharp(px, { raw: { width: 2, height: 2, channels: 3 } }).png().toFile(join(dir, 'img', `${i}.png`));
    lines.push(`${100 + (i % 5)} img/${i}.png ${(i * 7) % 80} ${i % 2}`);
  }
  return lines.join('\n') + '\n';
}

test('the loader delivers every kept sample exactly once per epoch per rank, with its labels, in sampler order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-loader-'));
  const N = 45;
  const ds = buildDataset(parseAnnotations(await tinyDataset(N, dir)), { root: dir });
  const W = 2;
  const B = 4;
  const pool = new ImagePool({ threads: 2 });
  try {
    const seen: number[] = [];
    for (let r = 0; r < W; r++) {
      const sampler = new DistributedSampler({ size: N, batchSize: B, worldSize: W, rank: r, seed: 1 });
      const loader = new BatchLoader({ dataset: ds, sampler, size: 2, flip: false, pool, prefetch: 3 });
      for (let it = 0; it < sampler.batchesPerEpoch; it++) {
        assert.equal(loader.iteration, it);
        const b = await loader.next();
        assert.equal(b.n, B);
        const ids = Array.from({ length: b.n }, (_, k) => Math.round(((b.images[k * 12] as number) + 1) * 127.5));
        assert.deepEqual(ids, Array.from(sampler.batch(it)));
        ids.forEach((i, k) => {
          assert.equal(b.labels[k], i % 5);
          assert.equal(b.ages[k], (i * 7) % 80);
          assert.equal(b.genders[k], i % 2);
          assert.equal(b.groups[k], ds.groups[i]);
        });
        seen.push(...ids);
      }
      assert.equal(loader.epoch, 1);
      await loader.close();
    }
    assert.equal(seen.length, Math.floor(N / (B * W)) * B * W);
    assert.equal(new Set(seen).size, seen.length);
  } finally {
    await pool.close();
  }
});

test('a missing image fails naming the file; with skip it is dropped, counted and reported once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-loader-'));
  let list = await tinyDataset(8, dir);
  list += '7 img/missing.png 30 1\n';
  await writeFile(join(dir, 'img', 'broken.png'), 'not an image');
  list += '7 img/broken.png 30 1\n';
  const ds = buildDataset(parseAnnotations(list), { root: dir });
  const sampler = new DistributedSampler({ size: 10, batchSize: 10, worldSize: 1, rank: 0, seed: 0, shuffle: false });
  const strict = new BatchLoader({ dataset: ds, sampler, size: 2, threads: 1, prefetch: 1 });
  await assert.rejects(strict.next(), (err: Error) => err.message.includes('img/missing.png: cannot load image'));
  await strict.close();

  const logs: string[] = [];
  const lenient = new BatchLoader({ dataset: ds, sampler, size: 2, threads: 1, prefetch: 1, onBadImage: 'skip', log: (l) => logs.push(l) });
  const b1 = await lenient.next();
  const b2 = await lenient.next();
  assert.equal(b1.n, 8);
  assert.equal(b2.n, 8);
  assert.equal(b1.labels.length, 8);
  assert.equal(b1.images.length, 8 * 12);
  await lenient.close();
  assert.equal(lenient.skipped.length, 4);
  assert.equal(logs.length, 1);
  assert.match(logs[0] as string, /skipped 4 unreadable image\(s\): .*missing\.png/);
});

test('FAS batches carry a target group per sample and real images of that group; resume repeats them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-loader-'));
  const N = 40;
  const ds = buildDataset(parseAnnotations(await tinyDataset(N, dir)), { root: dir });
  const fas = new FasTargetSampler(ds.groups, 7, 9);
  const sampler = new DistributedSampler({ size: N, batchSize: 5, worldSize: 1, rank: 0, seed: 2 });
  const pool = new ImagePool({ threads: 1 });
  try {
    const a = new BatchLoader({ dataset: ds, sampler, size: 2, pool, fas, flip: false });
    await a.next();
    const b = (await a.next()) as FasBatch;
    await a.close();
    assert.equal(b.targetGroups.length, 5);
    assert.deepEqual(Array.from(b.real.groups), Array.from(b.targetGroups));
    const resumed = new BatchLoader({ dataset: ds, sampler, size: 2, pool, fas, flip: false, startIteration: 1 });
    const c = (await resumed.next()) as FasBatch;
    await resumed.close();
    assert.deepEqual(Array.from(c.targetGroups), Array.from(b.targetGroups));
    assert.deepEqual(Array.from(c.real.images), Array.from(b.real.images));
  } finally {
    await pool.close();
  }
});
