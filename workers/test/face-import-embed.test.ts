// mtl-face import-torch and embed, run as the CLI from source: weights a PyTorch user would have
// (torch.save .pth from the reference modules, and a safetensors file in PyTorch layout) become
// our checkpoint, and embed prints what the model computes in process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { buildBackbone, encodeSafetensors, exportTorchState, readSafetensors } from '@mtlface/model';
import { writeCheckpoint } from '@mtlface/train';
import { SOURCE_EXEC_ARGV } from '../../scripts/source-argv.mjs';
import { loadBackbone } from '../src/face/embed.js';

await tf.setBackend('cpu');
const root = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(root, 'workers/src/mtl-face.ts');
let dir = '';
/** The test images' RGB bytes, kept to compute the expected embeddings without the CLI's image code. */
const pixels: Buffer[] = [];

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
    pixels[i] = px;
    await sharp(px, { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toFile(join(dir, `face${i}.png`));
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The embedding by the spec alone (§5: RGB scaled to [-1, 1]; the mirror is the image with its
 * columns reversed; with flip, the sum of both), from the raw pixels the PNGs were written from.
 */
function expectedEmbedding(model: ReturnType<typeof buildBackbone>, i: number, flip: boolean): number[] {
  const px = pixels[i]!;
  const img = (mirror: boolean) =>
    Float32Array.from({ length: 32 * 32 * 3 }, (_, k) => {
      const [y, x, c] = [Math.floor(k / 96), Math.floor(k / 3) % 32, k % 3];
      return px[(y * 32 + (mirror ? 31 - x : x)) * 3 + c]! / 127.5 - 1;
    });
  return tf.tidy(() => {
    const views = flip ? [img(false), img(true)] : [img(false)];
    const e = model.forward(
      tf.tensor4d(Float32Array.from(views.flatMap((v) => [...v])), [views.length, 32, 32, 3]),
    ).embedding;
    return Array.from(tf.sum(e, 0).dataSync());
  });
}

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
  for (const [i, l] of lines.entries()) {
    assert.equal(l.embedding.length, 512);
    const expected = expectedEmbedding(ref, i, true);
    const err = Math.max(...l.embedding.map((v, k) => Math.abs(v - expected[k]!)));
    assert.ok(err < 1e-4, `image ${i}: max error ${err}`);
  }
  const noFlip = mtlFace('embed', '--checkpoint', out, '--no-flip', '--backend', 'cpu', images[0]!);
  assert.equal(noFlip.status, 0, noFlip.stderr);
  const plain = noFlip.stdout.trim().split('\t');
  assert.equal(plain[0], images[0]);
  const single = expectedEmbedding(ref, 0, false);
  const vals = plain[1]!.split(' ').map(Number);
  assert.ok(Math.max(...vals.map((v, k) => Math.abs(v - single[k]!))) < 1e-4);
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

test('import-torch refuses a file with no tensors for the network, in one line naming expected and found, and writes nothing', () => {
  const py = spawnSync(
    '/usr/bin/python3',
    ['-c', `import torch; torch.save({'epoch': 3, 'note': 'no tensors'}, '${join(dir, 'meta.pth')}')`],
    { encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(py.status, 0, `PyTorch 1.13 must be installed for /usr/bin/python3: ${py.stderr}`);
  writeFileSync(join(dir, 'empty.safetensors'), encodeSafetensors(new Map()));
  const est = new Map([['estimation.x', { dtype: 'F32' as const, shape: [2], bytes: new Uint8Array(8) }]]);
  writeFileSync(join(dir, 'est.safetensors'), encodeSafetensors(est));
  const cases: Array<[string, string[], RegExp]> = [
    [
      'meta.pth',
      [],
      /meta\.pth: expected tensors of an MTLFace network \(backbone\.\*, .*\); found no tensors at all$/,
    ],
    [
      'empty.safetensors',
      [],
      /empty\.safetensors: expected tensors of an MTLFace network .*; found no tensors at all$/,
    ],
    [
      'est.safetensors',
      ['--network', 'backbone'],
      /est\.safetensors: expected tensors of the backbone \(backbone\.\* or a bare state dict\); found 1 tensor\(s\), of estimation \(1\)$/,
    ],
  ];
  for (const [file, extra, message] of cases) {
    const out = join(dir, `${file}.out.safetensors`);
    const r = mtlFace('import-torch', join(dir, file), ...extra, '--out', out);
    assert.equal(r.status, 1, `${file}: ${r.stdout}`);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('mtl-face'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, message);
    assert.ok(!existsSync(out), `${file}: no checkpoint written`);
  }
});

test('embed checks a .safetensors against the sidecar beside it: intact runs, a flipped byte is refused naming sha256', async () => {
  const backbone = buildBackbone({ arch: 'demo', inputSize: 32 }).eval();
  const ckdir = join(dir, 'train-ckpt');
  const meta = {
    iteration: 7,
    mode: 'fr',
    scalers: {},
    optimizers: {},
    sampler: { iteration: 7, epoch: 0 },
    rng: { seed: 1 },
    worldSize: 1,
    config: {},
    configHash: 'h',
  };
  const { tensorsPath } = await writeCheckpoint(ckdir, backbone.stateDict('backbone'), meta);
  backbone.dispose();
  const image = join(dir, 'face0.png');
  const ok = mtlFace('embed', '--checkpoint', tensorsPath, '--backend', 'cpu', image);
  assert.equal(ok.status, 0, ok.stderr);
  const bytes = readFileSync(tensorsPath);
  // A byte in the last tensor's data: the file still parses, only the checksum can tell.
  bytes[bytes.length - 3] ^= 0x40;
  writeFileSync(tensorsPath, bytes);
  for (const cmd of ['embed', 'verify']) {
    const args = cmd === 'embed' ? [image] : [image, image];
    const bad = mtlFace(cmd, '--checkpoint', tensorsPath, '--backend', 'cpu', ...args);
    assert.equal(bad.status, 1, `${cmd}: ${bad.stdout}`);
    assert.match(
      bad.stderr,
      new RegExp(
        `mtl-face ${cmd}: .*ckpt-0000007\\.safetensors: refused, checked against its sidecar .*ckpt-0000007\\.json: tensor file .* fails its sha256 check \\(corrupt\\)`,
      ),
    );
  }
});
