import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { SGD, Adam, type NamedParam } from '../src/optim.js';
import { decaysWeight } from '../src/weight-decay.js';

await tf.setBackend('cpu');

function rand(seed: number, n: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

const shapes = [[3, 2], [4], [2, 2, 1]];
const decays = [5e-4, 0, 0.1];
const steps = 3;
const lrs = [0.1, 0.05, 0.02];
const init = shapes.map((s, i) => rand(i + 1, tf.util.sizeFromShape(s)));
const grads = Array.from({ length: steps }, (_, t) =>
  shapes.map((s, i) => rand(100 * t + i, tf.util.sizeFromShape(s))),
);

function run(make: (p: NamedParam[]) => SGD | Adam): number[][] {
  const params = shapes.map((s, i) => ({
    name: `p${i}`,
    variable: tf.variable(tf.tensor(init[i]!, s)),
    weightDecay: decays[i]!,
  }));
  const opt = make(params);
  const before = tf.memory().numTensors;
  for (let t = 0; t < steps; t++) {
    const g = grads[t]!.map((v, i) => tf.tensor(v, shapes[i]));
    opt.step(g, lrs[t]!);
    g.forEach((x) => x.dispose());
    assert.equal(tf.memory().numTensors, before + opt.slots().size, 'no tensor leak per step');
  }
  const out = params.map((p) => Array.from(p.variable.dataSync()));
  params.forEach((p) => p.variable.dispose());
  opt.dispose();
  return out;
}

/** Float64 reference of torch.optim.SGD / Adam written from the PyTorch docs' pseudo-code. */
function reference(kind: 'sgd' | 'adam'): number[][] {
  return shapes.map((_, i) => {
    const p = [...init[i]!];
    const buf: number[] = [];
    const m = p.map(() => 0);
    const v = p.map(() => 0);
    for (let t = 0; t < steps; t++) {
      const g = grads[t]![i]!.map((x, j) => x + decays[i]! * p[j]!);
      for (let j = 0; j < p.length; j++) {
        if (kind === 'sgd') {
          buf[j] = t === 0 ? g[j]! : 0.9 * buf[j]! + g[j]!;
          p[j] = p[j]! - lrs[t]! * buf[j]!;
        } else {
          m[j] = 0.5 * m[j]! + 0.5 * g[j]!;
          v[j] = 0.99 * v[j]! + 0.01 * g[j]! * g[j]!;
          const denom = Math.sqrt(v[j]!) / Math.sqrt(1 - 0.99 ** (t + 1)) + 1e-8;
          p[j] = p[j]! - (lrs[t]! / (1 - 0.5 ** (t + 1))) * (m[j]! / denom);
        }
      }
    }
    return p;
  });
}

function torchReference(kind: 'sgd' | 'adam'): number[][] {
  const script = `
import json, sys, torch
d = json.load(sys.stdin)
ps = [torch.tensor(v, dtype=torch.float32).reshape(s).requires_grad_() for v, s in zip(d['init'], d['shapes'])]
groups = [{'params': [p], 'weight_decay': wd} for p, wd in zip(ps, d['decays'])]
opt = torch.optim.SGD(groups, lr=1, momentum=0.9) if d['kind'] == 'sgd' else torch.optim.Adam(groups, lr=1, betas=(0.5, 0.99), eps=1e-8)
for t, lr in enumerate(d['lrs']):
    for g in opt.param_groups: g['lr'] = lr
    for p, gv in zip(ps, d['grads'][t]): p.grad = torch.tensor(gv, dtype=torch.float32).reshape(p.shape)
    opt.step()
print(json.dumps([p.detach().reshape(-1).tolist() for p in ps]))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script], {
    input: JSON.stringify({ kind, init, shapes, decays, grads, lrs }),
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `torch reference failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as number[][];
}

function close(a: number[][], b: number[][], tol: number, what: string): void {
  a.forEach((row, i) =>
    row.forEach((x, j) =>
      assert.ok(Math.abs(x - b[i]![j]!) <= tol, `${what}: p${i}[${j}] ${x} vs ${b[i]![j]}`),
    ),
  );
}

// The torch.optim comparison is the independent check these tests exist for: without PyTorch they
// fail, naming what to install, rather than passing on the float64 model alone.
function requireTorch(): void {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.status !== 0)
    assert.fail('PyTorch is required: /usr/bin/python3 cannot import torch (apt-get install python3-torch)');
}

test('SGD with momentum follows torch.optim.SGD (float64 reference and torch 1.13)', () => {
  const ours = run((p) => new SGD(p, 0.9));
  close(ours, reference('sgd'), 2e-6, 'vs float64 reference');
  requireTorch();
  close(ours, torchReference('sgd'), 2e-6, 'vs torch');
});

test('Adam with bias correction follows torch.optim.Adam (float64 reference and torch 1.13)', () => {
  const ours = run((p) => new Adam(p, 0.5, 0.99, 1e-8));
  close(ours, reference('adam'), 2e-6, 'vs float64 reference');
  requireTorch();
  close(ours, torchReference('adam'), 2e-6, 'vs torch');
});

test('optimizer slots round-trip: a restored optimizer continues identically', () => {
  const mk = () => [{ name: 'w', variable: tf.variable(tf.tensor([1, 2, 3])), weightDecay: 0.01 }];
  const a = mk();
  const b = mk();
  const oa = new Adam(a, 0.5, 0.99);
  const g = tf.tensor([0.3, -0.2, 0.1]);
  oa.step([g], 0.1);
  b[0]!.variable.assign(a[0]!.variable);
  const ob = new Adam(b, 0.5, 0.99);
  const saved = new Map([...oa.slots()].map(([k, t]) => [k, t.clone()]));
  assert.deepEqual([...saved.keys()].sort(), ['optim.adam.w.exp_avg', 'optim.adam.w.exp_avg_sq']);
  ob.loadSlots(saved, oa.stepCount);
  oa.step([g], 0.1);
  ob.step([g], 0.1);
  assert.deepEqual(Array.from(a[0]!.variable.dataSync()), Array.from(b[0]!.variable.dataSync()));
  assert.throws(
    () => new SGD(mk(), 0.9).loadSlots(new Map(), 3),
    /lacks optimizer slot optim\.sgd\.w\.momentum_buffer/,
  );
  assert.throws(() => oa.step([tf.tensor([1, 2])], 0.1), /gradient of w has shape \[2\], parameter \[3\]/);
});

test('weight decay covers exactly the spec §5 parameter set', () => {
  assert.equal(decaysWeight('backbone', 'block1.0.res_layer.1.weight', false), true);
  assert.equal(decaysWeight('backbone', 'input_layer.2.weight', false), true, 'PReLU slopes decay');
  assert.equal(decaysWeight('head', 'weight', false), true, 'CosFace matrix decays');
  assert.equal(decaysWeight('estimation', 'age_est.1.weight', false), true);
  assert.equal(decaysWeight('estimation', 'age_est.1.bias', false), false, 'biases excluded');
  assert.equal(decaysWeight('backbone', 'block1.0.res_layer.0.weight', true), false, 'batch norm excluded');
  assert.equal(decaysWeight('backbone', 'output_layer.4.bias', true), false);
  assert.equal(
    decaysWeight('da_discriminator', 'age_est.1.weight', false),
    false,
    'DA discriminator excluded',
  );
  assert.equal(decaysWeight('generator', 'conv.weight', false), false);
  assert.equal(decaysWeight('discriminator', 'main.0.weight', false), false);
});
