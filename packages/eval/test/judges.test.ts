// The independent judges, checked against face-api.js's own outputs on the same images: its bundle run on
// its own tfjs (support/face-api-reference.ts). Skipped only where that bundle cannot load.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { AgeGenderNet, FaceRecognitionNet, descriptorDistance } from '../src/judges/index.js';
import { composePhoto, renderFace } from './support/rendered-faces.js';
import { loadFaceApiReference, type FaceApiReference } from './support/face-api-reference.js';

let reference: FaceApiReference | undefined;
let skipReason = '';
let ageGender: AgeGenderNet;
let recognition: FaceRecognitionNet;
const images: { rgb: Uint8Array; h: number; w: number; what: string }[] = [];

before(async () => {
  try {
    reference = await loadFaceApiReference();
  } catch (e) {
    skipReason = `face-api's own tfjs build cannot load here: ${(e as Error).message}`;
  }
  await initBackend({ backend: 'auto', log: () => {} });
  ageGender = new AgeGenderNet();
  recognition = new FaceRecognitionNet();
  for (const [identity, age] of [
    [1, 6],
    [2, 30],
    [3, 75],
  ] as const) {
    const png = await renderFace(0, identity, age, 112);
    const { data } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    images.push({ rgb: new Uint8Array(data), h: 112, w: 112, what: `identity ${identity} at ${age}` });
  }
  // not square and not 112: face-api pads to a centred square and resizes
  const wide = await composePhoto(180, 130, [{ identity: 4, age: 50, cx: 0.5, cy: 0.45, fraction: 0.5 }]);
  images.push({ rgb: wide.data, h: 130, w: 180, what: 'a 180×130 photo' });
});
after(() => {
  ageGender.dispose();
  recognition.dispose();
});

const batchOf = (im: (typeof images)[number]) => tf.tensor4d(im.rgb, [1, im.h, im.w, 3], 'int32');

test('age and gender equal face-api’s own on the same images (±0.05 years, ±0.002); no tensors leak', async (t) => {
  if (!reference) return t.skip(skipReason);
  const n0 = tf.memory().numTensors;
  for (const im of images) {
    const x = batchOf(im);
    const ours = ageGender.predict(x);
    x.dispose();
    const theirs = await reference.ageGender(im.rgb, im.h, im.w);
    assert.ok(
      Math.abs(ours.age[0]! - theirs.age) < 0.05,
      `${im.what}: age ${ours.age[0]} vs face-api ${theirs.age}`,
    );
    assert.ok(
      Math.abs(ours.male[0]! - theirs.male) < 2e-3,
      `${im.what}: male ${ours.male[0]} vs ${theirs.male}`,
    );
  }
  assert.equal(tf.memory().numTensors, n0);
});

test('recognition descriptors equal face-api’s own (distance < 0.005 on a scale where 0.6 decides)', async (t) => {
  if (!reference) return t.skip(skipReason);
  const n0 = tf.memory().numTensors;
  for (const im of images) {
    const x = batchOf(im);
    const ours = recognition.describe(x);
    x.dispose();
    const theirs = await reference.descriptor(im.rgb, im.h, im.w);
    assert.equal(ours.length, 128);
    const both = new Float32Array([...ours, ...theirs]);
    const d = descriptorDistance(both, 128, 0, 1);
    assert.ok(d < 5e-3, `${im.what}: our descriptor is ${d} from face-api's`);
  }
  assert.equal(tf.memory().numTensors, n0);
});

test('a batch gives each image the answer it gets alone', () => {
  const same = images.filter((im) => im.h === 112);
  const batch = tf.tensor4d(
    Uint8Array.from(same.flatMap((im) => [...im.rgb])),
    [same.length, 112, 112, 3],
    'int32',
  );
  const all = ageGender.predict(batch);
  const desc = recognition.describe(batch);
  batch.dispose();
  same.forEach((im, i) => {
    const x = batchOf(im);
    const one = ageGender.predict(x);
    const d = recognition.describe(x);
    x.dispose();
    assert.ok(Math.abs(one.age[0]! - all.age[i]!) < 1e-3);
    const both = new Float32Array([...d, ...desc.subarray(i * 128, (i + 1) * 128)]);
    assert.ok(descriptorDistance(both, 128, 0, 1) < 1e-4);
  });
});
