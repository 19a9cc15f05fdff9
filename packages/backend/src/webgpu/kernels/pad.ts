import type { KernelBackend, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { free, ownCaller, type WebgpuKernels } from '../own.js';

type Paddings = [number, number][];

/**
 * Merges every dimension that is not padded into the one outside it (an outer dim padded by
 * (a, b) over an inner one of extent n becomes one dim padded by (a·n, b·n)): the same pad
 * at the lowest rank. Leading unpadded dims merge into each other.
 */
export function mergeUnpadded(
  shape: readonly number[],
  paddings: Paddings,
): { shape: number[]; paddings: Paddings } {
  const outShape: number[] = [];
  const outPads: Paddings = [];
  for (let i = 0; i < shape.length; i++) {
    const [a, b] = paddings[i]!;
    const last = outShape.length - 1;
    if (a === 0 && b === 0 && last >= 0) {
      outShape[last]! *= shape[i]!;
      outPads[last] = [outPads[last]![0] * shape[i]!, outPads[last]![1] * shape[i]!];
    } else {
      outShape.push(shape[i]!);
      outPads.push([a, b]);
    }
  }
  return { shape: outShape, paddings: outPads };
}

/** Flat index into x of each output element, or x's size where the output is padding. */
function sourceIndices(shape: readonly number[], paddings: Paddings): Int32Array {
  const rank = shape.length;
  const out = shape.map((d, i) => d + paddings[i]![0] + paddings[i]![1]);
  const size = shape.reduce((p, d) => p * d, 1);
  const idx = new Int32Array(out.reduce((p, d) => p * d, 1));
  const coord = new Array<number>(rank).fill(0);
  for (let k = 0; k < idx.length; k++) {
    let flat = 0;
    let inside = true;
    for (let i = 0; i < rank; i++) {
      const c = coord[i]! - paddings[i]![0];
      if (c < 0 || c >= shape[i]!) inside = false;
      flat = flat * shape[i]! + c;
    }
    idx[k] = inside ? flat : size;
    for (let i = rank - 1; i >= 0 && ++coord[i]! === out[i]!; i--) coord[i] = 0;
  }
  return idx;
}

/**
 * PadV2 of rank 5 and 6. tfjs-backend-webgpu's pad shader indexes a `vec5`/`vec6`, which WGSL
 * does not have, so its pipeline is invalid; and since commands are batched, every op encoded
 * with it is lost too. The gradient of the backbone's stride subsampling (a rank-6 slice) is
 * such a pad. Unpadded dims are merged first (the subsampling's pad becomes rank 4, webgpu's own
 * kernel); what stays above rank 4 is a gather from x with one constant appended.
 */
export function padV2(own: WebgpuKernels): KernelFunc {
  const call = ownCaller(own);
  return ({ inputs, backend: b, attrs }) => {
    const backend = b as KernelBackend & {
      makeTensorInfo(shape: number[], dtype: 'int32', values: Int32Array): TensorInfo;
    };
    const { x } = inputs as { x: TensorInfo };
    const { paddings, constantValue } = attrs as unknown as { paddings: Paddings; constantValue: number };
    if (x.shape.length <= 4) return call(backend, 'PadV2', inputs, attrs);
    const outShape = x.shape.map((d, i) => d + paddings[i]![0] + paddings[i]![1]);
    const merged = mergeUnpadded(x.shape, paddings);
    if (merged.shape.length <= 4) {
      const r = call(backend, 'Reshape', { x }, { shape: merged.shape });
      const p = call(backend, 'PadV2', { x: r }, { paddings: merged.paddings, constantValue });
      const out = call(backend, 'Reshape', { x: p }, { shape: outShape });
      free(backend, r, p);
      return out;
    }
    const size = x.shape.reduce((p, d) => p * d, 1);
    const flat = call(backend, 'Reshape', { x }, { shape: [size] });
    const c = call(backend, 'Fill', {}, { shape: [1], value: constantValue, dtype: x.dtype });
    const withConstant = call(backend, 'Concat', [flat, c], { axis: 0 });
    const indices = backend.makeTensorInfo(
      [outShape.reduce((p, d) => p * d, 1)],
      'int32',
      sourceIndices(x.shape, paddings),
    );
    const gathered = call(backend, 'GatherV2', { x: withConstant, indices }, { axis: 0, batchDims: 0 });
    const out = call(backend, 'Reshape', { x: gathered }, { shape: outShape });
    free(backend, flat, c, withConstant, indices, gathered);
    return out;
  };
}
