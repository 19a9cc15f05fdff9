// `node scripts/run-ts.mjs packages/train/bench/readback.ts [--backend webgpu] [--steps 2] [--rounds 3]
//  [--sync-reps 5] [--parts sync,step] [--set "key=value ..."]`: how gradients leave the backend, per-tensor against packed
// buckets (grad-sync.ts), on one worker, the two modes alternated round by round (ABAB…).
// 1. sync alone: the trainer's gradient shapes (every task), random gradients already computed on
//    the device (queue drained), GradientBucketer.sync timed: this is the read-back + upload cost.
// 2. whole steps: the same trainer and batch; its copy-out also waits for the backward still queued
//    on the device, so it is reported but the read-back's own share comes from 1.
// Prints one JSON line per mode and part with every round's spread.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { loadavg, cpus } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, parseBackendChoice } from '@mtlface/backend';
import { GradientBucketer, loadConfig, Trainer, type ReadBack } from '../src/index.js';
import { randomBatch } from '../test/helpers.js';

const { values: opt } = parseArgs({
  options: {
    backend: { type: 'string', default: 'webgpu' },
    steps: { type: 'string', default: '2' },
    'sync-reps': { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    set: { type: 'string', default: '' },
    parts: { type: 'string', default: 'sync,step' },
  },
});
const REPO = new URL('../../../', import.meta.url).pathname;
const cfg = loadConfig(join(REPO, 'configs/demo.yaml'), opt.set!.split(/\s+/).filter(Boolean));
const backend = await initBackend({ backend: parseBackendChoice(opt.backend!, '--backend'), log: () => {} });
const steps = Number(opt.steps);
const rounds = Number(opt.rounds);
const classes = 10;
const batch = randomBatch(cfg.data.batch_size, cfg.model.input_size, classes, 7, cfg.model.groups);
const load0 = loadavg()[0]!;

interface Row {
  stepMs: number;
  readBacks: number;
  uploads: number;
  copyOutMs: number;
  unscaleMs: number;
}
const modes: ReadBack[] = ['per-tensor', 'packed'];
const spread = (xs: number[]) => ({
  median: [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!,
  min: Math.min(...xs),
  max: Math.max(...xs),
});
const common = () => ({
  backend: backend.name,
  cpu: cpus()[0]?.model,
  loadavg_before: load0,
  loadavg_after: loadavg()[0],
  overrides: opt.set,
});

const parts = opt.parts!.split(',');
// Part 1: the sync alone.
if (parts.includes('sync')) {
  const t = new Trainer(cfg, { numClasses: classes, group: null });
  const tasks = [t.fr, t.fasD, t.fasG].flatMap((x) => (x ? [x.params.map((p) => p.variable.shape)] : []));
  t.dispose();
  const grads = tasks.map((shapes) => shapes.map((s, i) => tf.randomNormal(s, 0, 1, 'float32', i)));
  await Promise.all(grads.flat().map((g) => tf.sum(g).data())); // drain: every gradient computed
  const reps = Number(opt['sync-reps']);
  const bucket = { bucketBytes: cfg.bucket_mb * 2 ** 20, wire: 'f32' as const };
  const out = new Map<ReadBack, { ms: number[]; readBacks: number; uploads: number; buckets: number }>();
  for (let r = 0; r < rounds; r++) {
    for (const m of ['per-tensor', 'packed'] as const) {
      const bs = tasks.map((shapes) => new GradientBucketer(shapes, { ...bucket, readBack: m }));
      let ms = 0;
      let readBacks = 0;
      let uploads = 0;
      for (let k = 0; k < reps; k++) {
        for (let i = 0; i < bs.length; i++) {
          const t0 = performance.now();
          const res = await bs[i]!.sync(grads[i]!, null, 1);
          // The uploaded gradients are used (as the optimizer would) and waited for.
          // (A chain of adds: tfjs-backend-webgpu's AddN binds every input at once, past the
          // device's storage-buffer limit for a task's ~100 gradients.)
          await tf
            .tidy(() => res.grads!.reduce((acc: tf.Tensor, g) => tf.add(acc, tf.sum(g)), tf.scalar(0)))
            .data();
          ms += performance.now() - t0;
          readBacks += res.timings.readBacks;
          uploads += res.timings.uploads;
          res.grads!.forEach((g) => g.dispose());
        }
      }
      const o = out.get(m) ?? { ms: [], readBacks: readBacks / reps, uploads: uploads / reps, buckets: 0 };
      o.buckets = bs.reduce((a, b) => a + b.buckets.length, 0);
      o.ms.push(ms / reps);
      out.set(m, o);
      console.error(
        `sync round ${r + 1} ${m.padEnd(10)} ${(ms / reps).toFixed(1)} ms per step (${o.readBacks} read-backs)`,
      );
    }
  }
  grads.flat().forEach((g) => g.dispose());
  const values = tasks.reduce((a, shapes) => a + shapes.reduce((b, s) => b + tf.util.sizeFromShape(s), 0), 0);
  for (const [m, o] of out)
    console.log(
      JSON.stringify({
        part: 'sync',
        mode: m,
        ...common(),
        tensors: tasks.reduce((a, x) => a + x.length, 0),
        mib: (4 * values) / 2 ** 20,
        buckets: o.buckets,
        read_backs_per_step: o.readBacks,
        uploads_per_step: o.uploads,
        sync_ms: spread(o.ms),
      }),
    );
}

// Part 2: whole training steps.
if (!parts.includes('step')) process.exit(0);
const trainers = new Map(
  modes.map((m) => [m, new Trainer(cfg, { numClasses: classes, group: null, readBack: m })] as const),
);
const results = new Map<ReadBack, Row[]>(modes.map((m) => [m, []]));
let iteration = 0;
// The first step of each builds the optimizer slots and compiles the shaders: not measured.
for (const t of trainers.values()) await t.step(batch, iteration++);
for (let r = 0; r < rounds; r++) {
  for (const m of modes) {
    const t = trainers.get(m)!;
    const sum: Row = { stepMs: 0, readBacks: 0, uploads: 0, copyOutMs: 0, unscaleMs: 0 };
    for (let s = 0; s < steps; s++) {
      const t0 = performance.now();
      const rep = await t.step(batch, iteration++);
      sum.stepMs += performance.now() - t0;
      for (const x of Object.values(rep.timings.syncs)) {
        sum.readBacks += x.readBacks;
        sum.uploads += x.uploads;
        sum.copyOutMs += x.copyOutMs;
        sum.unscaleMs += x.unscaleMs;
      }
    }
    const row = Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, v / steps])) as unknown as Row;
    results.get(m)!.push(row);
    console.error(
      `round ${r + 1} ${m.padEnd(10)} step ${row.stepMs.toFixed(0).padStart(6)} ms  read-backs ${row.readBacks}  uploads ${row.uploads}  ` +
        `copy-out ${row.copyOutMs.toFixed(1)} ms (${((100 * row.copyOutMs) / row.stepMs).toFixed(1)}%)  ` +
        `upload+unscale ${row.unscaleMs.toFixed(1)} ms (${((100 * row.unscaleMs) / row.stepMs).toFixed(1)}%)`,
    );
  }
}
for (const t of trainers.values()) t.dispose();
for (const m of modes) {
  const rows = results.get(m)!;
  console.log(
    JSON.stringify({
      part: 'step',
      mode: m,
      ...common(),
      steps_per_round: steps,
      read_backs_per_step: rows[0]!.readBacks,
      uploads_per_step: rows[0]!.uploads,
      step_ms: spread(rows.map((x) => x.stepMs)),
      copy_out_ms: spread(rows.map((x) => x.copyOutMs)),
      upload_unscale_ms: spread(rows.map((x) => x.unscaleMs)),
    }),
  );
}
