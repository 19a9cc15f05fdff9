import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { loadDnnlAddon } from './addon.js';
import { NativeBackendCPU } from './pool.js';
import { convKernels } from './conv.js';
import { matMulKernels } from './matmul.js';
import { binaryKernels, compareKernels, reduceKernels, unaryKernels } from './elementwise.js';
import { layoutKernels } from './layout.js';
import { trainingKernels } from './training.js';

export const NATIVE_BACKEND = 'native';

/** Kernel names the native backend runs in oneDNN (filled by registration; the rest are cpu's). */
const nativeKernels: string[] = [];

/** The kernels registration replaced with the addon's (empty until `registerNativeBackend` succeeds). */
export function nativeKernelNames(): readonly string[] {
  return nativeKernels;
}

let registered: { ok: true } | { ok: false; reason: string } | undefined;

/**
 * Registers the `native` backend: tfjs's cpu backend (same tensor storage, every
 * cpu kernel) with the heavy kernels replaced by the oneDNN addon. Idempotent;
 * returns why it cannot be registered when the addon is unavailable.
 */
export function registerNativeBackend(): { ok: true } | { ok: false; reason: string } {
  if (registered) return registered;
  const load = loadDnnlAddon();
  if (!load.addon) {
    registered = { ok: false, reason: load.reason };
    return registered;
  }
  const cpuKernels = new Map<string, KernelConfig>();
  for (const k of tf.getKernelsForBackend('cpu')) cpuKernels.set(k.kernelName, k);
  const kernels = new Map<string, KernelConfig>();
  for (const [name, k] of cpuKernels) kernels.set(name, { ...k, backendName: NATIVE_BACKEND });
  for (const k of [
    ...convKernels(load.addon, cpuKernels),
    ...matMulKernels(load.addon, cpuKernels),
    ...binaryKernels(load.addon, cpuKernels),
    ...reduceKernels(load.addon, cpuKernels),
    ...compareKernels(load.addon, cpuKernels),
    ...layoutKernels(load.addon, cpuKernels),
    ...unaryKernels(load.addon, cpuKernels),
    // MTL_NATIVE_TRAINING_KERNELS=0: the composite ops instead (A/B benchmarks)
    ...(process.env.MTL_NATIVE_TRAINING_KERNELS === '0' ? [] : trainingKernels(load.addon)),
  ]) {
    kernels.set(k.kernelName, k);
    nativeKernels.push(k.kernelName);
  }
  for (const k of kernels.values()) tf.registerKernel(k);
  tf.registerBackend(NATIVE_BACKEND, () => new NativeBackendCPU(), 0);
  registered = { ok: true };
  return registered;
}
