import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** Kernels the wasm backend gets from us: added (filter gradient) or wrapped (slow or wrong paths). */
export const WASM_FIXED_KERNELS: readonly string[] = [
  'Conv2DBackpropFilter',
  'BatchMatMul',
  '_FusedMatMul',
  'MaxPoolGrad',
];

let done = false;

/**
 * Makes tfjs-backend-wasm train correctly: registers the missing
 * Conv2DBackpropFilter, transposes explicitly instead of using matMul's slow
 * transposeA path, and computes the 1×1 max-pool gradient (which wasm gets
 * wrong for strides > 1) as the scatter it is. Call after importing
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

  const fusedMatMul: KernelFunc = (args) => {
    const backend = args.backend as BackendWasm;
    const inputs = args.inputs as Record<string, TensorInfo>;
    const attrs = args.attrs as Record<string, unknown> & { transposeA: boolean };
    if (!attrs.transposeA) return call(backend, '_FusedMatMul', inputs, attrs);
    const aT = transposeLast2(backend, inputs.a!);
    const out = call(backend, '_FusedMatMul', { ...inputs, a: aT }, { ...attrs, transposeA: false });
    free(backend, aT);
    return out;
  };

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
    if (info.filterHeight !== 1 || info.filterWidth !== 1)
      return call(backend, 'MaxPoolGrad', args.inputs, a);
    // A 1×1 window: every output took exactly its one input pixel.
    const out = backend.makeOutput(input.shape, 'float32');
    const dx = backend.typedArrayFromHeap(out) as Float32Array;
    dx.fill(0);
    const g = backend.typedArrayFromHeap(dy) as Float32Array;
    const {
      batchSize,
      inHeight,
      inWidth,
      inChannels: c,
      outHeight,
      outWidth,
      strideHeight,
      strideWidth,
    } = info;
    const { top, left } = info.padInfo;
    for (let n = 0; n < batchSize; n++) {
      for (let oh = 0; oh < outHeight; oh++) {
        const ih = oh * strideHeight - top;
        if (ih < 0 || ih >= inHeight) continue;
        for (let ow = 0; ow < outWidth; ow++) {
          const iw = ow * strideWidth - left;
          if (iw < 0 || iw >= inWidth) continue;
          const src = ((n * outHeight + oh) * outWidth + ow) * c;
          const dst = ((n * inHeight + ih) * inWidth + iw) * c;
          for (let ch = 0; ch < c; ch++) dx[dst + ch] = g[src + ch]!;
        }
      }
    }
    return out;
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
}
