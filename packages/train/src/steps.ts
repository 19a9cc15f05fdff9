// Forward + backward of the FR loss (spec §3) and of the FAS D and G losses (spec §4), returning
// gradients aligned with a parameter list. No communication and no optimizer here: see trainer.ts.
import * as tf from '@tensorflow/tfjs-core';
import {
  ageLoss,
  cosFaceLoss,
  crossEntropy,
  gradientReversal,
  identityLoss,
  lsganDiscriminatorLoss,
  lsganGeneratorLoss,
  withoutStatUpdates,
} from '@mtlface/model';
import type { Batch, FasBatch } from '@mtlface/data';
import type { MtlFaceNetworks } from './networks.js';
import type { NamedParam } from './optim.js';

export interface Gradients {
  /** Aligned with the parameter list; null where the loss does not depend on a parameter. */
  grads: (tf.Tensor | null)[];
  /** Named loss values as scalars (caller disposes). */
  losses: Record<string, tf.Scalar>;
}

export interface FrWeights {
  /** The identity (CosFace) loss's weight: 1 in the release. */
  id: number;
  age: number;
  da: number;
}

export interface FasWeights {
  gan: number;
  id: number;
  age: number;
}

/** tf.tidy for results that are plain objects holding tensors (the tensors are kept). */
function tidyObject<T>(fn: () => T): T {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as T;
}

export function batchImages(b: Batch): tf.Tensor4D {
  return tf.tensor4d(b.images, [b.n, b.size, b.size, 3]);
}

function gradientsFor(
  params: readonly NamedParam[],
  f: () => { total: tf.Scalar; parts: Record<string, tf.Scalar> },
): Gradients {
  let parts: Record<string, tf.Scalar> = {};
  const { value, grads } = tf.variableGrads(
    () => {
      const r = f();
      parts = Object.fromEntries(Object.entries(r.parts).map(([k, v]) => [k, tf.keep(v)]));
      return r.total;
    },
    params.map((p) => p.variable),
  );
  return {
    grads: params.map((p) => grads[p.variable.name] ?? null),
    losses: { ...parts, total: value },
  };
}

/**
 * FR loss: w_id·id + w_age·age(estimation(x_age)) + w_da·age(da_discriminator(GRL(x_id))). At the
 * release's w_id = 1 the product is the identity loss itself, bit for bit, and so is its gradient.
 * Networks must be in the mode the caller wants (train for training).
 */
export function frGradients(
  nets: MtlFaceNetworks,
  params: readonly NamedParam[],
  batch: Batch,
  w: FrWeights,
): Gradients {
  return tidyObject(() => {
    const x = batchImages(batch);
    const labels = tf.tensor1d(batch.labels, 'int32');
    const ages = tf.tensor1d(batch.ages, 'float32');
    const groups = tf.tensor1d(batch.groups, 'int32');
    const out = gradientsFor(params, () => {
      const f = nets.backbone.forward(x);
      const id = cosFaceLoss(nets.head.forward(f.embedding, labels), labels);
      const est = nets.estimation.forward(f.xAge);
      const age = ageLoss(est.ageLogits, est.groupLogits, ages, groups);
      const da = nets.daDiscriminator.forward(gradientReversal(f.xId));
      const daLoss = ageLoss(da.ageLogits, da.groupLogits, ages, groups);
      const total = tf.add(tf.mul(id, w.id), tf.add(tf.mul(age, w.age), tf.mul(daLoss, w.da))) as tf.Scalar;
      return { total, parts: { id, age, da: daLoss } };
    });
    for (const t of [...out.grads, ...Object.values(out.losses)]) if (t) tf.keep(t);
    return out;
  });
}

/** The frozen-backbone inputs of the generator, computed once per FAS step (no gradient). */
export interface FasSource {
  image: tf.Tensor4D;
  real: tf.Tensor4D;
  targets: tf.Tensor1D;
  x2: tf.Tensor4D;
  x3: tf.Tensor4D;
  x4: tf.Tensor4D;
  xId: tf.Tensor4D;
  dispose(): void;
}

/** Runs the backbone (eval mode: the caller sets it) on the source faces. */
export function fasSource(nets: MtlFaceNetworks, batch: FasBatch): FasSource {
  const kept = tidyObject(() => {
    const image = batchImages(batch);
    const real = batchImages(batch.real);
    const targets = tf.tensor1d(batch.targetGroups, 'int32');
    const f = nets.backbone.forward(image);
    return { image, real, targets, x2: f.x2, x3: f.x3, x4: f.x4, xId: f.xId };
  });
  return { ...kept, dispose: () => Object.values(kept).forEach((t) => t.dispose()) };
}

function generate(nets: MtlFaceNetworks, s: FasSource): tf.Tensor4D {
  return nets.generator!.forward({
    image: s.image,
    x2: s.x2,
    x3: s.x3,
    x4: s.x4,
    xId: s.xId,
    targetGroups: s.targets,
  });
}

/** D step: 0.5·(mean((D(real)−1)²) + mean(D(G)²)) with G detached; also the two outputs' means. */
export function fasDiscriminatorGradients(
  nets: MtlFaceNetworks,
  params: readonly NamedParam[],
  s: FasSource,
): Gradients {
  const d = nets.discriminator!;
  return tidyObject(() => {
    const fake = generate(nets, s); // outside the tape: detached
    const out = gradientsFor(params, () => {
      const real = d.forward(s.real, s.targets);
      const detached = d.forward(fake, s.targets);
      const loss = lsganDiscriminatorLoss(real, detached);
      return {
        total: loss,
        parts: { d1_logit: tf.mean(real) as tf.Scalar, d3_logit: tf.mean(detached) as tf.Scalar },
      };
    });
    for (const t of [...out.grads, ...Object.values(out.losses)]) if (t) tf.keep(t);
    return out;
  });
}

/** G step: w_gan·0.5·mean((D(G)−1)²) + w_id·MSE(x_id(src), x_id(G)) + w_age·CE(groups(x_age(G)), target). */
export function fasGeneratorGradients(
  nets: MtlFaceNetworks,
  params: readonly NamedParam[],
  s: FasSource,
  w: FasWeights,
): Gradients & { generated: tf.Tensor4D } {
  const d = nets.discriminator!;
  let generated: tf.Tensor4D | null = null;
  const out = tidyObject(() => {
    const r = gradientsFor(params, () => {
      // The D step's forward already counted this batch in the generator's BatchNorm statistics.
      const g = withoutStatUpdates(nets.generator!, () => generate(nets, s));
      generated = tf.keep(g);
      const gLogits = d.forward(g, s.targets);
      const gan = lsganGeneratorLoss(gLogits);
      const f = nets.backbone.forward(g);
      const idl = identityLoss(s.xId, f.xId);
      const est = nets.estimation.forward(f.xAge);
      const age = crossEntropy(est.groupLogits, s.targets);
      const total = tf.add(tf.mul(gan, w.gan), tf.add(tf.mul(idl, w.id), tf.mul(age, w.age))) as tf.Scalar;
      return { total, parts: { g_gan: gan, g_id: idl, g_age: age, g_logit: tf.mean(gLogits) as tf.Scalar } };
    });
    for (const t of [...r.grads, ...Object.values(r.losses)]) if (t) tf.keep(t);
    return r;
  });
  return { ...out, generated: generated! };
}
