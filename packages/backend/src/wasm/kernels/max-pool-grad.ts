import { backend_util } from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * MaxPoolGrad computed directly: tfjs-backend-wasm's own is wrong when windows
 * do not overlap (1×1 or 2×2 with stride 2 were measured; the 1×1 stride-2 case
 * is the IR unit's subsampling shortcut), so every case takes this path. Each
 * output's gradient goes to the first maximum of its window, as cpu does.
 */
export function maxPoolGrad(): KernelFunc {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
    const a = args.attrs as unknown as {
      filterSize: [number, number] | number;
      strides: [number, number] | number;
      pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
    };
    const info = backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      a.filterSize,
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
    );
    const out = backend.makeOutput(input.shape, 'float32');
    const dx = backend.typedArrayFromHeap(out) as Float32Array;
    dx.fill(0);
    const g = backend.typedArrayFromHeap(dy) as Float32Array;
    const xv = backend.typedArrayFromHeap(input) as Float32Array;
    const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth } = info;
    const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
    const { top, left } = info.padInfo;
    for (let n = 0; n < batchSize; n++) {
      for (let oh = 0; oh < outHeight; oh++) {
        const h0 = oh * sh - top;
        for (let ow = 0; ow < outWidth; ow++) {
          const w0 = ow * sw - left;
          const src = ((n * outHeight + oh) * outWidth + ow) * c;
          for (let ch = 0; ch < c; ch++) {
            let best = -Infinity;
            let at = -1;
            for (let ih = Math.max(0, h0); ih < Math.min(inHeight, h0 + fh); ih++) {
              for (let iw = Math.max(0, w0); iw < Math.min(inWidth, w0 + fw); iw++) {
                const idx = ((n * inHeight + ih) * inWidth + iw) * c + ch;
                if (xv[idx]! > best || at < 0) {
                  best = xv[idx]!;
                  at = idx;
                }
              }
            }
            if (at >= 0) dx[at] = dx[at]! + g[src + ch]!;
          }
        }
      }
    }
    return out;
  };
}
