import { backend_util, util } from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { free, ownCaller } from '../own.js';
import type { WasmKernels } from '../own.js';

/**
 * Sum and Mean of float32 with a float64 accumulator. tfjs-backend-wasm's own
 * accumulate in float32 one element after another: over a batch norm's N·H·W
 * values (4096 in the demo) a channel mean of 10 comes out 1.7e-6 off, which is
 * 0.3% of a 0.006 spread around it, and the BN statistics and backward means
 * amplify that (a whole-model gradient 1% off cpu). Other dtypes keep wasm's.
 */
export function reduceF64(own: WasmKernels, name: 'Sum' | 'Mean'): KernelFunc {
  const call = ownCaller(own);
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    if (x.dtype !== 'float32') return call(backend, name, args.inputs, args.attrs);
    const axes = util.parseAxisParam(axis, x.shape);
    const perm = backend_util.getAxesPermutation(axes, x.shape.length);
    const xT = perm ? call(backend, 'Transpose', { x }, { perm }) : x;
    const inner = backend_util.getInnerMostAxes(axes.length, x.shape.length);
    const [outShape, reduceShape] = backend_util.computeOutAndReduceShapes(xT.shape, inner);
    const r = util.sizeFromShape(reduceShape);
    const out = backend.makeOutput(outShape, 'float32');
    // views after every allocation (the heap may grow)
    const src = backend.typedArrayFromHeap(xT) as Float32Array;
    const dst = backend.typedArrayFromHeap(out) as Float32Array;
    for (let o = 0; o < dst.length; o++) {
      let acc = 0;
      const base = o * r;
      for (let i = 0; i < r; i++) acc += src[base + i]!;
      dst[o] = name === 'Mean' ? acc / r : acc;
    }
    if (perm) free(backend, xT);
    if (!keepDims) return out;
    const shaped = call(
      backend,
      'Reshape',
      { x: out },
      { shape: backend_util.expandShapeToKeepDim(outShape, axes) },
    );
    free(backend, out);
    return shaped;
  };
}
