import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { adapterLine, loadDawn } from './dawn.js';
import type { AdapterReport } from './dawn.js';

/** tfjs-backend-webgpu's own kernels by name, captured before `registerWebgpuFixes` replaces some. */
export type WebgpuKernels = Map<string, KernelConfig>;

/** Each fix, by kernel name, built from webgpu's own kernels (each file says why webgpu's is wrong or missing). */
const WEBGPU_FIXES: Record<string, (own: WebgpuKernels) => KernelFunc> = {};

/** Kernels the webgpu backend gets from us: added or wrapped. */
export const WEBGPU_FIXED_KERNELS: readonly string[] = Object.keys(WEBGPU_FIXES);

let fixed = false;

/** Registers `WEBGPU_FIXES` over tfjs-backend-webgpu's own kernels; idempotent. */
export function registerWebgpuFixes(): void {
  if (fixed) return;
  const own: WebgpuKernels = new Map();
  for (const k of tf.getKernelsForBackend('webgpu')) own.set(k.kernelName, k);
  if (own.size === 0) throw new Error('registerWebgpuFixes: tfjs-backend-webgpu is not loaded');
  fixed = true;
  for (const [name, fix] of Object.entries(WEBGPU_FIXES)) {
    const prev = own.get(name);
    if (prev) tf.unregisterKernel(name, 'webgpu');
    tf.registerKernel({ ...prev, kernelName: name, backendName: 'webgpu', kernelFunc: fix(own) });
  }
}

export type WebgpuLoad = { ok: true; adapter: AdapterReport; detail: string } | { ok: false; reason: string };

/**
 * Starts Dawn, imports tfjs-backend-webgpu (which registers backend `webgpu`
 * only once `navigator.gpu` exists) and registers our fixes. Every op runs on
 * the device (WEBGPU_CPU_FORWARD off): tfjs would otherwise compute small ops
 * whose inputs are still on the host with the cpu backend, so what the tests
 * check would not be what a large model runs.
 */
export async function registerWebgpuBackend(): Promise<WebgpuLoad> {
  const dawn = await loadDawn();
  if (!dawn.ok) return dawn;
  try {
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (err) {
    const code = (err as { code?: string }).code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    const why = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    return {
      ok: false,
      reason: missing
        ? '@tensorflow/tfjs-backend-webgpu is not installed (run `npm ci`)'
        : `@tensorflow/tfjs-backend-webgpu failed to load: ${why}`,
    };
  }
  if (tf.findBackendFactory('webgpu') === null)
    return { ok: false, reason: 'tfjs-backend-webgpu did not register (navigator.gpu was not seen)' };
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  registerWebgpuFixes();
  return { ok: true, adapter: dawn.adapter, detail: `Dawn, adapter ${adapterLine(dawn.adapter)}` };
}
