import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { DnnlAddon } from './addon.js';
import { allocOutput } from './pool.js';
import { applyActivation, f32, fallbackOf, outputOf } from './tensors.js';

const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/**
 * a·b over oneDNN's sgemm for the batch layouts the cpu kernel supports with
 * a plain stride (equal batches, or one side's batch of 1 broadcast); null otherwise.
 */
export function nativeMatMul(
  addon: DnnlAddon,
  backend: MathBackendCPU,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): TensorInfo | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return null;
  const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (k !== kb) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = size(outerA);
  const batchB = size(outerB);
  const batch = Math.max(batchA, batchB);
  if (batchA !== batch && batchA !== 1) return null;
  if (batchB !== batch && batchB !== 1) return null;
  const outer = outerA.length >= outerB.length ? outerA : outerB;
  if (size(outer) !== batch) return null;
  const c = allocOutput(backend, batch * m * n);
  if (m * n * k > 0) {
    const params = Int32Array.of(
      batch,
      m,
      n,
      k,
      transposeA ? 1 : 0,
      transposeB ? 1 : 0,
      batchA === 1 ? 0 : m * k,
      batchB === 1 ? 0 : k * n,
    );
    addon.matmul(f32(backend, a), f32(backend, b), c, params);
  } else {
    c.fill(0); // pooled storage is not zeroed
  }
  return outputOf(backend, [...outer, m, n], c);
}

/** BatchMatMul and _FusedMatMul (the product natively, bias and activation by the native backend's own kernels). */
export function matMulKernels(addon: DnnlAddon, fallback: Map<string, KernelConfig>): KernelConfig[] {
  const cpuBatchMatMul = fallbackOf(fallback, 'BatchMatMul');
  const cpuFused = fallbackOf(fallback, '_FusedMatMul');

  const batchMatMul: KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    return (
      nativeMatMul(addon, args.backend as MathBackendCPU, a, b, transposeA, transposeB) ??
      cpuBatchMatMul(args)
    );
  };

  const fusedMatMul: KernelFunc = (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
    const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    const backend = args.backend as MathBackendCPU;
    let out = nativeMatMul(addon, backend, a!, b!, transposeA, transposeB);
    if (!out) return cpuFused(args);
    if (bias) {
      const withBias = fallback
        .get('Add')!
        .kernelFunc({ inputs: { a: out, b: bias }, backend }) as TensorInfo;
      backend.disposeIntermediateTensorInfo(out);
      out = withBias;
    }
    if (activation && activation !== 'linear') {
      const act = applyActivation(fallback, backend, out, activation, preluActivationWeights, leakyreluAlpha);
      backend.disposeIntermediateTensorInfo(out);
      out = act;
    }
    return out;
  };

  return [
    { kernelName: 'BatchMatMul', backendName: 'native', kernelFunc: batchMatMul },
    { kernelName: '_FusedMatMul', backendName: 'native', kernelFunc: fusedMatMul },
  ];
}
