import type { KernelBackend, KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

/** tfjs-backend-webgpu's own kernels by name, captured before `registerWebgpuFixes` replaces some of them. */
export type WebgpuKernels = Map<string, KernelConfig>;

/** Runs one of webgpu's own kernels; a fix builds on these, never on another fix's registration. */
export type CallOwn = (
  backend: KernelBackend,
  name: string,
  inputs: unknown,
  attrs?: Record<string, unknown>,
) => TensorInfo;

export function ownCaller(own: WebgpuKernels): CallOwn {
  return (backend, name, inputs, attrs = {}) => {
    const k = own.get(name);
    if (!k) throw new Error(`webgpu backend has no ${name} kernel`);
    return k.kernelFunc({ inputs: inputs as never, backend, attrs: attrs as NamedAttrMap }) as TensorInfo;
  };
}

/** Releases intermediates a fix allocated (a reshape shares its input's buffer and only drops a reference). */
export function free(backend: KernelBackend, ...ts: TensorInfo[]): void {
  for (const t of ts) backend.disposeData(t.dataId);
}
