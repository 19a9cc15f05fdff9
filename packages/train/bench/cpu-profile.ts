// CPU time (not wall: the machine is shared) of the top kernels of one step: profile.ts with process.cpuUsage.
import { initBackend } from '@mtlface/backend';
import { Trainer } from '../src/index.js';
import { loadConfig } from '../src/config.js';
import { randomBatch } from '../test/helpers.js';

await initBackend({ backend: (process.env.BACKEND ?? 'auto') as 'auto', log: () => {} });
const [mode = 'joint', ...over] = process.argv.slice(2);
const cfg = loadConfig('configs/demo.yaml', [`mode=${mode}`, ...over]);
const size = cfg.model.input_size;
const t = new Trainer(cfg, { numClasses: 100, group: null });
await t.step(randomBatch(cfg.data.batch_size, size, 100, 0), 0);
const c0 = process.cpuUsage();
const w0 = performance.now();
const r = await t.step(randomBatch(cfg.data.batch_size, size, 100, 1), 1);
const c = process.cpuUsage(c0);
console.log(
  `${mode} ${over.join(' ')}: cpu ${((c.user + c.system) / 1000).toFixed(0)} ms, wall ${(performance.now() - w0).toFixed(0)} ms, compute ${r.timings.computeMs.toFixed(0)} ms, optimizer ${r.timings.optimizerMs.toFixed(0)} ms`,
);
