// Runs the bundled detector and landmark networks on the photos that ship in @vladmandic/face-api's demo
// folder (no download); each detection takes a few seconds on the pure-JS CPU backend, so this stays small.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import {
  FaceAligner,
  AlignError,
  applyTransform,
  ARCFACE_TEMPLATE_112,
  faceApiModelDir,
} from '../src/align/index.js';

const demo = (f: string) => join(faceApiModelDir(), '..', 'demo', f);
let aligner: FaceAligner;
before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
  aligner = new FaceAligner();
});
after(() => aligner.dispose());

test('the largest face: found, its five points map onto the template within a few pixels, no tensors leak', async () => {
  const n0 = tf.memory().numTensors;
  // three women on a sofa; the one on the right faces the camera and is the largest (the one in the middle,
  // looking down, is found by the 608 scale of the pyramid)
  const a = await aligner.align(demo('sample2.jpg'), { largest: true });
  assert.equal(tf.memory().numTensors, n0);
  assert.equal(a.crop.length, 112 * 112 * 3);
  // the face is in the upper right of the 1920×1367 photo
  assert.ok(a.box.x > 1300 && a.box.x < 1500 && a.box.y > 100 && a.box.y < 260, JSON.stringify(a.box));
  const residual = a.points.map((p, i) =>
    Math.hypot(
      ...(applyTransform(a.transform, p).map((v, k) => v - ARCFACE_TEMPLATE_112[i]![k]!) as [number, number]),
    ),
  );
  assert.ok(Math.max(...residual) < 12, `residuals ${residual.map((r) => r.toFixed(1))}`);
  // eyes above the nose above the mouth, left eye left of the right eye
  const [le, re, nose, lm, rm] = a.points;
  assert.ok(le![0] < re![0] && lm![0] < rm![0]);
  assert.ok(Math.max(le![1], re![1]) < nose![1] && nose![1] < Math.min(lm![1], rm![1]) + 5);
});

test('several faces and no face are reported by file name', async () => {
  await assert.rejects(aligner.align(demo('sample1.jpg'), { detectorSize: 320 }), (e: unknown) => {
    assert.ok(e instanceof AlignError);
    assert.equal(e.reason, 'several faces');
    assert.match(e.message, /sample1\.jpg: \d faces found, expected one/);
    return true;
  });
  const grey = new Uint8Array(200 * 160 * 3).fill(128);
  await assert.rejects(
    aligner.alignRgb(grey, 200, 160, { detectorSize: 224 }, 'grey.png'),
    /grey\.png: no face found/,
  );
});
