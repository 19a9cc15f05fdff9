import { backend_util, slice_util, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { DnnlAddon } from './addon.js';
import { allocOutput } from './pool.js';
import { copyGeometry, stridesOf } from './shapes.js';
import { f32, fallbackOf, outputOf } from './tensors.js';

// Slice, Transpose, Tile and PadV2 as one strided copy in C++ (the cpu kernels
// compute a multi-dimensional index per element in JavaScript).
export function layoutKernels(addon: DnnlAddon, fallback: Map<string, KernelConfig>): KernelConfig[] {
  const cpu = (name: string): KernelFunc => fallbackOf(fallback, name);
  const sliceCpu = cpu('Slice');
  const transposeCpu = cpu('Transpose');
  const tileCpu = cpu('Tile');
  const padCpu = cpu('PadV2');

  const slice: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return sliceCpu(args);
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    const backend = args.backend as MathBackendCPU;
    const [$begin, $size] = slice_util.parseSliceParams(x, begin, size) as [number[], number[]];
    slice_util.assertParamsValid(x, $begin, $size);
    const st = stridesOf(x.shape);
    const offset = $begin.reduce((acc, b, d) => acc + b * st[d]!, 0);
    const out = allocOutput(backend, util.sizeFromShape($size));
    if (out.length > 0)
      addon.copy(f32(backend, x), out, copyGeometry($size, st, stridesOf($size), offset, 0));
    return outputOf(backend, $size, out);
  };

  const transpose: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return transposeCpu(args);
    const { perm } = args.attrs as { perm: number[] };
    const backend = args.backend as MathBackendCPU;
    const st = stridesOf(x.shape);
    const outShape = perm.map((p) => x.shape[p]!);
    const out = allocOutput(backend, util.sizeFromShape(outShape));
    if (out.length > 0) {
      addon.copy(
        f32(backend, x),
        out,
        copyGeometry(
          outShape,
          perm.map((p) => st[p]!),
          stridesOf(outShape),
          0,
          0,
        ),
      );
    }
    return outputOf(backend, outShape, out);
  };

  // out[d] = x[d]·reps[d] is row-major (rep, i) pairs: a copy over 2·rank dims
  // whose rep dims read with stride 0.
  const tile: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return tileCpu(args);
    const { reps } = args.attrs as { reps: number[] };
    const backend = args.backend as MathBackendCPU;
    const outShape = x.shape.map((n, d) => n * reps[d]!);
    const st = stridesOf(x.shape);
    const dims: number[] = [];
    const src: number[] = [];
    for (let d = 0; d < x.shape.length; d++) {
      dims.push(reps[d]!, x.shape[d]!);
      src.push(0, st[d]!);
    }
    const out = allocOutput(backend, util.sizeFromShape(outShape));
    if (out.length > 0) addon.copy(f32(backend, x), out, copyGeometry(dims, src, stridesOf(dims), 0, 0));
    return outputOf(backend, outShape, out);
  };

  const pad: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return padCpu(args);
    const { paddings, constantValue } = args.attrs as { paddings: [number, number][]; constantValue: number };
    const backend = args.backend as MathBackendCPU;
    const outShape = x.shape.map((n, d) => paddings[d]![0] + n + paddings[d]![1]);
    const ost = stridesOf(outShape);
    const out = allocOutput(backend, util.sizeFromShape(outShape));
    out.fill(constantValue);
    const offset = paddings.reduce((acc, [before], d) => acc + before * ost[d]!, 0);
    if (util.sizeFromShape(x.shape) > 0)
      addon.copy(f32(backend, x), out, copyGeometry(x.shape, stridesOf(x.shape), ost, 0, offset));
    return outputOf(backend, outShape, out);
  };

  const splitVCpu = cpu('SplitV');
  const unpackCpu = cpu('Unpack');

  /** Pieces of x along `axis` with the given sizes, each one strided copy. */
  const pieces = (
    backend: MathBackendCPU,
    x: TensorInfo,
    axis: number,
    sizes: number[],
    keepAxis: boolean,
  ) => {
    const st = stridesOf(x.shape);
    const src = f32(backend, x);
    let start = 0;
    return sizes.map((len) => {
      const shape = x.shape.slice();
      shape[axis] = len;
      const out = allocOutput(backend, util.sizeFromShape(shape));
      if (out.length > 0)
        addon.copy(src, out, copyGeometry(shape, st, stridesOf(shape), start * st[axis]!, 0));
      start += len;
      const outShape = keepAxis ? shape : shape.filter((_, d) => d !== axis);
      return outputOf(backend, outShape, out);
    });
  };

  const splitV: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return splitVCpu(args);
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    const $axis = util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = backend_util.prepareSplitSize(x, numOrSizeSplits, $axis);
    return pieces(args.backend as MathBackendCPU, x, $axis, sizes, true);
  };

  const unpack: KernelFunc = (args) => {
    const { value } = args.inputs as { value: TensorInfo };
    if (value.dtype !== 'float32') return unpackCpu(args);
    let { axis } = args.attrs as { axis: number };
    if (axis < 0) axis += value.shape.length;
    const n = value.shape[axis]!;
    return pieces(args.backend as MathBackendCPU, value, axis, new Array<number>(n).fill(1), false);
  };

  return [
    { kernelName: 'SplitV', backendName: 'native', kernelFunc: splitV },
    { kernelName: 'Unpack', backendName: 'native', kernelFunc: unpack },
    { kernelName: 'Slice', backendName: 'native', kernelFunc: slice },
    { kernelName: 'Transpose', backendName: 'native', kernelFunc: transpose },
    { kernelName: 'Tile', backendName: 'native', kernelFunc: tile },
    { kernelName: 'PadV2', backendName: 'native', kernelFunc: pad },
  ];
}
