import * as tf from '@tensorflow/tfjs-core';
import { dexAge } from './heads/age-estimation.js';

/** Mean softmax cross-entropy of `logits` [N, K] against integer `labels` [N] (PyTorch `F.cross_entropy`). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  if (labels.shape[0] !== logits.shape[0]) {
    throw new Error(`crossEntropy: ${labels.shape[0]} labels for ${logits.shape[0]} rows of logits`);
  }
  return tf.tidy(() => {
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), onehot), 1))) as tf.Scalar;
  });
}

/** Mean squared error over all elements (PyTorch `F.mse_loss`). */
export function mseLoss(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.squaredDifference(a, b)));
}

/** Identity loss of AIFR: cross-entropy over CosFace logits. */
export function cosFaceLoss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return crossEntropy(logits, labels);
}

/** Age loss: MSE(DEX age, true age) + cross-entropy(group logits, group). */
export function ageLoss(
  ageLogits: tf.Tensor2D,
  groupLogits: tf.Tensor2D,
  ages: tf.Tensor1D,
  groups: tf.Tensor1D,
): tf.Scalar {
  return tf.tidy(() => tf.add(mseLoss(dexAge(ageLogits), ages), crossEntropy(groupLogits, groups)));
}

/** Least-squares GAN, discriminator side: 0.5·(mean((D(real) − 1)²) + mean(D(fake)²)). */
export function lsganDiscriminatorLoss(realLogits: tf.Tensor, fakeLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() =>
    tf.mul(tf.add(tf.mean(tf.square(tf.sub(realLogits, 1))), tf.mean(tf.square(fakeLogits))), 0.5),
  );
}

/** Least-squares GAN, generator side: 0.5·mean((D(G) − 1)²). */
export function lsganGeneratorLoss(fakeLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mul(tf.mean(tf.square(tf.sub(fakeLogits, 1))), 0.5));
}

/** FAS identity loss: MSE between x_id of the source and of the generated face. */
export function identityLoss(xIdSource: tf.Tensor, xIdGenerated: tf.Tensor): tf.Scalar {
  return mseLoss(xIdSource, xIdGenerated);
}
