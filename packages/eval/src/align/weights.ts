// Loads the pretrained weights that ship inside the @vladmandic/face-api npm package (MIT licence): tfjs
// weight manifests with uint8-quantised float32 tensors. Nothing is downloaded at run time.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

interface ManifestWeight {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale: number; min: number };
}

/** Directory of the bundled models. */
export function faceApiModelDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
}

/** Reads `<name>-weights_manifest.json` and its shards into named float32 tensors (caller disposes). */
export function loadManifestWeights(name: string, dir = faceApiModelDir()): Map<string, tf.Tensor> {
  const manifestPath = join(dir, `${name}-weights_manifest.json`);
  const groups = JSON.parse(readFileSync(manifestPath, 'utf8')) as Array<{
    paths: string[];
    weights: ManifestWeight[];
  }>;
  const out = new Map<string, tf.Tensor>();
  for (const group of groups) {
    const bytes = Buffer.concat(group.paths.map((p) => readFileSync(join(dir, p))));
    let offset = 0;
    for (const w of group.weights) {
      const size = w.shape.reduce((a, b) => a * b, 1);
      const q = w.quantization;
      let values: Float32Array;
      if (w.dtype !== 'float32')
        throw new Error(`${manifestPath}: ${w.name} has dtype ${w.dtype}, expected float32`);
      if (!q) {
        values = new Float32Array(
          bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + size * 4),
        );
        offset += size * 4;
      } else if (q.dtype === 'uint8') {
        values = new Float32Array(size);
        for (let i = 0; i < size; i++) values[i] = q.min + q.scale * bytes[offset + i]!;
        offset += size;
      } else {
        throw new Error(`${manifestPath}: ${w.name} is quantised as ${q.dtype}; only uint8 is supported`);
      }
      out.set(w.name, tf.tensor(values, w.shape, 'float32'));
    }
    if (offset !== bytes.length) {
      throw new Error(
        `${manifestPath}: the manifest describes ${offset} bytes but the weight files hold ${bytes.length}`,
      );
    }
  }
  return out;
}

export function take<R extends tf.Rank>(
  weights: Map<string, tf.Tensor>,
  name: string,
  rank: number,
): tf.Tensor<R> {
  const t = weights.get(name);
  if (!t) throw new Error(`face model weights: missing ${name}`);
  if (t.rank !== rank)
    throw new Error(`face model weights: ${name} has shape [${t.shape}], expected rank ${rank}`);
  return t as tf.Tensor<R>;
}
