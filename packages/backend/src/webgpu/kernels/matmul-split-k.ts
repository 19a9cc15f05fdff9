import type { KernelBackend, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { free, ownCaller, type WebgpuKernels } from '../own.js';

/** The inner size from which tfjs-backend-webgpu picks its split-K program (batch 1, few output tiles). */
export const SPLIT_K_MIN_INNER = 2000;

/**
 * BatchMatMul / _FusedMatMul with B transposed beforehand where tfjs-backend-webgpu could take its
 * split-K program: with transposeB that program's result is wrong (relative error 1.3 measured
 * for [8,4096]·[64,4096]ᵀ on lavapipe; right without transposeB). A Linear layer is x·Wᵀ, so the
 * ir50 embedding layer (25088 → 512) at up to 8 images per device is such a product. Elsewhere
 * webgpu's own kernel runs unchanged.
 */
export function splitKSafeMatMul(own: WebgpuKernels, name: 'BatchMatMul' | '_FusedMatMul'): KernelFunc {
  const call = ownCaller(own);
  return ({ inputs, backend: kb, attrs }) => {
    const backend = kb as KernelBackend;
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const inner = transposeA ? a.shape[a.shape.length - 2]! : a.shape[a.shape.length - 1]!;
    const batch = (t: TensorInfo) => t.shape.slice(0, -2).reduce((p, d) => p * d, 1);
    if (!transposeB || inner < SPLIT_K_MIN_INNER || Math.max(batch(a), batch(b)) !== 1)
      return call(backend, name, inputs, attrs);
    const perm = b.shape.map((_, i) => i);
    [perm[perm.length - 2], perm[perm.length - 1]] = [perm.length - 1, perm.length - 2];
    const bt = call(backend, 'Transpose', { x: b }, { perm });
    const out = call(backend, name, { ...inputs, b: bt }, { ...attrs, transposeB: false });
    free(backend, bt);
    return out;
  };
}
