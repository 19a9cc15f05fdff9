// `mtl-face embed`: the identity embedding of aligned faces, eval mode, optionally summed with the mirror's.
import type { Command } from 'commander';
import { Backbone, inferBackboneOptions, readSafetensors, type RawTensor } from '@mtlface/model';
import { initBackend } from '@mtlface/backend';
import { row } from '@mtlface/eval';
import { embedImages as embedFaces, faceModelFromModules } from '@mtlface/eval/model';
import { createAligner, loadModule, readFaces, type Aligner } from './face-model.js';
import { checkpointTensorsPath } from './checkpoint-file.js';
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

/**
 * Embeddings [N, D] of face images, in batches; with `flip`, embedding(x) + embedding(mirror(x)). The images
 * are read by `readFaces`, the one preparation verify, eval and age use too (aligned first with `aligner`).
 */
export async function embedImages(
  backbone: Backbone,
  paths: string[],
  flip: boolean,
  batch = 16,
  aligner?: Aligner,
): Promise<Float32Array[]> {
  const faces = await readFaces(paths, backbone.config.inputSize, aligner);
  const set = embedFaces(faceModelFromModules({ backbone }), faces, { mirror: flip, batchSize: batch });
  return Array.from({ length: set.n }, (_, i) => Float32Array.from(row(set, i)));
}

export function register(program: Command): void {
  program
    .command('embed')
    .description('print the identity embedding of aligned face images (eval mode; image + mirror summed)')
    .argument('<images...>', 'aligned face crops (resized to the model input, e.g. 112×112)')
    .requiredOption('--checkpoint <c>', '.safetensors weights, or a training checkpoint directory / sidecar')
    .option('--no-flip', 'do not add the mirrored image embedding')
    .option('--json', 'one JSON object per line: {"image", "embedding"}')
    .option('--align', 'detect and align the faces first (112×112 inputs pass through as aligned crops)')
    .option('--batch <n>', 'images per forward', '16')
    .addOption(backendOption())
    .action(
      reportErrors(
        'embed',
        async (
          images: string[],
          o: {
            checkpoint: string;
            flip: boolean;
            json?: boolean;
            align?: boolean;
            batch: string;
            backend: string;
          },
        ) => {
          const batch = Number(o.batch);
          if (!Number.isInteger(batch) || batch < 1)
            throw new Error(`--batch must be a positive integer, got "${o.batch}"`);
          await initBackend({ backend: o.backend as 'auto', log: (l) => console.error(l) });
          const backbone = loadBackbone(o.checkpoint);
          const aligner = o.align ? await createAligner() : undefined;
          try {
            const embs = await embedImages(backbone, images, o.flip, batch, aligner);
            embs.forEach((e, i) => {
              const values = Array.from(e, (v) => Number(v.toPrecision(7)));
              console.log(
                o.json
                  ? JSON.stringify({ image: images[i], embedding: values })
                  : `${images[i]}\t${values.join(' ')}`,
              );
            });
          } finally {
            aligner?.dispose();
            backbone.dispose();
          }
        },
      ),
    );
}
