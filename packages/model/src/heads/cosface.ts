import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../nn/module.js';
import { initWeight } from '../nn/init.js';

/** x / max(‖x‖₂, 1e-12) along the last axis (PyTorch `F.normalize`). */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 2, 1, true), 1e-12)));
}

/** s·(cos − m·onehot(label)), cos = normalize(embedding)·normalize(W)ᵀ. W is [classes, dim]. */
export function cosFaceLogits(
  embedding: tf.Tensor2D,
  weight: tf.Tensor2D,
  labels: tf.Tensor1D,
  s: number,
  m: number,
): tf.Tensor2D {
  if (embedding.shape[1] !== weight.shape[1]) {
    throw new Error(`CosFace: embedding [${embedding.shape}] does not match weight [${weight.shape}]`);
  }
  return tf.tidy(() => {
    const cos = tf.matMul(l2Normalize(embedding), l2Normalize(weight), false, true);
    const margin = tf.mul(tf.oneHot(tf.cast(labels, 'int32'), weight.shape[0]), m);
    return tf.mul(tf.sub(cos, margin), s);
  });
}

/** The CosFace head (s = 64, m = 0.35): one `weight` [classes, embeddingSize], xavier-uniform. */
export class CosFace extends Module {
  readonly weight: tf.Variable;
  constructor(
    readonly embeddingSize: number,
    readonly numClasses: number,
    readonly s = 64,
    readonly m = 0.35,
  ) {
    super();
    this.weight = this.addParameter(
      'weight',
      initWeight([numClasses, embeddingSize], embeddingSize, numClasses, { kind: 'xavier-uniform' }),
    );
  }
  forward(embedding: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor2D {
    return cosFaceLogits(embedding, this.weight as tf.Tensor2D, labels, this.s, this.m);
  }
}
