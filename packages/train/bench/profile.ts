// Which kernels dominate a training step on the active backend:
//   node scripts/run-ts.mjs packages/train/bench/profile.ts [mode] [size] [key=value config overrides...]
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { Trainer } from '../src/index.js';
import { loadConfig } from '../src/config.js';
import { randomBatch } from '../test/helpers.js';

await initBackend({ backend: (process.env.BACKEND ?? 'auto') as 'auto' });
const mode = process.argv[2] ?? 'joint';
const size = Number(process.argv[3] ?? 32);
const cfg = loadConfig('configs/demo.yaml', [
  `model.input_size=${size}`,
  `mode=${mode}`,
  ...process.argv.slice(4),
]);
const t = new Trainer(cfg, { numClasses: 100, group: null });
await t.step(randomBatch(cfg.data.batch_size, size, 100, 0), 0);
const byKernel = new Map<string, { ms: number; n: number }>();
const start = performance.now();
const info = await tf.profile(async () => {
  await t.step(randomBatch(cfg.data.batch_size, size, 100, 1), 1);
});
const wall = performance.now() - start;
for (const k of info.kernels) {
  const e = byKernel.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
  e.n += 1;
  byKernel.set(k.name, e);
}
const rows = [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 30);
console.log(`step wall ${wall.toFixed(0)} ms, kernels ${info.kernels.length}`);
for (const [name, e] of rows)
  console.log(name.padEnd(28), e.ms.toFixed(1).padStart(10), String(e.n).padStart(6));
