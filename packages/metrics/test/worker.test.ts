import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createWorkerMetrics,
  instrumentAllReduce,
  layOutPhases,
  rankTimelineFile,
  STEP_PHASES,
  WORKER_METRICS,
} from '@mtlface/metrics';
import { find, parseExposition, promtoolCheck } from './helpers.js';

test('every metric in the worker table is registered under its name with a rank label', async () => {
  const m = createWorkerMetrics({ rank: 3, timeline: null });
  m.loss('fr', 'id', 1.5);
  m.validation('lfw', 'accuracy', 0.9);
  m.learningRate(0.1);
  const families = new Map((await m.registry.getMetricsAsJSON()).map((f) => [f.name, f]));
  for (const d of Object.values(WORKER_METRICS)) {
    const f = families.get(d.name);
    assert.ok(f, `${d.name} registered`);
    assert.equal(String(f.type), d.type, d.name);
    assert.ok(d.name.startsWith('mtl_'), d.name);
    assert.equal(d.type === 'counter', d.name.endsWith('_total'), `${d.name}: _total iff counter`);
  }
  const samples = parseExposition(await m.registry.metrics());
  assert.ok(samples.length > 0);
  for (const s of samples) assert.equal(s.labels.rank, '3', `${s.name} carries rank="3"`);
  await m.close();
});

test('the training-loop API lands in the right series', async () => {
  const m = createWorkerMetrics({ rank: 0, timeline: null, defaultMetrics: false });
  m.loss('fr', 'id', 2);
  m.loss('fr', 'id', 1.25);
  m.loss('fas', 'd_adv', 0.5);
  m.learningRate(0.01, 'fas');
  m.lossScale(1024);
  m.lossScale(512, 'fas');
  m.skippedSteps();
  m.skippedSteps(2);
  m.skippedSteps(1, 'fas');
  m.iterations(1, 41);
  m.iterations(1, 42);
  m.images(64);
  m.images(64);
  for (const phase of STEP_PHASES) m.stepPhase(phase, 0.02);
  m.stepPhase('compute', 0.2);
  m.step(0.3);
  m.allReduce(25e6, 0.05);
  m.validation('calfw', 'accuracy', 0.875);
  m.checkpoint(1.5);
  const s = parseExposition(await m.registry.metrics());
  const v = (name: string, labels: Record<string, string> = {}) => {
    const hits = find(s, name, labels);
    assert.equal(hits.length, 1, `one ${name} ${JSON.stringify(labels)}`);
    return hits[0]!.value;
  };
  assert.equal(v('mtl_loss', { task: 'fr', name: 'id' }), 1.25);
  assert.equal(v('mtl_loss', { task: 'fas', name: 'd_adv' }), 0.5);
  assert.equal(v('mtl_learning_rate', { task: 'fas' }), 0.01);
  assert.equal(v('mtl_loss_scale', { task: 'fr' }), 1024);
  assert.equal(v('mtl_loss_scale', { task: 'fas' }), 512);
  assert.equal(v('mtl_skipped_steps_total', { task: 'fr' }), 3);
  assert.equal(v('mtl_skipped_steps_total', { task: 'fas' }), 1);
  assert.equal(v('mtl_iterations_total'), 2);
  assert.equal(v('mtl_iteration'), 42);
  assert.equal(v('mtl_images_total'), 128);
  assert.equal(v('mtl_step_phase_seconds_count', { phase: 'compute' }), 2);
  assert.ok(Math.abs(v('mtl_step_phase_seconds_sum', { phase: 'compute' }) - 0.22) < 1e-9);
  assert.equal(v('mtl_step_phase_seconds_bucket', { phase: 'compute', le: '0.25' }), 2);
  assert.equal(v('mtl_step_phase_seconds_bucket', { phase: 'compute', le: '0.1' }), 1);
  assert.equal(v('mtl_step_seconds_count'), 1);
  assert.equal(v('mtl_allreduce_bytes_sum'), 25e6);
  assert.equal(v('mtl_allreduce_bytes_bucket', { le: String(1024 * 4 ** 8) }), 1); // 64 MiB
  assert.equal(v('mtl_allreduce_bytes_bucket', { le: String(1024 * 4 ** 7) }), 0); // 16 MiB
  assert.equal(v('mtl_validation_score', { set: 'calfw', metric: 'accuracy' }), 0.875);
  assert.equal(v('mtl_checkpoint_writes_total'), 1);
  assert.equal(v('mtl_checkpoint_seconds_sum'), 1.5);
});

