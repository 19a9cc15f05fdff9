import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { Trainer } from '../src/index.js';
import { loadConfig } from '../src/config.js';
import { randomBatch } from '../test/helpers.js';
console.log(await initBackend({ backend: (process.env.BACKEND ?? 'auto') as 'auto' }));
const size = Number(process.argv[2] ?? 32);
const cfg = loadConfig('/work/main/configs/demo.yaml', [`model.input_size=${size}`]);
const t = new Trainer(cfg, { numClasses: 100, group: null });
for (let i = 0; i < 4; i++) {
  const b = randomBatch(cfg.data.batch_size, size, 100, i);
  const s = performance.now();
  const r = await t.step(b, i);
  console.log(
    i,
    (performance.now() - s).toFixed(0),
    'ms',
    JSON.stringify(r.losses),
    JSON.stringify(r.timings),
    tf.memory().numTensors,
  );
}
