// Embedding a set of faces in batches, optionally as the sum with the mirrored face (insightface's flip test).
import * as tf from '@tensorflow/tfjs-core';
import type { EmbeddingSet } from '../similarity.js';
import type { FaceModel } from './face-model.js';
import type { FaceImages } from './images.js';

export interface EmbedOptions {
  /** add the embedding of the left-right mirrored image (default true) */
  mirror?: boolean;
  /** images per forward pass (default 32) */
  batchSize?: number;
  /** called after each batch with the number of images done */
  onProgress?: (done: number, total: number) => void;
}

export function embedImages(model: FaceModel, set: FaceImages, opts: EmbedOptions = {}): EmbeddingSet {
  if (set.size !== model.inputSize) {
    throw new Error(
      `embedImages: images are ${set.size}×${set.size} but the model takes ${model.inputSize}×${model.inputSize}`,
    );
  }
  const mirror = opts.mirror ?? true;
  const batchSize = opts.batchSize ?? 32;
  const per = set.size * set.size * 3;
  let data: Float32Array | undefined;
  let dim = 0;
  for (let start = 0; start < set.n; start += batchSize) {
    const m = Math.min(batchSize, set.n - start);
    const emb = tf.tidy(() => {
      const x = tf.tensor4d(set.images.subarray(start * per, (start + m) * per), [m, set.size, set.size, 3]);
      const e = model.embed(x);
      return mirror ? tf.add(e, model.embed(tf.reverse(x, 2))) : e;
    });
    const values = emb.dataSync() as Float32Array;
    dim = emb.shape[1] ?? 0;
    emb.dispose();
    data ??= new Float32Array(set.n * dim);
    data.set(values, start * dim);
    opts.onProgress?.(start + m, set.n);
  }
  return { n: set.n, dim, data: data ?? new Float32Array(0) };
}
