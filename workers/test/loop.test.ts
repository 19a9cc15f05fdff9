// The loop through its seams, without networks: the order of one iteration's parts, the 1-based
// numbering every part sees, when validation and checkpoints happen, the leak warning, and the
// fault-injection seam's parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { Batch } from '@mtlface/data';
import type { IterationReport } from '@mtlface/train';
import { trainLoop, type LoopParts } from '../src/train/loop.js';
import { faultIteration } from '../src/train/fault.js';

await tf.setBackend('cpu');

function report(iteration: number): IterationReport {
  return {
    iteration,
    losses: { fr_id: 10 - iteration },
    logits: {},
    lr: { fr: 0.1 },
    skipped: iteration === 2 ? ['fas_g'] : [],
    scale: { fr: 1024 },
    timings: {
      computeMs: 1,
      copyOutMs: 0,
      exposedCommMs: 0,
      peerWaitMs: 0,
      optimizerMs: 0,
      bytes: 0,
      syncs: {},
    },
  };
}

function parts(events: string[], over: Partial<LoopParts> = {}): LoopParts {
  const batch = { n: 4 } as Batch;
  return {
    trainer: {
      step: async (_b, it) => (events.push(`step ${it}`), report(it)),
      optimizers: () => [],
    },
    loader: { next: async () => (events.push('data'), batch) },
    lossesLog: { append: async (r) => void events.push(`log ${r.iteration}`) },
    stepsLog: null,
    metrics: { recordIteration: (s) => void events.push(`metrics ${s.iteration} images ${s.images}`) },
    progress: { update: (done) => void events.push(`progress ${done}`) },
    validator: { due: (done) => done % 2 === 0, run: async (done) => void events.push(`validate ${done}`) },
    saver: {
      due: (done, end) => done % 3 === 0 || done === end,
      save: async (done) => void events.push(`save ${done}`),
    },
    start: 0,
    end: 4,
    rank: 0,
    log: (l) => void events.push(`log: ${l}`),
    faultAt: null,
    onIteration: (r) => void events.push(`hook ${r.iteration}`),
    ...over,
  };
}

test('one iteration in order: data → step → losses log → metrics → hook → progress → validation → checkpoint', async () => {
  const events: string[] = [];
  const last = await trainLoop(parts(events));
  assert.equal(last?.iteration, 3);
  const it = (k: number, extra: string[] = []) => [
    'data',
    `step ${k}`,
    `log ${k}`,
    `metrics ${k + 1} images 4`,
    ...(k === 2 ? ['log: iteration 3: overflow in fas_g: step skipped, loss scale now {"fr":1024}'] : []),
    `hook ${k}`,
    `progress ${k + 1}`,
    ...extra,
  ];
  assert.deepEqual(events, [
    ...it(0),
    ...it(1, ['validate 2']),
    ...it(2, ['save 3']),
    ...it(3, ['validate 4', 'save 4']),
  ]);
});

test('a resumed loop runs start..end−1 only, and an empty range returns null', async () => {
  const events: string[] = [];
  await trainLoop(parts(events, { start: 2, end: 4, onIteration: undefined }));
  assert.deepEqual(
    events.filter((e) => e.startsWith('step')),
    ['step 2', 'step 3'],
  );
  assert.equal(await trainLoop(parts([], { start: 4, end: 4 })), null);
});

test('a step that leaves a tensor behind is reported with the iteration', async () => {
  const events: string[] = [];
  const kept: tf.Tensor[] = [];
  await trainLoop(
    parts(events, {
      end: 1,
      trainer: { step: async (_b, it) => (kept.push(tf.zeros([2])), report(it)), optimizers: () => [] },
    }),
  );
  assert.ok(events.some((e) => /warning: tensor count went from \d+ to \d+ in iteration 1 \(leak\)/.test(e)));
  tf.dispose(kept);
});

test('the fault seam: MTL_FAULT_EXIT_AT=<iteration>:<rank>, first attempt only', () => {
  assert.equal(faultIteration({ MTL_FAULT_EXIT_AT: '3:1' }, 1), 3);
  assert.equal(faultIteration({ MTL_FAULT_EXIT_AT: '3:1' }, 0), null);
  assert.equal(faultIteration({ MTL_FAULT_EXIT_AT: '3:1', MTL_RESTART_COUNT: '1' }, 1), null);
  assert.equal(faultIteration({}, 0), null);
  assert.equal(faultIteration({ MTL_FAULT_EXIT_AT: 'x:1' }, 1), null);
});
