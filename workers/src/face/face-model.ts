// Loading a checkpoint's inference networks (backbone, age estimator, generator) as an eval FaceModel,
// and reading face images for it, aligned on request. Shared by verify, eval and age.
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import {
  AgeEstimation,
  AgingModule,
  Backbone,
  inferAgeEstimationOptions,
  inferBackboneOptions,
  NETWORK_NAMES,
  rawToTensor,
  readSafetensors,
  splitByNetwork,
  type Module,
  type RawTensor,
} from '@mtlface/model';
import { checkpointTensorsPath } from './checkpoint-file.js';
import { toFloatRgb } from '@mtlface/data';
import type { FaceAligner } from '@mtlface/eval/align';
import { faceModelFromModules, loadFaceImages, type FaceImages, type FaceModel } from '@mtlface/eval/model';

export interface LoadedFaceModel extends FaceModel {
  readonly source: string;
  dispose(): void;
}

/** Loads `tensors` into `module` (disposing it on failure, the error prefixed with `what`). */
export function loadModule<M extends Module>(module: M, tensors: Map<string, RawTensor>, what: string): M {
  const state = new Map([...tensors].map(([n, t]) => [n, rawToTensor(t, n)]));
  try {
    module.loadStateDict(state);
  } catch (e) {
    module.dispose();
    throw new Error(`${what}: ${(e as Error).message}`);
  } finally {
    tf.dispose([...state.values()]);
  }
  return module;
}

/** The router unit count u that gives the generator's routed width c = int((g − (g−1)σ)·u). */
function unitCountFor(width: number, groups: number, sigma = 0.1): number {
  for (let u = 1; u <= 4096; u++) if (Math.trunc((groups - (groups - 1) * sigma) * u) === width) return u;
  throw new Error(`generator width ${width} fits no router unit count for ${groups} groups`);
}

/**
 * Loads a checkpoint: a `.safetensors` file with prefixed tensors (`backbone.`, `estimation.`, `generator.`;
 * checked against the sidecar beside it, if any), or a training checkpoint (directory → newest intact one,
 * or its sidecar). Networks the checkpoint lacks are left out of the model (no `groupLogits` without an
 * estimator, no `age` without a generator).
 */
export function loadFaceModel(checkpoint: string): LoadedFaceModel {
  const path = checkpointTensorsPath(checkpoint);
  // a training checkpoint also holds optimizer slots (`optim.…`): keep the networks' tensors only
  const all = readSafetensors(path).tensors;
  const prefixed = new Map(
    [...all].filter(([n]) => (NETWORK_NAMES as readonly string[]).includes(n.split('.')[0]!)),
  );
  const nets = splitByNetwork(prefixed.size > 0 ? prefixed : all, 'backbone');
  const bt = nets.get('backbone');
  if (!bt) throw new Error(`${path}: no backbone tensors`);
  const shapes = (m: Map<string, RawTensor>) => new Map([...m].map(([n, t]) => [n, t.shape]));
  const backbone = loadModule(
    new Backbone({ ...inferBackboneOptions(shapes(bt)), init: 'zeros' }),
    bt,
    `${path} (backbone)`,
  ).eval();
  const owned: Module[] = [backbone];
  try {
    const et = nets.get('estimation');
    const estimation = et
      ? loadModule(
          new AgeEstimation(inferAgeEstimationOptions(shapes(et))),
          et,
          `${path} (estimation)`,
        ).eval()
      : undefined;
    if (estimation) owned.push(estimation);
    const gt = nets.get('generator');
    let generator: AgingModule | undefined;
    if (gt) {
      const groups = estimation?.groups ?? 7;
      const conv1 = gt.get('conv1.0.weight');
      if (!conv1 || conv1.shape.length !== 4)
        throw new Error(`${path}: generator lacks a 4-D conv1.0.weight`);
      let repeat = 0;
      while (gt.has(`transform.${repeat}.conv1.weight`) || gt.has(`transform.${repeat}.conv1.0.weight`))
        repeat++;
      generator = loadModule(
        new AgingModule({
          groups,
          widths: backbone.config.widths,
          unitCount: unitCountFor(conv1.shape[3]!, groups),
          ...(repeat > 0 ? { repeat } : {}),
          init: 'zeros',
        }),
        gt,
        `${path} (generator)`,
      );
      generator.eval();
      owned.push(generator);
    }
    const model = faceModelFromModules({
      backbone,
      ...(estimation ? { estimation } : {}),
      ...(generator ? { generator } : {}),
    });
    return { ...model, source: path, dispose: () => owned.forEach((m) => m.dispose()) };
  } catch (e) {
    owned.forEach((m) => m.dispose());
    throw e;
  }
}

/** A lazily created face aligner (the detector weights load only when --align is used). */
export type Aligner = FaceAligner;
export async function createAligner(): Promise<Aligner> {
  const { FaceAligner } = await import('@mtlface/eval/align');
  return new FaceAligner();
}

/**
 * Reads face images for a model of side `size` — the one preparation embed, verify, eval and age share:
 * decoded, resized with the training loader's kernel (cubic, aspect not kept) and scaled to [-1, 1]. With an
 * aligner each image is first detected, landmarked and warped to the 112 template (112×112 inputs pass
 * through as aligned crops); a failure names the file.
 */
export async function readFaces(
  paths: readonly string[],
  size: number,
  aligner?: Aligner,
): Promise<FaceImages> {
  if (!aligner) return loadFaceImages(paths, size);
  const per = size * size * 3;
  const out = new Float32Array(paths.length * per);
  for (let i = 0; i < paths.length; i++) {
    const a = await aligner.align(paths[i]!);
    const data =
      a.size === size
        ? a.crop
        : new Uint8Array(
            await sharp(a.crop, { raw: { width: a.size, height: a.size, channels: 3 } })
              .resize(size, size, { fit: 'fill', kernel: 'cubic' })
              .raw()
              .toBuffer(),
          );
    toFloatRgb({ data, channels: 3, size }, false, out, i * per);
  }
  return { n: paths.length, size, images: out };
}