test('bad values are refused with a message naming the quantity', () => {
  const m = createWorkerMetrics({ rank: 0, timeline: null, defaultMetrics: false });
  assert.throws(() => m.images(-1), /images must be >= 0/);
  assert.throws(() => m.stepPhase('compute', Number.NaN), /compute seconds must be a finite number/);
  assert.throws(() => m.lossScale(Infinity), /loss scale/);
  assert.throws(() => createWorkerMetrics({ rank: -1 }), /rank must be an integer >= 0/);
  // A diverging loss is data, not a bug: it is exported.
  assert.doesNotThrow(() => m.loss('fr', 'id', Number.NaN));
});

test('a worker registry with defaults passes promtool check metrics', async () => {
  const m = createWorkerMetrics({ rank: 1, timeline: null });
  m.loss('fr', 'id', 1);
  m.stepPhase('data_wait', 0.001);
  const r = promtoolCheck(await m.registry.metrics());
  assert.equal(r.status, 0, r.output);
  await m.close();
});

test('with a timeline file, phases, steps and collectives become trace events on the rank track', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-tl-'));
  try {
    const file = join(dir, 'trace.json');
    const m = createWorkerMetrics({ rank: 2, timeline: file, defaultMetrics: false });
    m.stepPhase('compute', 0.01);
    m.allReduce(1024, 0.002, { bucket: 0 });
    m.step(0.015, 7);
    await m.close();
    const events = readFileSync(rankTimelineFile(file, 2), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const spans = events.filter((e) => e.ph === 'X');
    const byName = Object.fromEntries(spans.map((e) => [e.name, e]));
    assert.deepEqual(Object.keys(byName).sort(), ['allreduce', 'compute', 'step 7']);
    assert.equal(byName.compute.dur, 10000);
    assert.equal(byName['step 7'].dur, 15000);
    assert.ok(spans.every((e) => e.pid === 2));
    assert.deepEqual(byName.allreduce.args, { bytes: 1024, bucket: 0 });
    assert.notEqual(byName.compute.tid, byName.allreduce.tid, 'compute and collectives on different lanes');
    assert.ok(events.some((e) => e.ph === 'M' && e.name === 'process_name' && e.args.name === 'rank 2'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('recordIteration maps a trainer report onto the series and lays phases out inside the step', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-tl-'));
  try {
    const file = join(dir, 'trace.json');
    const m = createWorkerMetrics({ rank: 1, timeline: file, defaultMetrics: false });
    m.recordIteration({
      iteration: 99,
      images: 64,
      stepSeconds: 1,
      dataWaitSeconds: 0.1,
      losses: { fr_id: 7.5, fr_da: 0.25, fas_g: 0.75, total: 9 },
      lr: { fr: 0.05, fas: undefined },
      scale: { fr: 256, fas: 1024 },
      skipped: ['fas_d', 'fas_g'],
      timings: { computeMs: 600, copyOutMs: 50, exposedCommMs: 150, optimizerMs: 100 },
    });
    const s = parseExposition(await m.registry.metrics());
    const v = (name: string, labels: Record<string, string> = {}) =>
      find(s, name, labels).map((x) => x.value);
    assert.deepEqual(v('mtl_loss', { task: 'fr', name: 'id' }), [7.5]);
    assert.deepEqual(v('mtl_loss', { task: 'fr', name: 'da' }), [0.25]);
    assert.deepEqual(v('mtl_loss', { task: 'fas', name: 'g' }), [0.75]);
    assert.deepEqual(v('mtl_loss', { task: 'all', name: 'total' }), [9]);
    assert.deepEqual(v('mtl_learning_rate'), [0.05]);
    assert.deepEqual(v('mtl_loss_scale', { task: 'fas' }), [1024]);
    assert.deepEqual(v('mtl_skipped_steps_total', { task: 'fas' }), [2]);
    assert.deepEqual(v('mtl_skipped_steps_total', { task: 'fr' }), [0]);
    assert.deepEqual(v('mtl_images_total'), [64]);
    assert.deepEqual(v('mtl_iteration'), [99]);
    assert.deepEqual(v('mtl_step_seconds_sum'), [1]);
    assert.deepEqual(v('mtl_step_phase_seconds_sum', { phase: 'compute' }), [0.6]);
    assert.deepEqual(v('mtl_step_phase_seconds_sum', { phase: 'data_wait' }), [0.1]);
    await m.close();
    const spans = readFileSync(rankTimelineFile(file, 1), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.ph === 'X');
    const step = spans.find((e) => e.name === 'step 99');
    const phases = spans.filter((e) => e.cat !== 'step');
    assert.deepEqual(
      phases.map((e) => [e.name, e.ts - step.ts, e.dur]),
      [
        ['data_wait', 0, 100_000],
        ['compute', 100_000, 600_000],
        ['grad_copy', 700_000, 50_000],
        ['allreduce', 750_000, 150_000],
        ['optimizer', 900_000, 100_000],
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('instrumentAllReduce measures every all-reduce and passes everything else through', async () => {
  const m = createWorkerMetrics({ rank: 0, timeline: null, defaultMetrics: false });
  class Group {
    #calls = 0;
    readonly worldSize = 4;
    async allReduce(buf: Float32Array, _opts?: { op?: string; wire?: string }) {
      this.#calls++;
      buf.fill(1);
      await new Promise((r) => setTimeout(r, 20));
      return buf;
    }
    calls() {
      return this.#calls;
    }
  }
  const g = instrumentAllReduce(new Group(), m);
  const buf = new Float32Array(1000);
  assert.equal(await g.allReduce(buf, { op: 'mean', wire: 'f16' }), buf);
  await g.allReduce(new Float32Array(10));
  assert.equal(buf[999], 1);
  assert.equal(g.calls(), 2, 'methods using private fields still work');
  assert.equal(g.worldSize, 4);
  const s = parseExposition(await m.registry.metrics());
  assert.equal(find(s, 'mtl_allreduce_bytes_sum')[0]!.value, 4040);
  assert.equal(find(s, 'mtl_allreduce_seconds_count')[0]!.value, 2);
  assert.ok(find(s, 'mtl_allreduce_seconds_sum')[0]!.value >= 0.035);
});

test('layOutPhases keeps phases reported as they ended, and lays out after-the-fact totals back to back', () => {
  const live = [
    { phase: 'data_wait' as const, seconds: 0.01, startUs: 1_000 },
    { phase: 'compute' as const, seconds: 0.1, startUs: 11_000 },
    { phase: 'optimizer' as const, seconds: 0.005, startUs: 111_020 },
  ];
  assert.deepEqual(layOutPhases(live, 0), live);
  // The same totals reported together at the end of the step: all would end at 200 ms.
  const late = live.map((p) => ({ ...p, startUs: 200_000 - p.seconds * 1e6 }));
  assert.deepEqual(
    layOutPhases(late, 50_000).map((p) => [p.phase, p.startUs]),
    [
      ['data_wait', 50_000],
      ['compute', 60_000],
      ['optimizer', 160_000],
    ],
  );
});
