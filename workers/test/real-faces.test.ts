// Real-photo path end to end, on photos the test composes from rendered faces: from-folder (detection,
// alignment, annotation), then embed, verify with face-api's second opinion, ageing and the FAS evaluation
// with the face-api judges, all as the CLIs run them, each checked against the same step done in process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { parseAnnotations } from '@mtlface/data';
import { cosineSimilarity, embeddingDistance, row } from '@mtlface/eval';
import { embedImages } from '@mtlface/eval/model';
import { FaceAligner } from '@mtlface/eval/align';
import { AgeGenderNet, FaceRecognitionNet, describeFaces } from '@mtlface/eval/judges';
import { SOURCE_EXEC_ARGV } from '../../scripts/source-argv.mjs';
import { randomFaceModel } from './support/random-face-model.js';
import { composePhoto } from '../../packages/eval/test/support/rendered-faces.js';
import { readFaces } from '../src/face/face-model.js';

const root = new URL('../../', import.meta.url).pathname;
let dir = '';
const nets = randomFaceModel();
const { model } = nets;
let aligner: FaceAligner;

function run(cli: 'mtl-data' | 'mtl-face', ...args: string[]): string {
  const r = spawnSync(process.execPath, [...SOURCE_EXEC_ARGV, join(root, `workers/src/${cli}.ts`), ...args], {
    encoding: 'utf8',
    cwd: root,
    timeout: 300_000,
  });
  assert.equal(r.status, 0, `${cli} ${args[0]} failed:\n${r.stderr}`);
  return r.stdout;
}

const photo = (...p: string[]) => join(dir, 'photos', ...p);

before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
  aligner = new FaceAligner();
  dir = mkdtempSync(join(tmpdir(), 'real-faces-'));
  for (const [person, identity] of [
    ['ann', 31],
    ['ben', 32],
  ] as const) {
    mkdirSync(photo(person), { recursive: true });
    const young = await composePhoto(420, 520, [{ identity, age: 22, cx: 0.5, cy: 0.45, fraction: 0.7 }]);
    await sharp(young.data, { raw: { width: 420, height: 520, channels: 3 } })
      .jpeg({ quality: 92 })
      .toFile(photo(person, 'young.jpg'));
    // older, smaller, beside a stranger who is smaller still
    const old = await composePhoto(640, 420, [
      { identity, age: 68, cx: 0.35, cy: 0.45, fraction: 0.3 },
      { identity: 40, age: 40, cx: 0.78, cy: 0.5, fraction: 0.15 },
    ]);
    await sharp(old.data, { raw: { width: 640, height: 420, channels: 3 } })
      .png()
      .toFile(photo(person, 'old.png'));
  }
  await nets.save(join(dir, 'ckpt.safetensors'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
  aligner.dispose();
  nets.dispose();
});

test('from-folder: each photo aligned to a 112×112 crop and annotated with face-api’s ages and genders', async () => {
  const out = join(dir, 'aligned');
  const stdout = run('mtl-data', 'from-folder', join(dir, 'photos'), '--out', out);
  assert.match(stdout, /from-folder: 4 of 4 photos aligned .*2 with several faces: the largest taken/);
  assert.deepEqual(readdirSync(join(out, 'ann')).sort(), ['old.jpg', 'young.jpg']);
  const entries = parseAnnotations(readFileSync(join(out, 'all.txt'), 'utf8'), 'all.txt');
  assert.deepEqual(
    entries.map((e) => [e.id, e.file]),
    [
      [0, 'ann/old.jpg'],
      [0, 'ann/young.jpg'],
      [1, 'ben/old.jpg'],
      [1, 'ben/young.jpg'],
    ],
  );
  assert.equal(readFileSync(join(out, 'all.identities.txt'), 'utf8'), '0 ann\n1 ben\n');
  // the list's labels are face-api's on the written crops, computed here independently of the CLI's batching
  const net = new AgeGenderNet();
  try {
    for (const e of entries) {
      const { data, info } = await sharp(join(out, e.file)).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height], [112, 112]);
      const x = tf.tensor4d(new Uint8Array(data), [1, 112, 112, 3], 'int32');
      const r = net.predict(x);
      x.dispose();
      assert.equal(e.age, Math.round(r.age[0]!), e.file);
      assert.equal(e.gender, r.male[0]! > 0.5 ? 1 : 0, e.file);
    }
  } finally {
    net.dispose();
  }
});

test('embed --align and verify --align --judge face-api prepare a photo the same way', async () => {
  const a = photo('ann', 'young.jpg');
  const b = photo('ben', 'young.jpg');
  const ck = join(dir, 'ckpt.safetensors');
  const embedded = run('mtl-face', 'embed', '--checkpoint', ck, '--align', '--json', a, b)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { embedding: number[] });
  const e = embedImages(model, await readFaces([a, b], 32, aligner));
  for (const i of [0, 1]) {
    const err = Math.max(...embedded[i]!.embedding.map((v, k) => Math.abs(v - row(e, i)[k]!)));
    assert.ok(err < 1e-4, `embed --align differs from readFaces + embedImages by ${err}`);
  }
  const v = JSON.parse(
    run('mtl-face', 'verify', a, b, '--checkpoint', ck, '--align', '--judge', 'face-api', '--json'),
  );
  // verify's similarity is the cosine of embed's two embeddings: one preparation for both commands
  assert.ok(
    Math.abs(
      v.similarity -
        cosineSimilarity(
          Float32Array.from(embedded[0]!.embedding),
          Float32Array.from(embedded[1]!.embedding),
        ),
    ) < 1e-4,
  );
  assert.ok(Math.abs(v.similarity - cosineSimilarity(row(e, 0), row(e, 1))) < 1e-4);
  const rec = new FaceRecognitionNet();
  try {
    const d = describeFaces(rec, await readFaces([a, b], 112, aligner));
    assert.ok(Math.abs(v.judge.distance - embeddingDistance(d, 0, d, 1)) < 1e-4);
    assert.equal(v.judge.same, v.judge.distance < 0.6);
  } finally {
    rec.dispose();
  }
});

test('age --align writes the grid; eval --fas --judge face-api adds face-api’s age and identity judgements', async () => {
  const ck = join(dir, 'ckpt.safetensors');
  const grid = join(dir, 'grid.png');
  run(
    'mtl-face',
    'age',
    '--checkpoint',
    ck,
    '--align',
    '--out',
    grid,
    '--no-labels',
    photo('ann', 'young.jpg'),
    photo('ben', 'young.jpg'),
  );
  const meta = await sharp(grid).metadata();
  assert.deepEqual([meta.width, meta.height], [8 * 112, 2 * 112]);
  const lines = run(
    'mtl-face',
    'eval',
    '--checkpoint',
    ck,
    '--fas',
    join(dir, 'aligned', 'all.txt'),
    '--threshold',
    '0.3',
    '--judge',
    'face-api',
    '--json',
  )
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const fas = lines.find((l) => l.kind === 'fas');
  assert.deepEqual(
    fas.ageAccuracy.map((a: { estimator: string }) => a.estimator),
    ['own', 'face-api age'],
  );
  assert.equal(fas.matcherIdentity[0].matcher, 'face-api recognition');
  assert.equal(fas.matcherIdentity[0].pairs, 4 * 7);
  const judgeAge = lines.find((l) => l.kind === 'judge-age');
  assert.ok(Number.isFinite(judgeAge.meanAbsError));
});
