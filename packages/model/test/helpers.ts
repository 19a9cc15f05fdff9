import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

let ready: Promise<boolean> | null = null;
/** Every model test runs on the pure-JS cpu backend (the reference for the faster ones). */
export function useCpu(): Promise<boolean> {
  ready ??= tf.setBackend('cpu');
  return ready;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
