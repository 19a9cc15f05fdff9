// Test utilities for comparing backends, exported as `@mtlface/backend/testing` so that the model
// package's backend tests use the same ones as this package's: seeded inputs, a leak-checked run on
// a named backend, and the relative difference the tolerances are stated in.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import {
  registerAllGradients,
  registerNativeBackend,
  registerWasmFixes,
  registerWebgpuBackend,
} from './index.js';

/** Registers everything the tests compare; fails loudly if the addon is missing (CI installs libdnnl-dev). */
export function setup(): void {
  registerAllGradients();
  registerWasmFixes();
  const r = registerNativeBackend();
  if (!r.ok) throw new Error(`native backend unavailable: ${r.reason}`);
}

/**
 * Loads the webgpu backend (Dawn on lavapipe in CI); fails loudly when it cannot, naming why
 * (scripts/install-system-deps.sh installs lavapipe).
 */
export async function setupWebgpu(): Promise<void> {
  const r = await registerWebgpuBackend();
  if (!r.ok) throw new Error(`webgpu backend unavailable: ${r.reason}`);
}

/** Deterministic uniform [-1, 1) values (mulberry32). */
export function randomValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1;
  }
  return out;
}

export interface Input {
  shape: number[];
  values: Float32Array;
}

export const input = (shape: number[], seed: number): Input => ({
  shape,
  values: randomValues(
    shape.reduce((a, b) => a * b, 1),
    seed,
  ),
});

/** Runs `f` on `backend` with fresh tensors for `inputs`; returns every output's values. Checks no tensor leaks. */
export async function runOn(
  backend: string,
  inputs: Input[],
  f: (...xs: tf.Tensor[]) => tf.Tensor[],
): Promise<Float32Array[]> {
  if (!(await tf.setBackend(backend))) throw new Error(`cannot set backend ${backend}`);
  const before = tf.memory().numTensors;
  const xs = inputs.map((i) => tf.tensor(i.values, i.shape));
  const outs = tf.tidy(() => f(...xs));
  // Asynchronous read-back: webgpu in Node has none that is synchronous.
  const values = await Promise.all(outs.map((o) => o.data() as Promise<Float32Array>));
  tf.dispose([...xs, ...outs]);
  const after = tf.memory().numTensors;
  if (after !== before) throw new Error(`${backend}: ${after - before} tensors leaked`);
  return values;
}

/** Largest |a-b| / (1 + |b|) over all elements, after checking lengths. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!));
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/**
 * max |a−b| over max |b| (at least `floor`): the error of a whole tensor relative to its largest value, as
 * summation-order rounding is. `maxRelDiff` is the per-element measure.
 */
export function relToMax(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-30): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let d = 0;
  let m = floor;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return Number.isNaN(d) ? Infinity : d / m;
}
