import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/**
 * The float32 array a host backend (cpu, native) keeps behind `t`, for a caller that reads it at once and
 * keeps no reference: unlike data()/dataSync(), this does not count as handing the array out, so the
 * native backend may still recycle it when `t` is disposed, or update it in place. Null for another
 * backend, dtype or layout (then read with `await t.data()`).
 */
export function hostValues(t: tf.Tensor): Float32Array | null {
  if (t.dtype !== 'float32' || t.isDisposed) return null;
  // the backend that holds t (not necessarily the active one)
  const state = tf.engine().state as unknown as { tensorInfo: WeakMap<object, { backend: unknown }> };
  const backend = state.tensorInfo.get(t.dataId)?.backend;
  if (!(backend instanceof MathBackendCPU) || !backend.data.has(t.dataId)) return null;
  const values = backend.data.get(t.dataId)?.values;
  return values instanceof Float32Array && values.length === t.size ? values : null;
}
