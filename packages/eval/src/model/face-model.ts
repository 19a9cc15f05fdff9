// What the evaluation needs from a trained MTLFace, as three tensor functions. Keeping this narrow lets the
// protocols run on the real networks, on a checkpoint loaded by `mtl-face`, or on a stub in tests.
import * as tf from '@tensorflow/tfjs-core';
import type { AgeEstimation, AgingModule, Backbone } from '@mtlface/model';

export interface FaceModel {
  /** Input side in pixels (NHWC, RGB in [-1, 1]). */
  readonly inputSize: number;
  /** Number of age groups the estimator and generator know. */
  readonly groups: number;
  /** Identity embeddings [N, D] of images [N, S, S, 3], in inference mode. */
  embed(images: tf.Tensor4D): tf.Tensor2D;
  /** Age-group logits [N, groups] of images, by the model's own age estimator. */
  groupLogits?(images: tf.Tensor4D): tf.Tensor2D;
  /** The images re-rendered at the given target groups (int32 [N]). */
  age?(images: tf.Tensor4D, targetGroups: tf.Tensor1D): tf.Tensor4D;
}

/** Runs `fn` with `modules` in eval mode, restoring each one's previous mode afterwards. */
export function inEvalMode<T>(
  modules: Array<{ training: boolean; train(mode?: boolean): unknown } | undefined>,
  fn: () => T,
): T {
  const present = modules.filter((m): m is NonNullable<typeof m> => m !== undefined);
  const before = present.map((m) => m.training);
  for (const m of present) m.train(false);
  try {
    return fn();
  } finally {
    present.forEach((m, i) => m.train(before[i]));
  }
}

/** Wraps the networks of a checkpoint (backbone, and optionally the age estimator and generator). */
export function faceModelFromModules(nets: {
  backbone: Backbone;
  estimation?: AgeEstimation;
  generator?: AgingModule;
}): FaceModel {
  const { backbone, estimation, generator } = nets;
  const model: FaceModel = {
    inputSize: backbone.config.inputSize,
    groups: estimation?.groups ?? 7,
    embed: (images) => inEvalMode([backbone], () => backbone.embed(images)),
  };
  if (estimation) {
    model.groupLogits = (images) =>
      inEvalMode([backbone, estimation], () =>
        tf.tidy(() => estimation.forward(backbone.forward(images).xAge).groupLogits),
      );
  }
  if (generator) {
    model.age = (images, targetGroups) =>
      inEvalMode([backbone, generator], () =>
        tf.tidy(() => {
          const f = backbone.forward(images);
          return generator.forward({ image: images, x2: f.x2, x3: f.x3, x4: f.x4, xId: f.xId, targetGroups });
        }),
      );
  }
  return model;
}
