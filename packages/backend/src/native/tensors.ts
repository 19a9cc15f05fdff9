import type {
  KernelBackend,
  KernelConfig,
  KernelFunc,
  NamedAttrMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/**
 * The float32 values behind a tensor of the cpu-style backend: no copy, except
 * for a float32 tensor that shares an int32/bool buffer (the cpu backend's Cast
 * to float32 keeps the source array), which is converted.
 */
export function f32(backend: MathBackendCPU, t: TensorInfo): Float32Array {
  const v = backend.data.get(t.dataId)?.values;
  if (v instanceof Float32Array) return v;
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Float32Array.from(v as Int32Array);
  throw new Error(
    `native backend: no numeric values for a tensor of shape [${t.shape.join(',')}] (${t.dtype})`,
  );
}

export function outputOf(backend: MathBackendCPU, shape: number[], values: Float32Array): TensorInfo {
  return backend.makeTensorInfo(shape, 'float32', values);
}

/** tfjs's fused activations, run with the given (cpu) kernels; returns a new tensor. */
export function applyActivation(
  kernels: Map<string, KernelConfig>,
  backend: KernelBackend,
  x: TensorInfo,
  activation: string,
  preluWeights: TensorInfo | undefined,
  leakyreluAlpha: number | undefined,
): TensorInfo {
  const run = (name: string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown> = {}) => {
    const k = kernels.get(name);
    if (!k) throw new Error(`native backend: no ${name} kernel for activation ${activation}`);
    return k.kernelFunc({ inputs, backend, attrs: attrs as NamedAttrMap }) as TensorInfo;
  };
  switch (activation) {
    case 'linear':
      return run('Identity', { x });
    case 'relu':
      return run('Relu', { x });
    case 'relu6':
      return run('Relu6', { x });
    case 'elu':
      return run('Elu', { x });
    case 'sigmoid':
      return run('Sigmoid', { x });
    case 'prelu':
      if (!preluWeights) throw new Error('native backend: prelu activation without preluActivationWeights');
      return run('Prelu', { x, alpha: preluWeights });
    case 'leakyrelu':
      return run('LeakyRelu', { x }, { alpha: leakyreluAlpha });
    default:
      throw new Error(`native backend: activation ${activation} is not implemented`);
  }
}

/** The cpu backend's kernel that a native kernel falls back on (inputs it does not take). */
export function fallbackOf(fallback: Map<string, KernelConfig>, name: string): KernelFunc {
  const k = fallback.get(name);
  if (!k) throw new Error(`native backend: the cpu backend has no ${name} kernel to fall back on`);
  return k.kernelFunc;
}
