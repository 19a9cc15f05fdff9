import { backend_util, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { DnnlAddon } from './addon.js';
import { allocOutput } from './pool.js';
import { broadcastGeometry, reductionGeometry } from './shapes.js';
import { f32, fallbackOf, outputOf } from './tensors.js';

/** Binary ops the addon implements (index = the addon's op code). */
const BINARY_OPS = [
  'Add',
  'Sub',
  'Multiply',
  'RealDiv',
  'SquaredDifference',
  'Maximum',
  'Minimum',
  'Prelu',
] as const;
/** Comparisons the addon implements (bool outputs). */
const COMPARE_OPS = ['Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal', 'NotEqual'] as const;
/** Reductions the addon implements (index = the addon's op code). */
const REDUCE_OPS = ['Sum', 'Mean', 'Max', 'Min'] as const;

/** Broadcasting float32 binary ops in C++ (the cpu kernels index every broadcast element in JS). */
export function binaryKernels(addon: DnnlAddon, fallback: Map<string, KernelConfig>): KernelConfig[] {
  return BINARY_OPS.map((kernelName, op) => {
    const cpu = fallbackOf(fallback, kernelName);
    const kernelFunc: KernelFunc = (args) => {
      const inputs = args.inputs as Record<string, TensorInfo>;
      // Prelu names its inputs x and alpha.
      const a = inputs.a ?? inputs.x!;
      const b = inputs.b ?? inputs.alpha!;
      if (a.dtype !== 'float32' || b.dtype !== 'float32') return cpu(args);
      const backend = args.backend as MathBackendCPU;
      const outShape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const out = allocOutput(backend, util.sizeFromShape(outShape));
      if (out.length > 0)
        addon.binary(
          op,
          f32(backend, a),
          f32(backend, b),
          out,
          broadcastGeometry(a.shape, b.shape, outShape),
        );
      return outputOf(backend, outShape, out);
    };
    return { kernelName, backendName: 'native', kernelFunc };
  });
}

/** Sum, Mean, Max, Min over any axes that form one contiguous block (all the model's reductions). */
export function reduceKernels(addon: DnnlAddon, fallback: Map<string, KernelConfig>): KernelConfig[] {
  return REDUCE_OPS.map((kernelName, op) => {
    const cpu = fallbackOf(fallback, kernelName);
    const kernelFunc: KernelFunc = (args) => {
      const { x } = args.inputs as { x: TensorInfo };
      const attrs = args.attrs as {
        axis?: number | number[];
        reductionIndices?: number | number[];
        keepDims: boolean;
      };
      const axis = kernelName === 'Max' ? attrs.reductionIndices! : attrs.axis!;
      const keepDims = attrs.keepDims;
      if (x.dtype !== 'float32') return cpu(args);
      const axes = util.parseAxisParam(axis, x.shape);
      const g = reductionGeometry(x.shape, axes);
      const size = util.sizeFromShape(x.shape);
      if (!g || size === 0) return cpu(args);
      const backend = args.backend as MathBackendCPU;
      const kept = x.shape.filter((_, d) => !axes.includes(d));
      const outShape = keepDims ? backend_util.expandShapeToKeepDim(kept, axes) : kept;
      const out = allocOutput(backend, g.outer * g.inner);
      addon.reduce(op, f32(backend, x), out, g.outer, g.n, g.inner);
      return outputOf(backend, outShape, out);
    };
    return { kernelName, backendName: 'native', kernelFunc };
  });
}

/** Float comparisons (bool output) and same-shape Select in C++. */
export function compareKernels(addon: DnnlAddon, fallback: Map<string, KernelConfig>): KernelConfig[] {
  const configs: KernelConfig[] = COMPARE_OPS.map((kernelName, op) => {
    const cpu = fallbackOf(fallback, kernelName);
    const kernelFunc: KernelFunc = (args) => {
      const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
      if (a.dtype !== 'float32' || b.dtype !== 'float32') return cpu(args);
      const backend = args.backend as MathBackendCPU;
      const outShape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const out = new Uint8Array(util.sizeFromShape(outShape));
      if (out.length > 0)
        addon.compare(
          op,
          f32(backend, a),
          f32(backend, b),
          out,
          broadcastGeometry(a.shape, b.shape, outShape),
        );
      return backend.makeTensorInfo(outShape, 'bool', out);
    };
    return { kernelName, backendName: 'native', kernelFunc };
  });
  const selectCpu = fallbackOf(fallback, 'Select');
  const select: KernelFunc = (args) => {
    const { condition, t, e } = args.inputs as { condition: TensorInfo; t: TensorInfo; e: TensorInfo };
    const backend = args.backend as MathBackendCPU;
    const cond = backend.data.get(condition.dataId)?.values;
    const same = util.arraysEqual(condition.shape, t.shape) && util.arraysEqual(t.shape, e.shape);
    if (!same || t.dtype !== 'float32' || e.dtype !== 'float32' || !(cond instanceof Uint8Array))
      return selectCpu(args);
    const out = allocOutput(backend, util.sizeFromShape(t.shape));
    addon.select(cond, f32(backend, t), f32(backend, e), out);
    return outputOf(backend, t.shape, out);
  };
  configs.push({ kernelName: 'Select', backendName: 'native', kernelFunc: select });
  return configs;
}

/** Square as x·x through the binary loop (the cpu kernel writes fresh, unpooled memory). */
export function unaryKernels(addon: DnnlAddon, fallback: Map<string, KernelConfig>): KernelConfig[] {
  const squareCpu = fallbackOf(fallback, 'Square');
  const square: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return squareCpu(args);
    const backend = args.backend as MathBackendCPU;
    const out = allocOutput(backend, util.sizeFromShape(x.shape));
    const v = f32(backend, x);
    if (out.length > 0) addon.binary(2, v, v, out, Int32Array.of(1, out.length, 1, 1));
    return outputOf(backend, x.shape, out);
  };
  return [{ kernelName: 'Square', backendName: 'native', kernelFunc: square }];
}
