import * as tf from '@tensorflow/tfjs-core';
import { backend_util, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { applyActivation } from '../native/tensors.js';

/** Kernels the wasm backend gets from us: added (filter gradient) or wrapped (slow or wrong paths). */
export const WASM_FIXED_KERNELS: readonly string[] = [
  'Conv2DBackpropFilter',
  'BatchMatMul',
  '_FusedMatMul',
  'MaxPoolGrad',
  'Sum',
  'Mean',
];

let done = false;

/**
 * Makes tfjs-backend-wasm train correctly: registers the missing
 * Conv2DBackpropFilter, transposes explicitly instead of using matMul's slow
 * transposeA path, composes _FusedMatMul (wrong with transposeB + bias), and
 * computes MaxPoolGrad directly (wrong for non-overlapping windows such as the
 * 1×1 stride-2 shortcut), and sums/means with a float64 accumulator (float32
 * running sums lose batch-norm statistics). Call after importing
 * '@tensorflow/tfjs-backend-wasm'; idempotent.
 */
export function registerWasmFixes(): void {
  if (done) return;
  const orig = new Map<string, KernelConfig>();
  for (const k of tf.getKernelsForBackend('wasm')) orig.set(k.kernelName, k);
  if (orig.size === 0) throw new Error('registerWasmFixes: import @tensorflow/tfjs-backend-wasm first');
  done = true;

  const call = (backend: BackendWasm, name: string, inputs: unknown, attrs: Record<string, unknown> = {}) => {
    const k = orig.get(name);
    if (!k) throw new Error(`wasm backend has no ${name} kernel`);
    return k.kernelFunc({ inputs: inputs as never, backend, attrs: attrs as NamedAttrMap }) as TensorInfo;
  };
  const free = (backend: BackendWasm, ...ts: TensorInfo[]) => {
    for (const t of ts) backend.disposeData(t.dataId);
  };
  const transposeLast2 = (backend: BackendWasm, t: TensorInfo) => {
    const perm = t.shape.map((_, i) => i);
    const r = perm.length;
    [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
    return call(backend, 'Transpose', { x: t }, { perm });
  };

  // dW[kh,kw,:,:] = x_tap(kh,kw)ᵀ · dy, one matmul per filter tap, with x
  // transposed once to [C, N, H, W] so every tap is a strided slice that
  // reshapes to [C, N·OH·OW] without another transpose.
  const conv2DBackpropFilter: KernelFunc = ({ inputs, backend: b, attrs }) => {
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

  const batchMatMul: KernelFunc = (args) => {
    const backend = args.backend as BackendWasm;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = args.attrs as { transposeA: boolean; transposeB: boolean };
    if (!attrs.transposeA) return call(backend, 'BatchMatMul', args.inputs, attrs);
    const aT = transposeLast2(backend, a);
    const out = call(backend, 'BatchMatMul', { a: aT, b }, { ...attrs, transposeA: false });
    free(backend, aT);
    return out;
  };

  // wasm's _FusedMatMul drops rows with transposeB + bias + activation; compose it instead.
  const fusedMatMul: KernelFunc = (args) => {
    const backend = args.backend as BackendWasm;
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
    const attrs = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    let out = batchMatMul({
      inputs: { a: a!, b: b! },
      backend,
      attrs: { transposeA: attrs.transposeA, transposeB: attrs.transposeB },
    }) as TensorInfo;
    if (bias) {
      const next = call(backend, 'Add', { a: out, b: bias });
      free(backend, out);
      out = next;
    }
    if (attrs.activation && attrs.activation !== 'linear') {
      const next = applyActivation(
        orig,
        backend,
        out,
        attrs.activation,
        preluActivationWeights,
        attrs.leakyreluAlpha,
      );
      free(backend, out);
      out = next;
    }
    return out;
  };

  // wasm's MaxPoolGrad is wrong when windows do not overlap (1×1 or 2×2 with
  // stride 2 were measured); route every case through this direct version:
  // each output's gradient goes to the first maximum of its window, as cpu does.
  const maxPoolGrad: KernelFunc = (args) => {
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

  // wasm's Sum and Mean accumulate in float32 one element after another: over a batch norm's
  // N·H·W values (4096 in the demo) a channel mean of 10 comes out 1.7e-6 off, which is 0.3% of a
  // 0.006 spread around it, and the BN statistics and backward means amplify that (a whole-model
  // gradient 1% off cpu). Reduce float32 with a float64 accumulator, as cpu effectively does.
  const reduceF64 =
    (name: 'Sum' | 'Mean'): KernelFunc =>
    (args) => {
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

  const replace = (name: string, kernelFunc: KernelFunc) => {
    const prev = orig.get(name);
    if (prev) tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...prev, kernelName: name, backendName: 'wasm', kernelFunc });
  };
  replace('Conv2DBackpropFilter', conv2DBackpropFilter);
  replace('BatchMatMul', batchMatMul);
  replace('_FusedMatMul', fusedMatMul);
  replace('MaxPoolGrad', maxPoolGrad);
  replace('Sum', reduceF64('Sum'));
  replace('Mean', reduceF64('Mean'));
}
