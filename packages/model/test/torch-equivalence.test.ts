// Equivalence with PyTorch: fixtures/reference_mtlface.py builds the networks from the spec in
// PyTorch 1.13 (/usr/bin/python3, installed here and in CI), saves weights with torch.save and
// the inputs/outputs it computed; we import the .pth files and must reproduce the outputs.
import { fileURLToPath } from 'node:url';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  AgeEstimation,
  AgingModule,
  PatchDiscriminator,
  buildBackbone,
  exportTorchState,
  flattenTensors,
  importTorchState,
  rawToFloat32,
  rawToInt32,
  readTorchPickle,
  readTorchWeights,
  type Backbone,
  type RawTensor,
} from '@mtlface/model';
import { useCpu } from './helpers.js';

await useCpu();

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./fixtures/reference_mtlface.py', import.meta.url));
let dir = '';
let io = new Map<string, RawTensor>();

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mtl-torch-'));
  const r = spawnSync(PYTHON, [SCRIPT, dir], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    throw new Error(
      `${PYTHON} ${SCRIPT} failed (status ${r.status}${r.error ? `, ${r.error.message}` : ''}); ` +
        `PyTorch 1.13 must be installed for /usr/bin/python3 (scripts/install-system-deps.sh): ${r.stderr}`,
    );
  }
  io = flattenTensors(readTorchPickle(join(dir, 'io.pth')));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** An NCHW reference tensor as NHWC (or a 2-D one as is). */
function ref(name: string): tf.Tensor {
  const raw = io.get(name);
  if (!raw) throw new Error(`reference tensor '${name}' missing`);
  const t = tf.tensor(rawToFloat32(raw, name), raw.shape);
  if (raw.shape.length !== 4) return t;
  const out = tf.transpose(t, [0, 2, 3, 1]);
  t.dispose();
  return out;
}

function assertClose(got: tf.Tensor, want: tf.Tensor, what: string, tol = 1e-4): void {
  assert.deepEqual(got.shape, want.shape, `${what} shape`);
  const g = got.dataSync();
  const w = want.dataSync();
  let scale = 0;
  for (const v of w) scale = Math.max(scale, Math.abs(v));
  let err = 0;
  for (let i = 0; i < g.length; i++) err = Math.max(err, Math.abs(g[i]! - w[i]!));
  assert.ok(err <= tol * Math.max(1, scale), `${what}: max abs error ${err} (reference scale ${scale})`);
}

const CONFIG = { units: [1, 2, 1, 1], widths: [16, 32, 48, 64], inputSize: 32, embeddingSize: 32 } as const;

function importedBackbone(tag: 'ir' | 'irse'): Backbone {
  const b = buildBackbone({ ...CONFIG, mode: tag === 'irse' ? 'ir_se' : 'ir', dropout: 0 });
  importTorchState(b, readTorchWeights(join(dir, `backbone_${tag}.pth`)), { where: `backbone_${tag}.pth` });
  return b;
}

test('the torch.save reader decodes non-contiguous, int64 and float16 tensors', () => {
  assert.deepEqual([...rawToFloat32(io.get('misc.transposed')!)], [0, 3, 1, 4, 2, 5]);
  assert.deepEqual(io.get('misc.transposed')!.shape, [3, 2]);
  assert.deepEqual([...rawToInt32(io.get('misc.int64')!)], [-3, 2 ** 31 - 1]);
  assert.deepEqual([...rawToFloat32(io.get('misc.half')!)], [1.5, -0.25]);
});

for (const tag of ['ir', 'irse'] as const) {
  test(`${tag} backbone + fsm + output layer imported from a DDP .pth reproduces PyTorch's eval features`, () => {
    const b = importedBackbone(tag).eval();
    tf.tidy(() => {
      const f = b.forward(ref(`${tag}.input`) as tf.Tensor4D);
      for (const k of ['x1', 'x2', 'x3', 'x4', 'x5', 'xId', 'xAge', 'embedding'] as const) {
        assertClose(f[k], ref(`${tag}.eval.${k}`), `${tag} eval ${k}`);
      }
    });
    b.dispose();
  });
}

test('the input gradient through the eval-mode (frozen) backbone matches PyTorch, as the FAS generator step uses it', () => {
  const b = importedBackbone('ir').eval();
  const x = ref('ir.input') as tf.Tensor4D;
  const w = tf.linspace(-1, 1, 32);
  const g = tf.grad((t: tf.Tensor) => {
    const f = b.forward(t as tf.Tensor4D);
    return tf.add(tf.sum(tf.mul(f.embedding, w)), tf.mean(tf.square(f.xId))) as tf.Scalar;
  })(x);
  const want = ref('ir.eval.input_grad');
  assertClose(g, want, 'input gradient', 2e-4);
  tf.dispose([x, w, g, want]);
  b.dispose();
});

