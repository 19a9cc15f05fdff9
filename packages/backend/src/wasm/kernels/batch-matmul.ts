import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { free, ownCaller } from '../own.js';
import type { WasmKernels } from '../own.js';

/**
 * BatchMatMul that transposes `a` explicitly instead of taking
 * tfjs-backend-wasm's own `transposeA` path, which is slow (matMul's gradient
 * with respect to `b` takes it).
 */
export function batchMatMul(own: WasmKernels): KernelFunc {
  const call = ownCaller(own);
  const transposeLast2 = (backend: BackendWasm, t: TensorInfo) => {
    const perm = t.shape.map((_, i) => i);
    const r = perm.length;
    [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
    return call(backend, 'Transpose', { x: t }, { perm });
  };
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = args.attrs as { transposeA: boolean; transposeB: boolean };
    if (!attrs.transposeA) return call(backend, 'BatchMatMul', args.inputs, attrs);
    const aT = transposeLast2(backend, a);
    const out = call(backend, 'BatchMatMul', { a: aT, b }, { ...attrs, transposeA: false });
    free(backend, aT);
    return out;
  };
}
