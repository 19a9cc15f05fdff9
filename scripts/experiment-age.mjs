#!/usr/bin/env node
// The learnability check of packages/eval/EXPERIMENTS.md: a checkpoint's age estimator on real faces.
//   node scripts/experiment-age.mjs CHECKPOINT LIST [--backend NAME]
// prints one JSON line: exact-group accuracy, within-one-group accuracy, per group, confusion (7 groups).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { ageGroup, parseAnnotations } from '@mtlface/data';
import { ageGroupAccuracy } from '@mtlface/eval';

const root = fileURLToPath(new URL('..', import.meta.url));
const { loadFaceModel, readFaces } = await import(join(root, 'workers/dist/face/face-model.js'));

const [checkpoint, list] = process.argv.slice(2);
if (!checkpoint || !list) {
  console.error('usage: experiment-age.mjs CHECKPOINT LIST');
  process.exit(2);
}
const backendArg = process.argv.indexOf('--backend');
await initBackend({
  backend: backendArg > 0 ? process.argv[backendArg + 1] : 'auto',
  log: (l) => console.error(l),
});
const model = loadFaceModel(checkpoint);
if (!model.groupLogits) throw new Error(`${checkpoint}: no age estimator (estimation.* tensors)`);
const entries = parseAnnotations(readFileSync(list, 'utf8'), list);
const faces = await readFaces(
  entries.map((e) => join(dirname(list), e.file)),
  model.inputSize,
);
const predicted = new Int32Array(faces.n);
const per = faces.size * faces.size * 3;
for (let start = 0; start < faces.n; start += 64) {
  const m = Math.min(64, faces.n - start);
  const p = tf.tidy(() =>
    tf.argMax(
      model.groupLogits(
        tf.tensor4d(faces.images.subarray(start * per, (start + m) * per), [m, faces.size, faces.size, 3]),
      ),
      1,
    ),
  );
  predicted.set(p.dataSync(), start);
  p.dispose();
}
const targets = entries.map((e) => ageGroup(e.age, model.groups));
const acc = ageGroupAccuracy(targets, predicted, model.groups);
const withinOne = targets.filter((t, i) => Math.abs(t - predicted[i]) <= 1).length / targets.length;
model.dispose();
console.log(JSON.stringify({ kind: 'age', checkpoint, list, faces: faces.n, ...acc, withinOne }));