test('ir backbone in training mode matches PyTorch: outputs, running statistics and gradients', () => {
  const b = importedBackbone('ir').train();
  const x = ref('ir.input') as tf.Tensor4D;
  const proj = ref('ir.train.proj');
  const params = b.namedParameters();
  const { value, grads } = tf.variableGrads(
    () =>
      tf.tidy(() => {
        const f = b.forward(x);
        assertClose(f.embedding, ref('ir.train.embedding'), 'train embedding');
        assertClose(f.xAge, ref('ir.train.xAge'), 'train xAge');
        return tf.add(tf.sum(tf.mul(f.embedding, proj)), tf.mean(tf.square(f.xAge))) as tf.Scalar;
      }),
    params.map(([, v]) => v),
  );
  value.dispose();
  for (const [name, v] of b.stateDict()) {
    if (!name.includes('running')) continue;
    assertClose(v, ref(`ir.train.state.${name}`), `running stat ${name}`);
  }
  const torchGrads = new Map<string, tf.Tensor>();
  for (const [name, v] of params) torchGrads.set(name, grads[v.name]!);
  // compare in PyTorch layout: export the gradients like weights
  for (const [name, g] of torchGrads) {
    const want = ref(`ir.train.grad.${name}`);
    const got = g.rank === 4 ? tf.transpose(g, [3, 2, 0, 1]) : g;
    const wantT = want.rank === 4 ? tf.transpose(want, [0, 3, 1, 2]) : want; // undo ref()'s NHWC view
    assertClose(got, wantT, `grad ${name}`, 2e-4);
    tf.dispose([want, wantT]);
    if (got !== g) got.dispose();
  }
  tf.dispose(Object.values(grads));
  tf.dispose([x, proj]);
  b.dispose();
});

test('age estimation imported from .pth reproduces PyTorch age and group logits', () => {
  const est = new AgeEstimation({ channels: 64, inputSize: 32, groups: 7, hidden: 24 }).eval();
  importTorchState(est, readTorchWeights(join(dir, 'estimation.pth')));
  tf.tidy(() => {
    const { ageLogits, groupLogits } = est.forward(ref('ir.eval.xAge') as tf.Tensor4D);
    assertClose(ageLogits, ref('est.age'), 'age logits');
    assertClose(groupLogits, ref('est.group'), 'group logits');
  });
  est.dispose();
});

/** The reference generator (generator.pth) and the inputs PyTorch ran it on. */
function referenceGenerator(): AgingModule {
  const g = new AgingModule({ widths: [16, 32, 48, 64], groups: 7, unitCount: 16, repeat: 2 });
  importTorchState(g, readTorchWeights(join(dir, 'generator.pth')));
  return g;
}

function generatorInputs() {
  return {
    image: ref('ir.input') as tf.Tensor4D,
    x2: ref('ir.eval.x2') as tf.Tensor4D,
    x3: ref('ir.eval.x3') as tf.Tensor4D,
    x4: ref('ir.eval.x4') as tf.Tensor4D,
    xId: ref('ir.eval.xId') as tf.Tensor4D,
    targetGroups: tf.tensor1d([...rawToInt32(io.get('gen.target')!)], 'int32'),
  };
}

test('generator imported from .pth reproduces PyTorch (router, residual blocks, half-pixel ×2, skips)', () => {
  const g = referenceGenerator().eval();
  tf.tidy(() => {
    const out = g.forward(generatorInputs());
    assertClose(out, ref('gen.out'), 'generator output');
  });
  g.dispose();
});

/** Our gradient (our layout) against PyTorch's (saved in its layout). */
function assertGradClose(g: tf.Tensor, torchName: string, what: string): void {
  const raw = io.get(torchName);
  if (!raw) throw new Error(`reference tensor '${torchName}' missing`);
  const want = tf.tensor(rawToFloat32(raw, torchName), raw.shape);
  const got = g.rank === 4 ? tf.transpose(g, [3, 2, 0, 1]) : g;
  assertClose(got, want, what, 2e-4);
  want.dispose();
  if (got !== g) got.dispose();
}

