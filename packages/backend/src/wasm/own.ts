import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** tfjs-backend-wasm's own kernels by name, captured before `registerWasmFixes` replaces some of them. */
export type WasmKernels = Map<string, KernelConfig>;

/** Runs one of wasm's own kernels; a fix builds on these, never on another fix's registration. */
export type CallOwn = (
  backend: BackendWasm,
  name: string,
  inputs: unknown,
  attrs?: Record<string, unknown>,
) => TensorInfo;

export function ownCaller(own: WasmKernels): CallOwn {
  return (backend, name, inputs, attrs = {}) => {
    const k = own.get(name);
    if (!k) throw new Error(`wasm backend has no ${name} kernel`);
    return k.kernelFunc({ inputs: inputs as never, backend, attrs: attrs as NamedAttrMap }) as TensorInfo;
  };
}

/** Frees intermediates a fix allocated on the wasm heap. */
export function free(backend: BackendWasm, ...ts: TensorInfo[]): void {
  for (const t of ts) backend.disposeData(t.dataId);
}
