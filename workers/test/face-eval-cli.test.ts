// mtl-face verify / eval / age, run as the CLI from source on a checkpoint of small random networks
// (backbone, age estimator, generator) and a few generated images: the printed numbers must equal what the
// eval package computes in process, and the ageing grid must have one row per face and 1 + 7 columns.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { cosineSimilarity, row } from '@mtlface/eval';
import { embedImages, evaluatePairs, loadFaceImages, loadPairsSet } from '@mtlface/eval/model';
import { SOURCE_EXEC_ARGV } from '../../scripts/source-argv.mjs';
import { randomFaceModel } from './support/random-face-model.js';
import { headerHeight, parseAges } from '../src/face/age.js';

await tf.setBackend('cpu');
const root = new URL('../../', import.meta.url).pathname;
const CLI = join(root, 'workers/src/mtl-face.ts');
let dir = '';
const nets = randomFaceModel();
const { model } = nets;

function mtlFace(...args: string[]) {
  const r = spawnSync(process.execPath, [...SOURCE_EXEC_ARGV, CLI, ...args, '--backend', 'cpu'], {
    encoding: 'utf8',
    cwd: root,
    timeout: 240_000,
  });
  assert.equal(r.status, 0, `mtl-face ${args[0]} failed:\n${r.stderr}`);
  return r.stdout;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mtl-face-eval-'));
  mkdirSync(join(dir, 'images'));
  const ann: string[] = [];
  // 4 identities × 3 ages: a per-identity colour pattern, brightened with age
  for (let id = 0; id < 4; id++) {
    for (let k = 0; k < 3; k++) {
      const px = Buffer.alloc(32 * 32 * 3);
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++) {
          const o = (y * 32 + x) * 3;
          px[o] = (60 * id + 5 * x + 20 * k) % 256;
          px[o + 1] = (90 + 40 * id + 4 * y) % 256;
          px[o + 2] = (30 * id * id + 3 * (x + y) + 10 * k) % 256;
        }
      const file = `images/${id}-${k}.png`;
      await sharp(px, { raw: { width: 32, height: 32, channels: 3 } })
        .png()
        .toFile(join(dir, file));
      ann.push(`${id} ${file} ${8 + 25 * k} ${id % 2}`);
    }
  }
  writeFileSync(join(dir, 'all.txt'), ann.join('\n') + '\n');
  writeFileSync(join(dir, 'fas.txt'), [ann[0], ann[4]].join('\n') + '\n');
  const pairs: string[] = [];
  for (let a = 0; a < 12; a++)
    for (let b = a + 1; b < 12; b++)
      pairs.push(
        `images/${Math.floor(a / 3)}-${a % 3}.png images/${Math.floor(b / 3)}-${b % 3}.png ${Math.floor(a / 3) === Math.floor(b / 3) ? 1 : -1}`,
      );
  writeFileSync(join(dir, 'pairs.txt'), pairs.join('\n') + '\n');
  await nets.save(join(dir, 'ckpt.safetensors'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
  nets.dispose();
});

test('verify prints the in-process cosine similarity and the decision at the given threshold', async () => {
  const a = join(dir, 'images/0-0.png');
  const b = join(dir, 'images/2-1.png');
  const out = JSON.parse(
    mtlFace('verify', a, b, '--checkpoint', join(dir, 'ckpt.safetensors'), '--threshold', '0.25', '--json'),
  );
  const emb = embedImages(model, await loadFaceImages([a, b], 32));
  const sim = cosineSimilarity(row(emb, 0), row(emb, 1));
  assert.ok(Math.abs(out.similarity - sim) < 1e-4, `${out.similarity} vs ${sim}`);
  assert.equal(out.threshold, 0.25);
  assert.equal(out.thresholdSource, '--threshold');
  assert.equal(out.same, sim > 0.25);
});

test('eval --pairs --identification --fas: the 10-fold result, leave-one-out ranks and FAS tables as JSON', async () => {
  const out = mtlFace(
    'eval',
    '--checkpoint',
    join(dir, 'ckpt.safetensors'),
    '--pairs',
    join(dir, 'pairs.txt'),
    '--identification',
    join(dir, 'all.txt'),
    '--fas',
    join(dir, 'fas.txt'),
    '--folds',
    '5',
    '--json',
  )
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const [ver, ident, fas] = out;
  const ref = evaluatePairs(model, await loadPairsSet(join(dir, 'pairs.txt'), { size: 32 }), {
    folds: 5,
  }).verification;
  assert.equal(ver.kind, 'verification');
  assert.equal(ver.pairs, 66);
  assert.ok(Math.abs(ver.accuracyMean - ref.accuracyMean) < 1e-9);
  assert.deepEqual(
    ver.byAgeGap.map((b: { pairs: number }) => b.pairs).reduce((a: number, b: number) => a + b, 0),
    66,
  );
  assert.equal(ident.kind, 'identification');
  assert.equal(ident.probes, 12);
  assert.equal(fas.kind, 'fas');
  assert.equal(fas.identity.pairs, 2 * 7);
  assert.equal(fas.ageAccuracy[0].estimator, 'own');
  assert.equal(
    fas.ageAccuracy[0].real.confusion.flat().reduce((a: number, b: number) => a + b, 0),
    2,
  );
  assert.equal(fas.identity.threshold, ver.bestThreshold);
});

test('age writes a grid with one row per face and the input plus 7 groups across', async () => {
  // Two faces aged into 48-px cells, written to `out`.
  const age = (out: string, ...extra: string[]) =>
    mtlFace(
      'age',
      join(dir, 'images/0-0.png'),
      join(dir, 'images/1-2.png'),
      '--checkpoint',
      join(dir, 'ckpt.safetensors'),
      '--out',
      out,
      '--cell',
      '48',
      ...extra,
    );
  const png = join(dir, 'grid.png');
  const out = age(png, '--no-labels');
  assert.match(out, /2 rows; columns: input, 0-10, 11-20, 21-30, 31-40, 41-50, 51-60, 61\+/);
  const meta = await sharp(png).metadata();
  assert.equal(meta.width, 8 * 48);
  assert.equal(meta.height, 2 * 48);

  // default: a white label row on top (group names), the sources' ages on their cells; same face pixels below
  const labelled = join(dir, 'grid-labelled.png');
  age(labelled, '--ages', '7,61');
  const head = headerHeight(48);
  const img = await sharp(labelled).raw().toBuffer({ resolveWithObject: true });
  assert.equal(img.info.width, 8 * 48);
  assert.equal(img.info.height, 2 * 48 + head);
  const plain = await sharp(png).raw().toBuffer();
  const ch = img.info.channels;
  const at = (b: Buffer, c: number, x: number, y: number, k: number) => b[(y * 8 * 48 + x) * c + k]!;
  let dark = 0;
  for (let y = 0; y < head; y++) for (let x = 0; x < 8 * 48; x++) if (at(img.data, ch, x, y, 0) < 128) dark++;
  assert.ok(dark > 20, `the label row has text (${dark} dark pixels)`);
  // an aged cell (row 1, column 3) is untouched by the labels
  for (const [x, y] of [
    [3 * 48 + 10, 48 + 30],
    [5 * 48 + 40, 5],
  ])
    for (let k = 0; k < 3; k++) assert.equal(at(img.data, ch, x!, y! + head, k), at(plain, 3, x!, y!, k));
  assert.throws(() => parseAges('7,x', 2), /item 2 "x" is not an age/);
  assert.throws(() => parseAges('7', 2), /1 age\(s\) for 2 face\(s\)/);
});
