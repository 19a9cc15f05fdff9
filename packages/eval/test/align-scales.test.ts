// Detection over the detector pyramid on photos the test composes itself (rendered synthetic faces at known
// places and sizes): one face from 10 % to 95 % of the frame, every face of a group photo, and aligned
// crops passed through without the detector.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { FaceAligner, AlignError, type AlignedFace } from '../src/align/index.js';
import { composePhoto, FACE_IN_TILE, renderFace } from './support/rendered-faces.js';
import sharp from 'sharp';

let aligner: FaceAligner;
before(async () => {
  // the pyramid runs the detector five times per photo: the native kernels when built, else the CPU backend
  await initBackend({ backend: 'auto', log: () => {} });
  aligner = new FaceAligner();
});
after(() => aligner.dispose());

// The rendered face sits a little below its tile's centre (chin and hair), by about a tenth of the tile.
const faceCentre = (cx: number, cy: number, faceWidth: number): [number, number] => [
  cx,
  cy + (0.1 * faceWidth) / FACE_IN_TILE,
];

function assertFaceAt(a: AlignedFace, cx: number, cy: number, faceWidth: number, what: string): void {
  const [ex, ey] = faceCentre(cx, cy, faceWidth);
  const bx = a.box.x + a.box.width / 2;
  const by = a.box.y + a.box.height / 2;
  const box = JSON.stringify(a.box, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v));
  assert.ok(
    Math.hypot(bx - ex, by - ey) < 0.3 * faceWidth,
    `${what}: box ${box}, face centre (${ex}, ${ey})`,
  );
  assert.ok(
    a.box.width > 0.55 * faceWidth && a.box.width < 1.7 * faceWidth,
    `${what}: box ${box} for face ${faceWidth}`,
  );
  const [le, re, nose, lm, rm] = a.points;
  assert.ok(le![0] < re![0] && lm![0] < rm![0], `${what}: eyes/mouth corners out of order`);
  assert.ok(
    Math.max(le![1], re![1]) < nose![1] && nose![1] < Math.min(lm![1], rm![1]) + 2,
    `${what}: eyes, nose, mouth not top to bottom`,
  );
}

test('faces from 10 % to 95 % of the frame are found, each once, where they are; no tensors leak', async () => {
  const W = 480;
  const H = 400;
  const n0 = tf.memory().numTensors;
  for (const [i, fraction] of [0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.75, 0.85, 0.95].entries()) {
    // small faces off-centre, large ones centred (they cannot be anywhere else)
    const cx = fraction < 0.5 ? 0.3 + 0.05 * i : 0.5;
    const cy = fraction < 0.5 ? 0.6 - 0.03 * i : 0.45;
    const photo = await composePhoto(W, H, [{ identity: i, age: 20 + 5 * i, cx, cy, fraction }]);
    const a = await aligner.alignRgb(photo.data, W, H, {}, `${fraction * 100} %`);
    assert.equal(a.passthrough, false);
    assertFaceAt(a, cx * W, cy * H, fraction * W, `face ${fraction * 100} % of the frame`);
  }
  assert.equal(tf.memory().numTensors, n0);
});

test('a group photo: every small face found, largest first; one-face alignment refuses it by name', async () => {
  const W = 800;
  const H = 500;
  const faces = [
    { identity: 11, age: 8, cx: 0.15, cy: 0.5, fraction: 0.1 },
    { identity: 12, age: 35, cx: 0.4, cy: 0.45, fraction: 0.14 },
    { identity: 13, age: 60, cx: 0.65, cy: 0.55, fraction: 0.12 },
    { identity: 14, age: 80, cx: 0.87, cy: 0.4, fraction: 0.11 },
  ];
  const photo = await composePhoto(W, H, faces);
  const all = await aligner.alignAll(photo);
  assert.equal(all.length, 4, JSON.stringify(all.map((a) => a.box)));
  for (let k = 1; k < all.length; k++)
    assert.ok(all[k - 1]!.box.width * all[k - 1]!.box.height >= all[k]!.box.width * all[k]!.box.height);
  for (const f of faces) {
    const [ex, ey] = faceCentre(f.cx * W, f.cy * H, f.fraction * W);
    const near = all.find(
      (a) =>
        Math.hypot(a.box.x + a.box.width / 2 - ex, a.box.y + a.box.height / 2 - ey) < 0.3 * f.fraction * W,
    );
    assert.ok(near, `no detection at the face of identity ${f.identity}`);
    assertFaceAt(near, f.cx * W, f.cy * H, f.fraction * W, `identity ${f.identity}`);
  }
  await assert.rejects(aligner.alignRgb(photo.data, W, H, {}, 'group.png'), (e: unknown) => {
    assert.ok(e instanceof AlignError);
    assert.equal(e.message, 'group.png: 4 faces found, expected one');
    return true;
  });
  const largest = await aligner.alignRgb(photo.data, W, H, { largest: true }, 'group.png');
  assert.deepEqual(largest.box, all[0]!.box);
});

test('a 112×112 input is an aligned crop: passed through byte for byte, the detector never runs', async () => {
  const png = await renderFace(0, 3, 40, 112);
  const { data } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const n0 = tf.memory().numTensors;
  const a = await aligner.align(png, {}, 'crop.png');
  assert.equal(a.passthrough, true);
  assert.deepEqual(Buffer.from(a.crop), data);
  assert.equal(tf.memory().numTensors, n0);
  // a blank 112×112 "crop" is also passed through: proof that no detection ran
  const blank = new Uint8Array(112 * 112 * 3).fill(90);
  assert.equal((await aligner.alignRgb(blank, 112, 112)).passthrough, true);
  await assert.rejects(
    aligner.alignRgb(blank, 112, 112, { aligned: false }, 'blank.png'),
    /blank\.png: no face found/,
  );
  // --aligned on another size: resized to the output side, not detected
  const big = await aligner.alignRgb(blank.subarray(0, 100 * 100 * 3), 100, 100, { aligned: true });
  assert.equal(big.passthrough, true);
  assert.equal(big.crop.length, 112 * 112 * 3);
  assert.ok(big.crop.every((v) => v === 90));
});
