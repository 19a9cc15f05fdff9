// from-folder's alignment of an ImageFolder tree of photos the test composes: a portrait, a group photo,
// a photo stored sideways with an EXIF orientation, a photo without a face and a broken file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { initBackend } from '@mtlface/backend';
import { FaceAligner, alignImageFolder } from '../src/align/index.js';
import { composePhoto } from './support/rendered-faces.js';

let aligner: FaceAligner;
let photos: string;
let upright: { data: Uint8Array; width: number; height: number };
let group: { data: Uint8Array; width: number; height: number };

const raw = (p: { data: Uint8Array; width: number; height: number }) =>
  sharp(p.data, { raw: { width: p.width, height: p.height, channels: 3 } });

async function pixels(path: string): Promise<Uint8Array> {
  return new Uint8Array(await sharp(path).removeAlpha().raw().toBuffer());
}
const meanAbsDiff = (a: Uint8Array, b: Uint8Array) =>
  a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;

before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
  aligner = new FaceAligner();
  photos = mkdtempSync(join(tmpdir(), 'from-folder-'));
  mkdirSync(join(photos, 'alice'));
  mkdirSync(join(photos, 'bob'));
  const portrait = await composePhoto(400, 500, [
    { identity: 21, age: 30, cx: 0.5, cy: 0.45, fraction: 0.8 },
  ]);
  await raw(portrait)
    .jpeg({ quality: 92 })
    .toFile(join(photos, 'alice', 'portrait.jpg'));
  group = await composePhoto(640, 400, [
    { identity: 22, age: 25, cx: 0.2, cy: 0.5, fraction: 0.16 },
    { identity: 23, age: 45, cx: 0.5, cy: 0.45, fraction: 0.24 },
    { identity: 24, age: 70, cx: 0.8, cy: 0.5, fraction: 0.18 },
  ]);
  await raw(group)
    .png()
    .toFile(join(photos, 'alice', 'group.png'));
  // stored turned 90° anticlockwise, with EXIF orientation 6 ("turn 90° clockwise to show")
  upright = await composePhoto(360, 480, [{ identity: 25, age: 50, cx: 0.5, cy: 0.45, fraction: 0.6 }]);
  await raw(upright)
    .rotate(270)
    .withMetadata({ orientation: 6 })
    .jpeg({ quality: 95 })
    .toFile(join(photos, 'bob', 'sideways.jpg'));
  await sharp({ create: { width: 300, height: 200, channels: 3, background: '#8899aa' } })
    .webp()
    .toFile(join(photos, 'bob', 'wall.webp'));
  writeFileSync(join(photos, 'bob', 'broken.jpg'), 'not a jpeg');
});
after(() => aligner.dispose());

test('the largest face of each photo, aligned to 112×112; no face and unreadable photos listed, not fatal', async () => {
  const out = mkdtempSync(join(tmpdir(), 'from-folder-out-'));
  const r = await alignImageFolder({ photos, out, aligner });
  assert.equal(r.photos, 5);
  assert.equal(r.written, 3);
  assert.deepEqual(r.noFace, ['bob/wall.webp']);
  assert.deepEqual(r.severalFaces, ['alice/group.png']);
  assert.equal(r.unreadable.length, 1);
  assert.equal(r.unreadable[0]!.file, 'bob/broken.jpg');
  assert.deepEqual(readdirSync(join(out, 'alice')).sort(), ['group.jpg', 'portrait.jpg']);
  assert.deepEqual(readdirSync(join(out, 'bob')), ['sideways.jpg']);
  const meta = await sharp(join(out, 'alice', 'portrait.jpg')).metadata();
  assert.deepEqual([meta.width, meta.height, meta.format], [112, 112, 'jpeg']);
  // the group photo's crop is its largest face (the middle one)
  const largest = await aligner.alignRgb(group.data, group.width, group.height, { largest: true });
  assert.ok(Math.abs(largest.box.x + largest.box.width / 2 - 320) < 40, JSON.stringify(largest.box));
  assert.ok(meanAbsDiff(await pixels(join(out, 'alice', 'group.jpg')), largest.crop) < 3);
  // a rerun keeps what is there
  const again = await alignImageFolder({ photos, out, aligner });
  assert.equal(again.kept, 3);
  assert.equal(again.written, 0);
});

test('EXIF orientation is honoured: the sideways photo gives the crop of the upright one', async () => {
  const out = mkdtempSync(join(tmpdir(), 'from-folder-exif-'));
  await alignImageFolder({ photos, out, aligner });
  const fromUpright = await aligner.alignRgb(upright.data, upright.width, upright.height);
  const crop = await pixels(join(out, 'bob', 'sideways.jpg'));
  const d = meanAbsDiff(crop, fromUpright.crop);
  assert.ok(d < 6, `sideways crop differs from the upright crop by ${d.toFixed(1)} grey levels on average`);
  // and the stored pixels, read without the orientation, are not that face: the check can fail
  const stored = await sharp(join(photos, 'bob', 'sideways.jpg'))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  assert.equal(stored.info.width, 480);
  const ignoringExif = await aligner
    .alignRgb(new Uint8Array(stored.data), stored.info.width, stored.info.height, { largest: true })
    .then(
      (a) => meanAbsDiff(a.crop, fromUpright.crop),
      () => Infinity,
    );
  assert.ok(ignoringExif > 2 * d, `without the orientation: ${ignoringExif}, with: ${d}`);
});

test('--all-faces keeps every face: <stem>.jpg the largest, then <stem>-1.jpg, <stem>-2.jpg', async () => {
  const out = mkdtempSync(join(tmpdir(), 'from-folder-all-'));
  const r = await alignImageFolder({ photos, out, aligner, allFaces: true });
  assert.equal(r.written, 3);
  assert.deepEqual(readdirSync(join(out, 'alice')).sort(), [
    'group-1.jpg',
    'group-2.jpg',
    'group.jpg',
    'portrait.jpg',
  ]);
  assert.ok(!existsSync(join(out, 'bob', 'wall.jpg')));
});
