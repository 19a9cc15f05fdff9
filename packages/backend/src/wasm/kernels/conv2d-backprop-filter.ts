import { backend_util } from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { free, ownCaller } from '../own.js';
import type { WasmKernels } from '../own.js';

/**
 * Conv2DBackpropFilter, which tfjs-backend-wasm does not have at all (so no
 * convolution can be trained on it). dW[kh,kw,:,:] = x_tap(kh,kw)ᵀ · dy, one
 * matmul per filter tap, with x transposed once to [C, N, H, W] so every tap is
 * a strided slice that reshapes to [C, N·OH·OW] without another transpose.
 */
export function conv2DBackpropFilter(own: WasmKernels): KernelFunc {
  const call = ownCaller(own);
  return ({ inputs, backend: b, attrs }) => {
    const backend = b as BackendWasm;
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const a = attrs as unknown as {
      strides: [number, number] | number;
      pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
      dataFormat: 'NHWC' | 'NCHW';
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
      filterShape: [number, number, number, number];
    };
    if (a.dataFormat === 'NCHW') throw new Error('wasm Conv2DBackpropFilter: only NHWC is supported');
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      a.filterShape,
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
    );
    const { top, left, bottom, right } = info.padInfo;
    const padded =
      top || bottom || left || right
        ? call(
            backend,
            'PadV2',
            { x },
            {
              paddings: [
                [0, 0],
                [top, bottom],
                [left, right],
                [0, 0],
              ],
              constantValue: 0,
            },
          )
        : null;
    const xT = call(backend, 'Transpose', { x: padded ?? x }, { perm: [3, 0, 1, 2] });
    if (padded) free(backend, padded);
    const m = info.batchSize * info.outHeight * info.outWidth;
    const dy3 = call(backend, 'Reshape', { x: dy }, { shape: [1, m, info.outChannels] });
    const taps: TensorInfo[] = [];
    for (let kh = 0; kh < info.filterHeight; kh++) {
      for (let kw = 0; kw < info.filterWidth; kw++) {
        const slice = call(
          backend,
          'StridedSlice',
          { x: xT },
          {
            begin: [0, 0, kh, kw],
            end: [
              info.inChannels,
              info.batchSize,
              kh + (info.outHeight - 1) * info.strideHeight + 1,
              kw + (info.outWidth - 1) * info.strideWidth + 1,
            ],
            strides: [1, 1, info.strideHeight, info.strideWidth],
            beginMask: 0,
            endMask: 0,
            ellipsisMask: 0,
            newAxisMask: 0,
            shrinkAxisMask: 0,
          },
        );
        const s3 = call(backend, 'Reshape', { x: slice }, { shape: [1, info.inChannels, m] });
        taps.push(call(backend, 'BatchMatMul', { a: s3, b: dy3 }, { transposeA: false, transposeB: false }));
        free(backend, slice, s3);
      }
    }
    free(backend, xT, dy3);
    const all = taps.length === 1 ? taps[0]! : call(backend, 'Concat', taps, { axis: 0 });
    const out = call(backend, 'Reshape', { x: all }, { shape: a.filterShape });
    if (taps.length > 1) free(backend, ...taps);
    free(backend, all);
    return out;
  };
}
