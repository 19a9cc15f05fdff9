/**
 * Model benchmark: forward (eval) and forward+backward (train, gradients of every parameter)
 * milliseconds per image, for the demo backbone and ir50 at 112, on the active tfjs backend.
 *
 *   npm run bench:model -- [--backend auto|native|wasm|cpu] [--models demo,ir50] [--min-seconds 5]
 *                          [--max-iters 20] [--json]
 *
 * Each row runs one warm-up iteration, then iterations until --min-seconds have passed (at least
 * one, at most --max-iters) and reports the median. The pure-JS cpu backend is very slow at
 * convolution gradients: an ir50 row there is a single measured iteration of batch 2.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendChoice } from '@mtlface/backend';
import { buildBackbone, type BackboneOptions } from '../src/index.js';

interface Case {
  name: string;
  options: BackboneOptions;
  batch: number;
}

const CASES: Record<string, Case> = {
  demo: { name: 'demo@64', options: { arch: 'demo', inputSize: 64 }, batch: 16 },
  'ir-tiny': { name: 'ir-tiny@112', options: { arch: 'ir-tiny', inputSize: 112 }, batch: 4 },
  ir50: { name: 'ir50@112', options: { arch: 'ir50', inputSize: 112 }, batch: 2 },
};

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const json = process.argv.includes('--json');
const minSeconds = Number(arg('--min-seconds', '5'));
const maxIters = Number(arg('--max-iters', '20'));
const backend = await initBackend({
  backend: arg('--backend', 'auto') as BackendChoice,
  log: (l) => console.error(l),
});

async function timeIt(fn: () => Promise<void>): Promise<{ median: number; iters: number }> {
  await fn(); // warm-up: kernel setup, first allocations
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxIters && (times.length === 0 || performance.now() - start < minSeconds * 1000)) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)]!, iters: times.length };
}

const rows: Array<Record<string, string | number>> = [];
for (const key of arg('--models', 'demo,ir50').split(',')) {
  const c = CASES[key];
  if (!c) throw new Error(`--models: unknown '${key}' (known: ${Object.keys(CASES).join(', ')})`);
  const model = buildBackbone(c.options);
  const size = model.config.inputSize;
  const x = tf.randomUniform([c.batch, size, size, 3], -1, 1) as tf.Tensor4D;
  const params = model.parameters();

  model.eval();
  const fwd = await timeIt(async () => {
    const e = model.embed(x);
    await e.data();
    e.dispose();
  });
  model.train();
  const before = tf.memory().numTensors;
  const bwd = await timeIt(async () => {
    const { value, grads } = tf.variableGrads(() => tf.sum(model.forward(x).embedding) as tf.Scalar, params);
    await Promise.all(Object.values(grads).map((g) => g.data()));
    value.dispose();
    tf.dispose(Object.values(grads));
  });
  if (tf.memory().numTensors !== before) throw new Error(`${c.name}: tensors leaked during forward+backward`);
  rows.push({
    model: c.name,
    backend: backend.name,
    batch: c.batch,
    params: model.numParameters(),
    forward_ms_per_image: +(fwd.median / c.batch).toFixed(2),
    forward_backward_ms_per_image: +(bwd.median / c.batch).toFixed(2),
    forward_iters: fwd.iters,
    forward_backward_iters: bwd.iters,
  });
  x.dispose();
  model.dispose();
  if (json) console.log(JSON.stringify(rows[rows.length - 1]));
}

if (!json) {
  const cols = Object.keys(rows[0]!);
  const width = cols.map((k) => Math.max(k.length, ...rows.map((r) => String(r[k]).length)));
  console.log(cols.map((k, i) => k.padEnd(width[i]!)).join('  '));
  for (const r of rows) console.log(cols.map((k, i) => String(r[k]).padEnd(width[i]!)).join('  '));
}
