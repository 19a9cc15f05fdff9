import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc } from '@tensorflow/tfjs-core';
import type { WasmKernels } from './own.js';
import { conv2DBackpropFilter } from './kernels/conv2d-backprop-filter.js';
import { batchMatMul } from './kernels/batch-matmul.js';
import { fusedMatMul } from './kernels/fused-matmul.js';
import { maxPoolGrad } from './kernels/max-pool-grad.js';
import { reduceF64 } from './kernels/sum-mean.js';

/** Each fix, by kernel name, built from wasm's own kernels (each file says why wasm's is wrong or missing). */
const WASM_FIXES: Record<string, (own: WasmKernels) => KernelFunc> = {
  Conv2DBackpropFilter: conv2DBackpropFilter,
  BatchMatMul: batchMatMul,
  _FusedMatMul: fusedMatMul,
  MaxPoolGrad: maxPoolGrad,
  Sum: (own) => reduceF64(own, 'Sum'),
  Mean: (own) => reduceF64(own, 'Mean'),
};

/** Kernels the wasm backend gets from us: added (filter gradient) or wrapped (slow or wrong paths). */
export const WASM_FIXED_KERNELS: readonly string[] = Object.keys(WASM_FIXES);

let done = false;

/**
 * Makes tfjs-backend-wasm train correctly by registering the kernels of
 * `WASM_FIXES` over wasm's own. Call after importing
 * '@tensorflow/tfjs-backend-wasm'; idempotent.
 */
export function registerWasmFixes(): void {
  if (done) return;
  const own: WasmKernels = new Map();
  for (const k of tf.getKernelsForBackend('wasm')) own.set(k.kernelName, k);
  if (own.size === 0) throw new Error('registerWasmFixes: import @tensorflow/tfjs-backend-wasm first');
  done = true;
  for (const [name, fix] of Object.entries(WASM_FIXES)) {
    const prev = own.get(name);
    if (prev) tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...prev, kernelName: name, backendName: 'wasm', kernelFunc: fix(own) });
  }
}
