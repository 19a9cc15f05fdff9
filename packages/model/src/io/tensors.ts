import * as tf from '@tensorflow/tfjs-core';
import { rawFromFloat32, rawFromInt32, rawToFloat32, rawToInt32, type RawTensor } from './dtypes.js';

/** Reads tfjs tensors to raw (float32 → F32 unless `floatDtype` says otherwise, int32 → I32). */
export async function tensorsToRaw(
  tensors: Iterable<[string, tf.Tensor]>,
  floatDtype: 'F32' | 'F16' | 'BF16' = 'F32',
): Promise<Map<string, RawTensor>> {
  const out = new Map<string, RawTensor>();
  for (const [name, t] of tensors) {
    const data = await t.data();
    if (t.dtype === 'float32') out.set(name, rawFromFloat32(data as Float32Array, [...t.shape], floatDtype));
    else if (t.dtype === 'int32') out.set(name, rawFromInt32(data as Int32Array, [...t.shape], 'I32'));
    else throw new Error(`tensorsToRaw: tensor '${name}' has unsupported dtype ${t.dtype}`);
  }
  return out;
}

/** A raw tensor as a tfjs tensor: floating dtypes → float32, integer/bool dtypes → int32. */
export function rawToTensor(raw: RawTensor, name = 'tensor'): tf.Tensor {
  const floating = raw.dtype === 'F32' || raw.dtype === 'F16' || raw.dtype === 'BF16' || raw.dtype === 'F64';
  return floating
    ? tf.tensor(rawToFloat32(raw, name), raw.shape, 'float32')
    : tf.tensor(rawToInt32(raw, name), raw.shape, 'int32');
}
