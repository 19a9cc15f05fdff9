// `mtl-face verify a b`: cosine similarity of two faces and the same/different decision at a threshold,
// saying where the threshold came from (given, or the best 10-fold threshold on a pairs list).
import type { Command } from 'commander';
import { initBackend } from '@mtlface/backend';
import { cosineSimilarity, row } from '@mtlface/eval';
import { embedImages, evaluatePairs, loadPairsSet } from '@mtlface/eval/model';
import { createAligner, loadFaceModel, readFaces, type Aligner } from './face-model.js';
import { reportErrors, backendOption } from './cli.js';

interface VerifyOptions {
  checkpoint: string;
  threshold?: string;
  pairs?: string;
  align?: boolean;
  flip: boolean;
  judge?: string;
  json?: boolean;
  backend: string;
}

export function register(program: Command): void {
  program
    .command('verify')
    .description('are two faces the same person? cosine similarity and a decision at a threshold')
    .argument('<a>', 'first face image')
    .argument('<b>', 'second face image')
    .requiredOption('--checkpoint <c>', '.safetensors weights, or a training checkpoint directory / sidecar')
    .option('--threshold <t>', 'decision threshold on the cosine similarity')
    .option('--pairs <file>', 'take the best 10-fold threshold on this pairs list instead')
    .option('--align', 'detect and align the faces first (for photos that are not 112×112 crops)')
    .option('--no-flip', 'do not add the mirrored image embedding')
    .option(
      '--judge <name>',
      'a second opinion from an independent real-world matcher: face-api (its 128-D ResNet, same when distance < 0.6)',
    )
    .option('--json', 'print one JSON object')
    .addOption(backendOption())
    .action(reportErrors('verify', run));
}

async function run(a: string, b: string, o: VerifyOptions): Promise<void> {
  if (o.threshold !== undefined && o.pairs !== undefined)
    throw new Error('give --threshold or --pairs, not both');
  await initBackend({ backend: o.backend as 'auto', log: (l) => console.error(l) });
  const model = loadFaceModel(o.checkpoint);
  const aligner = o.align ? await createAligner() : undefined;
  try {
    const faces = await readFaces([a, b], model.inputSize, aligner);
    const emb = embedImages(model, faces, { mirror: o.flip });
    const similarity = cosineSimilarity(row(emb, 0), row(emb, 1));
    let threshold: number | undefined;
    let source = 'none: pass --threshold or --pairs for a decision';
    if (o.threshold !== undefined) {
      threshold = Number(o.threshold);
      if (!Number.isFinite(threshold)) throw new Error(`--threshold must be a number, got "${o.threshold}"`);
      source = '--threshold';
    } else if (o.pairs !== undefined) {
      const set = await loadPairsSet(o.pairs, { size: model.inputSize });
      const v = evaluatePairs(model, set, { mirror: o.flip }).verification;
      threshold = v.bestThreshold;
      source = `best threshold on ${o.pairs} (${v.pairs} pairs, accuracy ${(100 * v.bestAccuracy).toFixed(2)}%)`;
    }
    const same = threshold === undefined ? undefined : similarity > threshold;
    const judge = o.judge === undefined ? undefined : await secondOpinion(o.judge, [a, b], aligner);
    if (o.json) {
      console.log(
        JSON.stringify({
          a,
          b,
          similarity,
          threshold: threshold ?? null,
          thresholdSource: source,
          same: same ?? null,
          ...(judge ? { judge } : {}),
        }),
      );
    } else {
      console.log(`similarity  ${similarity.toFixed(4)}`);
      console.log(`threshold   ${threshold === undefined ? '-' : threshold.toFixed(4)} (${source})`);
      if (same !== undefined) console.log(`decision    ${same ? 'same person' : 'different people'}`);
      if (judge) {
        console.log(
          `${judge.name}: distance ${judge.distance.toFixed(4)} (same below ${judge.maxDistance}) → ` +
            `${judge.same ? 'same person' : 'different people'}`,
        );
      }
    }
  } finally {
    aligner?.dispose();
    model.dispose();
  }
}

/** The independent matcher's decision on two faces, read by the same preparation at the 112 px crop side. */
async function secondOpinion(
  name: string,
  paths: string[],
  aligner: Aligner | undefined,
): Promise<{ name: string; distance: number; maxDistance: number; same: boolean }> {
  if (name !== 'face-api') throw new Error(`--judge: unknown judge "${name}" (available: face-api)`);
  const { FaceRecognitionNet, describeFaces, FACE_API_MATCH_DISTANCE } = await import('@mtlface/eval/judges');
  const { embeddingDistance } = await import('@mtlface/eval');
  const net = new FaceRecognitionNet();
  try {
    const d = describeFaces(net, await readFaces(paths, 112, aligner));
    const distance = embeddingDistance(d, 0, d, 1);
    return {
      name: 'face-api',
      distance,
      maxDistance: FACE_API_MATCH_DISTANCE,
      same: distance < FACE_API_MATCH_DISTANCE,
    };
  } finally {
    net.dispose();
  }
}
