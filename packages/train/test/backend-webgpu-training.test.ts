// A tiny joint (AIFR + FAS) training run on webgpu (lavapipe in CI) against the same run on native,
// with cpu against native as the float32 floor: two correct float32 backends that differ only in
// summation order drift apart by that much; webgpu must stay within a small multiple of it.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { relToMax, setup, setupWebgpu } from '@mtlface/backend/testing';
import { Trainer } from '../src/trainer.js';
import { randomBatch, tinyConfig } from './helpers.js';

setup();
before(setupWebgpu);

const CLASSES = 10;
const STEPS = 2;

interface Run {
  losses: Record<string, number>[];
  state: Map<string, Float32Array>;
}

type State = Map<string, { shape: number[]; dtype: tf.DataType; values: Float32Array | Int32Array }>;

async function snapshot(t: Trainer): Promise<State> {
  const out: State = new Map();
  for (const [k, v] of t.checkpointTensors())
    out.set(k, { shape: v.shape, dtype: v.dtype, values: (await v.data()) as Float32Array | Int32Array });
  return out;
}

/** STEPS iterations from `initial` on `backend`; checks that no step after the first leaves a tensor. */
async function train(backend: string, initial: State): Promise<Run> {
  assert.ok(await tf.setBackend(backend));
  const cfg = tinyConfig(['model.dropout=0']);
  const t = new Trainer(cfg, { numClasses: CLASSES, group: null });
  const loaded = new Map([...initial].map(([k, v]) => [k, tf.tensor(v.values, v.shape, v.dtype)]));
  t.loadState(loaded, null);
  tf.dispose([...loaded.values()]);
  const losses: Record<string, number>[] = [];
  let tensors = 0;
  for (let i = 0; i < STEPS; i++) {
    const r = await t.step(randomBatch(4, cfg.model.input_size, CLASSES, 500 + i, cfg.model.groups), i);
    assert.deepEqual(r.skipped, [], `${backend} step ${i}`);
    losses.push(r.losses);
    // the first step creates the optimizers' slots
    if (i > 0) assert.equal(tf.memory().numTensors, tensors, `${backend}: step ${i} leaked tensors`);
    tensors = tf.memory().numTensors;
  }
  const state = new Map<string, Float32Array>();
  for (const [k, v] of await snapshot(t)) if (v.dtype === 'float32') state.set(k, v.values as Float32Array);
  t.nets.dispose();
  return { losses, state };
}

/**
 * The weights compared: every conv, linear and norm weight. Not the biases, running statistics and
 * optimizer slots: most biases here feed a batch/instance norm, which removes them, so their
 * gradient is zero analytically and what Adam steps them by is rounding noise (cpu and native
 * already differ by O(1) relative there, as do the running means that include them).
 */
const compared = (name: string) => !name.startsWith('optim.') && /\.weight(_orig)?$/.test(name);

/** Worst over the compared tensors of max |a−b| / max |ref|, and over steps and losses of |Δ| / (1 + |ref|). */
function drift(a: Run, ref: Run): { worst: number; name: string; loss: number } {
  let global = 0;
  for (const v of ref.state.values()) for (const x of v) global = Math.max(global, Math.abs(x));
  let worst = 0;
  let name = '';
  for (const [k, r] of ref.state) {
    if (!compared(k)) continue;
    const d = relToMax(a.state.get(k)!, r, 1e-3 * global);
    if (d > worst) [worst, name] = [d, k];
  }
  let loss = 0;
  ref.losses.forEach((l, i) => {
    for (const [k, v] of Object.entries(l))
      loss = Math.max(loss, Math.abs(a.losses[i]![k]! - v) / (1 + Math.abs(v)));
  });
  return { worst, name, loss };
}

test(`a tiny joint training run (${STEPS} steps) on webgpu matches native within the float32 floor`, async (t) => {
  await tf.setBackend('native');
  const init = await snapshot(
    new Trainer(tinyConfig(['model.dropout=0']), { numClasses: CLASSES, group: null }),
  );
  const ms: Record<string, number> = {};
  const run = async (backend: string) => {
    const t0 = performance.now();
    const r = await train(backend, init);
    ms[backend] = performance.now() - t0;
    return r;
  };
  const native = await run('native');
  const cpu = await run('cpu');
  const webgpu = await run('webgpu');
  const floor = drift(cpu, native);
  const got = drift(webgpu, native);
  t.diagnostic(
    `cpu vs native (float32 floor): state ${floor.worst.toExponential(2)} (${floor.name}), losses ${floor.loss.toExponential(2)}`,
  );
  t.diagnostic(
    `webgpu vs native: state ${got.worst.toExponential(2)} (${got.name}), losses ${got.loss.toExponential(2)}`,
  );
  t.diagnostic(
    `run ms: ${Object.entries(ms)
      .map(([k, v]) => `${k} ${v.toFixed(0)}`)
      .join(', ')}`,
  );
  assert.ok(got.worst <= 1e-3, `webgpu state drift ${got.worst} (${got.name})`);
  assert.ok(got.loss <= 1e-4, `webgpu loss drift ${got.loss}`);
});
