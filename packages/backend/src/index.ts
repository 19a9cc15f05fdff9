export {
  BACKEND_CHOICES,
  BACKEND_NAMES,
  cpuThreads,
  gpuPinning,
  initBackend,
  listBackends,
  parseBackendChoice,
  probeBackends,
} from './select.js';
export type {
  BackendChoice,
  BackendChoiceResult,
  BackendName,
  BackendProbe,
  InitBackendOptions,
} from './select.js';
export { registerAllGradients, buildGradientsBundle } from './gradients.js';
export { installLeanBackprop, leanBackpropStats, setLeanBackprop } from './lean-backprop.js';
export { NATIVE_BACKEND, nativeKernelNames, registerNativeBackend } from './native/register.js';
export { loadDnnlAddon } from './native/addon.js';
export { TRAINING_KERNELS } from './native/training.js';
export type { DnnlAddon } from './native/addon.js';
export { registerWasmFixes, WASM_FIXED_KERNELS } from './wasm/register.js';
export { registerWebgpuBackend, registerWebgpuFixes, WEBGPU_FIXED_KERNELS } from './webgpu/register.js';
export { adapterLine, describeAdapter, loadDawn } from './webgpu/dawn.js';
export type { AdapterReport } from './webgpu/dawn.js';
export { backendMissing, tensorflowBindingMissing } from './installed.js';
export { hostValues } from './host-values.js';
