// `mtl-face embed`: the identity embedding of aligned faces, eval mode, optionally summed with the mirror's.
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { Backbone, inferBackboneOptions, readSafetensors, type RawTensor } from '@mtlface/model';
import { initBackend } from '@mtlface/backend';
import { loadFace } from './images.js';
import { checkpointTensorsPath } from './checkpoint-file.js';
import { loadModule } from './face-model.js';
import { reportErrors, backendOption } from './cli.js';

/** The backbone tensors of a checkpoint: a .safetensors file, or a training checkpoint (dir or sidecar). */
export function readBackboneTensors(checkpoint: string): Map<string, RawTensor> {
  const path = checkpointTensorsPath(checkpoint);
  const out = new Map<string, RawTensor>();
  for (const [name, t] of readSafetensors(path).tensors) {
    if (name.startsWith('backbone.')) out.set(name.slice('backbone.'.length), t);
  }
  if (out.size === 0) throw new Error(`${path}: no backbone.* tensors`);
  return out;
}

/** Builds the backbone a checkpoint describes (config inferred from shapes) and loads it, in eval mode. */
export function loadBackbone(checkpoint: string): Backbone {
  const tensors = readBackboneTensors(checkpoint);
  const backbone = new Backbone({
    ...inferBackboneOptions(new Map([...tensors].map(([n, t]) => [n, t.shape]))),
    init: 'zeros',
  });
  return loadModule(backbone, tensors, checkpoint).eval();
}

/** Embeddings [N, D] of the images, in batches; with `flip`, embedding(x) + embedding(mirror(x)). */
export async function embedImages(
  backbone: Backbone,
  paths: string[],
  flip: boolean,
  batch = 16,
): Promise<Float32Array[]> {
  const size = backbone.config.inputSize;
  const out: Float32Array[] = [];
  for (let i = 0; i < paths.length; i += batch) {
    const chunk = paths.slice(i, i + batch);
    const pixels = await Promise.all(chunk.map((p) => loadFace(p, size)));
    const data = new Float32Array(chunk.length * size * size * 3);
    pixels.forEach((px, k) => data.set(px, k * px.length));
    const emb = tf.tidy(() => {
      const x = tf.tensor4d(data, [chunk.length, size, size, 3]);
      const e = backbone.embed(x);
      return flip ? tf.add(e, backbone.embed(tf.reverse(x, 2))) : e;
    });
    const values = (await emb.data()) as Float32Array;
    emb.dispose();
    const d = emb.shape[1]!;
    for (let k = 0; k < chunk.length; k++) out.push(values.slice(k * d, (k + 1) * d));
  }
  return out;
}

export function register(program: Command): void {
  program
    .command('embed')
    .description('print the identity embedding of aligned face images (eval mode; image + mirror summed)')
    .argument('<images...>', 'aligned face crops (resized to the model input, e.g. 112×112)')
    .requiredOption('--checkpoint <c>', '.safetensors weights, or a training checkpoint directory / sidecar')
    .option('--no-flip', 'do not add the mirrored image embedding')
    .option('--json', 'one JSON object per line: {"image", "embedding"}')
    .option('--batch <n>', 'images per forward', '16')
    .addOption(backendOption())
    .action(
      reportErrors(
        'embed',
        async (
          images: string[],
          o: { checkpoint: string; flip: boolean; json?: boolean; batch: string; backend: string },
        ) => {
          const batch = Number(o.batch);
          if (!Number.isInteger(batch) || batch < 1)
            throw new Error(`--batch must be a positive integer, got "${o.batch}"`);
          await initBackend({ backend: o.backend as 'auto', log: (l) => console.error(l) });
          const backbone = loadBackbone(o.checkpoint);
          try {
            const embs = await embedImages(backbone, images, o.flip, batch);
            embs.forEach((e, i) => {
              const values = Array.from(e, (v) => Number(v.toPrecision(7)));
              console.log(
                o.json
                  ? JSON.stringify({ image: images[i], embedding: values })
                  : `${images[i]}\t${values.join(' ')}`,
              );
            });
          } finally {
            backbone.dispose();
          }
        },
      ),
    );
}