test('generator in training mode matches PyTorch: output and every parameter gradient', () => {
  const g = referenceGenerator().train();
  const inputs = generatorInputs();
  const r = ref('gen.train.r');
  const params = g.namedParameters();
  const { value, grads } = tf.variableGrads(
    () =>
      tf.tidy(() => {
        const out = g.forward(inputs);
        assertClose(out, ref('gen.train.out'), 'train output');
        return tf.sum(tf.mul(out, r)) as tf.Scalar;
      }),
    params.map(([, v]) => v),
  );
  value.dispose();
  // Conv biases in front of a train-mode batch norm have a true gradient of exactly zero: both sides
  // hold float32 accumulation noise there, which depends on the CPU's kernels. Such a tensor (the
  // reference below 1e-5 of the network's largest gradient) must be noise on our side too; every
  // other tensor is compared elementwise.
  const absMax = (xs: ArrayLike<number>): number =>
    Array.from(xs).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const refMax = new Map(
    params.map(([name]) => [name, absMax(rawToFloat32(io.get(`gen.train.grad.${name}`)!, name))]),
  );
  const noise = 1e-5 * Math.max(...refMax.values());
  for (const [name, v] of params) {
    if (refMax.get(name)! < noise) {
      const ours = absMax(grads[v.name]!.dataSync());
      assert.ok(ours < noise, `grad ${name}: ${ours}, where PyTorch's is noise (< ${noise})`);
    } else assertGradClose(grads[v.name]!, `gen.train.grad.${name}`, `grad ${name}`);
  }
  tf.dispose(Object.values(grads));
  tf.dispose([...Object.values(inputs), r]);
  g.dispose();
});

test('spectrally normalised discriminator gradients (through σ(W)) match PyTorch', () => {
  const d = new PatchDiscriminator({ groups: 7, convDim: 8, repeatNum: 3 }).train();
  importTorchState(d, readTorchWeights(join(dir, 'discriminator.pth')));
  const target = tf.tensor1d([...rawToInt32(io.get('gen.target')!)], 'int32');
  const img = ref('ir.input') as tf.Tensor4D;
  const params = d.namedParameters();
  const { value, grads } = tf.variableGrads(
    () => tf.mean(tf.square(tf.sub(d.forward(img, target), 1))) as tf.Scalar,
    params.map(([, v]) => v),
  );
  value.dispose();
  for (const [name, v] of params) assertGradClose(grads[v.name]!, `disc.train.grad.${name}`, `grad ${name}`);
  tf.dispose(Object.values(grads));
  tf.dispose([target, img]);
  d.dispose();
});

test('spectrally normalised discriminator matches PyTorch in training (power iteration, u/v) and eval', () => {
  const d = new PatchDiscriminator({ groups: 7, convDim: 8, repeatNum: 3 });
  importTorchState(d, readTorchWeights(join(dir, 'discriminator.pth')));
  const target = tf.tensor1d([...rawToInt32(io.get('gen.target')!)], 'int32');
  const img = ref('ir.input') as tf.Tensor4D;
  d.train();
  tf.tidy(() => assertClose(d.forward(img, target), ref('disc.train'), 'train logits'));
  for (const [name, v] of d.stateDict()) {
    if (name.endsWith('weight_u') || name.endsWith('weight_v'))
      assertClose(v, ref(`disc.after.${name}`), name);
  }
  d.eval();
  tf.tidy(() => assertClose(d.forward(img, target), ref('disc.eval'), 'eval logits'));
  tf.dispose([target, img]);
  d.dispose();
});

test('import is all-or-nothing: a renamed, a mis-shaped and an extra tensor are all named', async () => {
  const b = importedBackbone('ir');
  const before = b.stateDict().get('block2.0.res_layer.1.weight')!.dataSync().slice();
  const tensors = new Map(readTorchWeights(join(dir, 'backbone_irse.pth'))); // irse has extra SE tensors
  const w = tensors.get('block1.0.res_layer.1.weight')!;
  tensors.delete('block1.0.res_layer.1.weight');
  tensors.set('block1.0.res_layer.1.wieght', w);
  tensors.set('block2.0.res_layer.1.weight', { ...w });
  assert.throws(
    () => importTorchState(b, tensors, { where: 'edited.pth' }),
    (e: Error) =>
      e.message.startsWith('edited.pth: import failed, nothing loaded') &&
      e.message.includes(`unexpected tensor 'block1.0.res_layer.1.wieght'`) &&
      e.message.includes(`missing tensor 'block1.0.res_layer.1.weight'`) &&
      e.message.includes(
        `tensor 'block2.0.res_layer.1.weight' has shape [16,16,3,3], expected [32,16,3,3]`,
      ) &&
      e.message.includes(`unexpected tensor 'block1.0.res_layer.6.fc1.weight'`),
  );
  assert.deepEqual(b.stateDict().get('block2.0.res_layer.1.weight')!.dataSync(), before);
  // and exporting back gives PyTorch's layouts: the export equals the file we imported
  const exported = await exportTorchState(b);
  const original = readTorchWeights(join(dir, 'backbone_ir.pth'));
  assert.deepEqual([...exported.keys()].sort(), [...original.keys()].sort());
  for (const [name, raw] of original) {
    const e = exported.get(name)!;
    assert.deepEqual(e.shape, raw.shape, name);
    assert.deepEqual(Buffer.from(e.bytes), Buffer.from(raw.bytes), name);
  }
  b.dispose();
});
