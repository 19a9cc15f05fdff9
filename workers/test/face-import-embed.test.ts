// mtl-face import-torch and embed, run as the CLI from source: weights a PyTorch user would have
// (torch.save .pth from the reference modules, and a safetensors file in PyTorch layout) become
// our checkpoint, and embed prints what the model computes in process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { buildBackbone, encodeSafetensors, exportTorchState, readSafetensors } from '@mtlface/model';
import { SOURCE_EXEC_ARGV } from '../../scripts/source-argv.mjs';
import { embedImages, loadBackbone } from '../src/face/embed.js';

await tf.setBackend('cpu');
const root = new URL('../../', import.meta.url).pathname;
const CLI = join(root, 'workers/src/mtl-face.ts');
let dir = '';

function mtlFace(...args: string[]) {
  return spawnSync(process.execPath, [...SOURCE_EXEC_ARGV, CLI, ...args], {
    encoding: 'utf8',
    cwd: root,
    timeout: 180_000,
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mtl-face-'));
  for (const [i, colour] of [
    [0, { r: 200, g: 40, b: 90 }],
    [1, { r: 10, g: 120, b: 250 }],
  ] as const) {
    // a gradient so the mirror differs from the image
    const px = Buffer.alloc(32 * 32 * 3);
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) {
        const o = (y * 32 + x) * 3;
        px[o] = (colour.r + 4 * x) % 256;
        px[o + 1] = (colour.g + 3 * y) % 256;
        px[o + 2] = colour.b;
      }
    await sharp(px, { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toFile(join(dir, `face${i}.png`));
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('import-torch (safetensors in PyTorch layout, --arch demo) then embed prints the in-process embeddings', async () => {
  const ref = buildBackbone({ arch: 'demo', inputSize: 32 }).eval();
  writeFileSync(join(dir, 'demo.safetensors'), encodeSafetensors(await exportTorchState(ref)));
  const out = join(dir, 'demo-ckpt.safetensors');
  const imp = mtlFace(
    'import-torch',
    join(dir, 'demo.safetensors'),
    '--arch',
    'demo',
    '--input-size',
    '32',
    '--out',
    out,
  );
  assert.equal(imp.status, 0, imp.stderr);
  assert.match(imp.stdout, /wrote .*demo-ckpt\.safetensors: backbone \(/);
  const ck = readSafetensors(out);
  assert.equal(ck.metadata.format, 'mtlface-weights');
  assert.ok(ck.tensors.has('backbone.output_layer.3.weight'));

  const images = [join(dir, 'face0.png'), join(dir, 'face1.png')];
  const run = mtlFace('embed', '--checkpoint', out, '--json', '--backend', 'cpu', ...images);
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { image: string; embedding: number[] });
  assert.deepEqual(
    lines.map((l) => l.image),
    images,
  );
  const expected = await embedImages(ref, images, true);
  for (const [i, l] of lines.entries()) {
    assert.equal(l.embedding.length, 512);
    const err = Math.max(...l.embedding.map((v, k) => Math.abs(v - expected[i]![k]!)));
    assert.ok(err < 1e-4, `image ${i}: max error ${err}`);
  }
  const noFlip = mtlFace('embed', '--checkpoint', out, '--no-flip', '--backend', 'cpu', images[0]!);
  assert.equal(noFlip.status, 0, noFlip.stderr);
  const plain = noFlip.stdout.trim().split('\t');
  assert.equal(plain[0], images[0]);
  const single = await embedImages(ref, [images[0]!], false);
  const vals = plain[1]!.split(' ').map(Number);
  assert.ok(Math.max(...vals.map((v, k) => Math.abs(v - single[0]![k]!))) < 1e-4);
  assert.ok(
    Math.max(...vals.map((v, k) => Math.abs(v - lines[0]!.embedding[k]!))) > 1e-3,
    'flip changes the embedding',
  );
  ref.dispose();
});

test('import-torch reads a DDP torch.save .pth with --arch auto and rejects a wrong --arch naming tensors', () => {
  const py = spawnSync(
    '/usr/bin/python3',
    [join(root, 'packages/model/test/fixtures/reference_mtlface.py'), dir],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  assert.equal(py.status, 0, `PyTorch 1.13 must be installed for /usr/bin/python3: ${py.stderr}`);
  const out = join(dir, 'ir.safetensors');
  const imp = mtlFace(
    'import-torch',
    join(dir, 'backbone_ir.pth'),
    join(dir, 'estimation.pth'),
    '--arch',
    'auto',
    '--input-size',
    '32',
    '--out',
    out,
  );
  assert.equal(imp.status, 0, imp.stderr);
  assert.match(imp.stdout, /backbone .*estimation/);
  const b = loadBackbone(out);
  assert.deepEqual(b.config.units, [1, 2, 1, 1]);
  assert.equal(b.config.inputSize, 32);
  b.dispose();
  const bad = mtlFace(
    'import-torch',
    join(dir, 'backbone_ir.pth'),
    '--arch',
    'demo',
    '--input-size',
    '32',
    '--out',
    join(dir, 'x.safetensors'),
  );
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /import failed, nothing loaded/);
  assert.match(bad.stderr, /unexpected tensor 'block2\.1\.res_layer\.0\.weight'/);
});
