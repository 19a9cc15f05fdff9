// The face-api judges characterised on a synthetic set (mtl-data synth): the age network's mean absolute
// error and gender accuracy on the known ages and genders, the matcher's 10-fold accuracy and its own
// threshold's TAR / FAR on the pairs, and labelling throughput (ours on the tfjs backend chosen, and
// face-api's own bundle on its pure-JS CPU backend) on 112×112 faces.
//   node --conditions=mtl-source --import tsx packages/eval/bench/judges.ts DIR [--backend auto] [--speed-images 128]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { parseAnnotations } from '@mtlface/data';
import { loadFaceImages, loadPairsSet } from '../src/model/index.js';
import { AgeGenderNet, FaceRecognitionNet, faceApiPairs, toPixels } from '../src/judges/index.js';
import { loadFaceApiReference } from '../test/support/face-api-reference.js';

const args = process.argv.slice(2);
const dir = args[0];
if (!dir) throw new Error('usage: judges.ts <synth dir> [--backend auto] [--speed-images 256]');
const flag = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : def;
};
const backend = await initBackend({ backend: flag('--backend', 'auto') as 'auto', log: () => {} });
const speedImages = Number(flag('--speed-images', '128'));

// the held-out split: the images the pairs are drawn from
const entries = parseAnnotations(readFileSync(join(dir, 'test.txt'), 'utf8'), 'test.txt');
const size = (JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { options: { size: number } })
  .options.size;
const faces = await loadFaceImages(
  entries.map((e) => join(dir, e.file)),
  size,
);
const age = new AgeGenderNet();
const ages = new Float32Array(faces.n);
let genderRight = 0;
{
  const per = size * size * 3;
  for (let s = 0; s < faces.n; s += 64) {
    const m = Math.min(64, faces.n - s);
    const x = tf.tidy(() =>
      toPixels(tf.tensor4d(faces.images.subarray(s * per, (s + m) * per), [m, size, size, 3])),
    );
    const r = age.predict(x);
    x.dispose();
    ages.set(r.age, s);
    for (let k = 0; k < m; k++) if ((r.male[k]! > 0.5 ? 1 : 0) === entries[s + k]!.gender) genderRight++;
  }
}
const mae = entries.reduce((a, e, i) => a + Math.abs(ages[i]! - e.age), 0) / entries.length;
const byDecade = new Map<number, number[]>();
entries.forEach((e, i) => {
  const d = Math.min(70, Math.floor(e.age / 10) * 10);
  byDecade.set(d, [...(byDecade.get(d) ?? []), ages[i]!]);
});
console.log(`backend ${backend.reason}`);
console.log(`${dir}: ${entries.length} faces at ${size} px`);
console.log(
  `face-api age: MAE ${mae.toFixed(2)} years; gender accuracy ${((100 * genderRight) / entries.length).toFixed(1)} %`,
);
console.log(
  'mean estimated age by true decade: ' +
    [...byDecade]
      .sort(([a], [b]) => a - b)
      .map(([d, v]) => `${d}${d === 70 ? '+' : 's'}: ${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(1)}`)
      .join(', '),
);

const rec = new FaceRecognitionNet();
const pairs = await loadPairsSet(join(dir, 'pairs.txt'), { size });
const p = faceApiPairs(rec, pairs, { batchSize: 64 });
console.log(
  `face-api matcher on ${pairs.pairs.length} pairs: 10-fold ${(100 * p.verification.accuracyMean).toFixed(2)} ± ` +
    `${(100 * p.verification.accuracyStd).toFixed(2)} %, AUC ${p.verification.auc.toFixed(3)}; at distance < 0.6: ` +
    `accuracy ${(100 * p.accuracy).toFixed(1)} %, TAR ${(100 * p.tar).toFixed(1)} %, FAR ${(100 * p.far).toFixed(1)} %`,
);

// throughput on 112×112 faces: batches of 64, CPU time over all threads and wall time
const n = Math.min(speedImages, faces.n);
const x112 = tf.tidy(() =>
  tf.image.resizeBilinear(
    toPixels(tf.tensor4d(faces.images.subarray(0, n * size * size * 3), [n, size, size, 3])),
    [112, 112],
  ),
) as tf.Tensor4D;
age.predict(tf.slice(x112, [0, 0, 0, 0], [8, -1, -1, -1])); // warm-up
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let s = 0; s < n; s += 64) {
  const b = tf.slice(x112, [s, 0, 0, 0], [Math.min(64, n - s), -1, -1, -1]);
  age.predict(b);
  b.dispose();
}
const wall = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
console.log(
  `ours (${backend.name}): ${n} faces in ${wall.toFixed(2)} s wall = ${(n / wall).toFixed(1)} img/s; ` +
    `${cpuSeconds.toFixed(2)} CPU-s = ${(n / cpuSeconds).toFixed(1)} img/s per core`,
);
const pixels = Uint8Array.from(x112.dataSync(), (v) => Math.max(0, Math.min(255, Math.round(v))));
x112.dispose();
const ref = await loadFaceApiReference();
const m = Math.min(32, n);
await ref.ageGender(pixels.subarray(0, 112 * 112 * 3), 112, 112);
const c1 = process.cpuUsage();
const t1 = performance.now();
for (let i = 0; i < m; i++)
  await ref.ageGender(pixels.subarray(i * 112 * 112 * 3, (i + 1) * 112 * 112 * 3), 112, 112);
const wall1 = (performance.now() - t1) / 1000;
const cpuRef = process.cpuUsage(c1);
console.log(
  `face-api's own bundle (its pure-JS CPU backend, one image per call as its API takes them): ${m} faces in ` +
    `${wall1.toFixed(2)} s = ${(m / wall1).toFixed(1)} img/s; ${(m / ((cpuRef.user + cpuRef.system) / 1e6)).toFixed(1)} img/s per core`,
);
age.dispose();
rec.dispose();
