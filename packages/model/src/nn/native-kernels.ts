import * as tf from '@tensorflow/tfjs-core';

/** Whether the active backend has the training kernel `name` (only `native` has them: TRAINING_KERNELS). */
export function hasTrainingKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}
