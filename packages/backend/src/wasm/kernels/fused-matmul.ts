import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { applyActivation } from '../../native/tensors.js';
import { free, ownCaller } from '../own.js';
import type { WasmKernels } from '../own.js';
import { batchMatMul } from './batch-matmul.js';

/**
 * _FusedMatMul composed from the fixed BatchMatMul, wasm's Add and the
 * activation: tfjs-backend-wasm's own drops rows with transposeB + bias +
 * activation (measured).
 */
export function fusedMatMul(own: WasmKernels): KernelFunc {
  const call = ownCaller(own);
  const matMul = batchMatMul(own);
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
    const attrs = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    let out = matMul({
      inputs: { a: a!, b: b! },
      backend,
      attrs: { transposeA: attrs.transposeA, transposeB: attrs.transposeB },
    }) as TensorInfo;
    if (bias) {
      const next = call(backend, 'Add', { a: out, b: bias });
      free(backend, out);
      out = next;
    }
    if (attrs.activation && attrs.activation !== 'linear') {
      const next = applyActivation(
        own,
        backend,
        out,
        attrs.activation,
        preluActivationWeights,
        attrs.leakyreluAlpha,
      );
      free(backend, out);
      out = next;
    }
    return out;
  };
}
