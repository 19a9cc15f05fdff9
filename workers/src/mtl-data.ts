#!/usr/bin/env node
// `mtl-data`: dataset preparation. Subcommands live in @mtlface/data; this file only wires them.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import {
  annotateImageFolder,
  createProgress,
  datasetDifficulty,
  fromBin,
  fromRec,
  generatorDifficulty,
  type LabelEstimator,
  type Progress,
  synthImages,
  synthesize,
  BENCH64,
} from '@mtlface/data';
import { backendOption } from './face/cli.js';
import { workersVersion } from './version.js';

function int(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got "${v}"`);
    return n;
  };
}

const program = new Command('mtl-data')
  .description('Prepare MTLFace datasets')
  .version(workersVersion(), '--version');

program
  .command('synth')
  .description('render the synthetic cross-age face set (annotation lists, pairs, identity-disjoint split)')
  .requiredOption('--out <dir>', 'output directory')
  .option('--identities <n>', 'identities', int('--identities', 2), 300)
  .option(
    '--images-per-identity <m>',
    'images per identity (ages spread over 1–80)',
    int('--images-per-identity', 2),
    15,
  )
  .option('--size <px>', 'image side in pixels', int('--size', 16), 64)
  .option('--seed <k>', 'seed (same seed → byte-identical files)', int('--seed', 0), 0)
  .option('--pairs <n>', 'verification pairs (half positive)', int('--pairs', 0), 3000)
  .option('--test-fraction <f>', 'fraction of identities held out', (v) => Number(v), 0.2)
  .option('--threads <n>', 'worker threads (default: cores)', int('--threads', 1))
  .option(
    '--preset <name>',
    "a fixed set: 'bench64' (the 64 px benchmark of packages/eval/EXPERIMENTS.md; sets every option above but --out/--threads)",
  )
  .option(
    '--stats',
    'measure pixel distances: same identity across ≥20 years vs different identities at the same age',
  )
  .action(async (o) => {
    if (o.preset !== undefined && o.preset !== 'bench64')
      throw new Error(`mtl-data synth: --preset must be 'bench64', got '${o.preset}'`);
    if (o.preset === 'bench64') Object.assign(o, BENCH64);
    const progress = createProgress('synth', o.identities);
    const r = await synthesize({
      out: o.out,
      identities: o.identities,
      imagesPerIdentity: o.imagesPerIdentity,
      size: o.size,
      seed: o.seed,
      pairs: o.pairs,
      testFraction: o.testFraction,
      threads: o.threads,
      ...(o.ageCues !== undefined ? { ageCues: o.ageCues } : {}),
      onProgress: (d) => progress.update(d),
    });
    progress.stop();
    console.log(
      `synth: ${r.images} images (${r.trainIdentities} train / ${r.testIdentities} test identities), ` +
        `${r.positivePairs}+${r.negativePairs} pairs, ${(r.bytes / 1e6).toFixed(1)} MB in ${(r.elapsedMs / 1000).toFixed(1)} s → ${o.out}`,
    );
    if (o.stats) {
      const clean = await generatorDifficulty(o.seed);
      const disk = await datasetDifficulty(o.out, synthImages(o.seed, o.identities, o.imagesPerIdentity));
      const fmt = (s: typeof clean): string =>
        `same id ≥20 y apart ${s.sameIdentityCrossAge.toFixed(1)}, different id same age ${s.differentIdentitySameAge.toFixed(1)}, ratio ${s.ratio.toFixed(2)} (${s.pairs} pairs)`;
      console.log(`synth stats (RMS pixel distance, 0–255), clean renders: ${fmt(clean)}`);
      console.log(`synth stats (RMS pixel distance, 0–255), written images: ${fmt(disk)}`);
    }
  });

program
  .command('from-rec')
  .description(
    'extract an insightface RecordIO set (train.rec + train.idx) to <label:6>/<index:8>.jpg; resumable',
  )
  .argument('<dir>', 'directory holding train.rec and train.idx')
  .requiredOption('--out <dir>', 'output directory')
  .action(async (dir: string, o: { out: string }) => {
    let progress: Progress | undefined;
    const r = await fromRec({
      dir,
      out: o.out,
      onProgress: (d, total) => {
        progress ??= createProgress('from-rec', total);
        progress.update(d);
      },
    });
    progress?.stop();
    console.log(
      `from-rec: ${r.images} images (${r.written} written now, ${r.images - r.written} already there) → ${o.out}`,
    );
  });

program
  .command('from-bin')
  .description('extract an insightface verification set (.bin) to 00001.jpg… and pairs.txt (a b 1|-1)')
  .argument('<file>', 'the .bin file (e.g. lfw.bin, agedb_30.bin)')
  .requiredOption('--out <dir>', 'output directory')
  .action(async (file: string, o: { out: string }) => {
    let progress: Progress | undefined;
    const r = await fromBin(file, o.out, (d, total) => {
      progress ??= createProgress('from-bin', total);
      progress.update(d);
    });
    progress?.stop();
    console.log(`from-bin: ${r.images} images, ${r.pairs} pairs (${r.positives} same) → ${o.out}`);
  });

let backendReady = false;
/** tfjs on the fastest backend here (or the one asked for), once per process, loaded only by commands that use it. */
async function useBackend(backend: string): Promise<void> {
  if (backendReady) return;
  const { initBackend } = await import('@mtlface/backend');
  await initBackend({ backend: backend as 'auto', log: (l) => console.error(l) });
  backendReady = true;
}

/** face-api's age/gender network as the estimator. */
async function faceApiEstimator(backend: string): Promise<{ estimate: LabelEstimator; dispose(): void }> {
  await useBackend(backend);
  const { FaceApiLabeller } = await import('@mtlface/eval/judges');
  const labeller = new FaceApiLabeller();
  return { estimate: (paths) => labeller.label(paths), dispose: () => labeller.dispose() };
}

/** Runs annotate with a progress bar and prints its summary. */
async function annotateWithProgress(o: {
  root: string;
  out: string;
  ages?: string;
  batch: number;
  backend: string;
}): Promise<void> {
  let progress: Progress | undefined;
  const estimator = await faceApiEstimator(o.backend);
  const started = Date.now();
  try {
    const r = await annotateImageFolder({
      root: o.root,
      out: o.out,
      estimate: estimator.estimate,
      batchSize: o.batch,
      ...(o.ages ? { published: o.ages } : {}),
      onProgress: (d, total) => {
        progress ??= createProgress('annotate', total);
        progress.update(d);
      },
    });
    progress?.stop();
    const seconds = (Date.now() - started) / 1000;
    for (const u of r.unreadable) console.error(`annotate: ${u.file}: unreadable, skipped (${u.reason})`);
    console.log(
      `annotate: ${r.images - r.unreadable.length} images of ${r.identities} identities → ${r.out} ` +
        `(${r.estimated} estimated in ${seconds.toFixed(1)} s, ${r.fromPublished} from ${o.ages ?? 'no published list'}, ` +
        `${r.resumed} from an earlier run); ids → ${r.identityMap}` +
        (r.unreadableList ? `; ${r.unreadable.length} unreadable → ${r.unreadableList}` : ''),
    );
  } finally {
    estimator.dispose();
  }
}

program
  .command('annotate')
  .description(
    'write the release\'s "id filename age gender" list (1 = male) for an <identity>/<file> tree of face crops; ' +
      "ages and genders from face-api's age/gender network; resumable",
  )
  .argument('<dir>', 'the image tree: one folder per identity (what from-rec and from-folder write)')
  .requiredOption(
    '--out <list>',
    'the list to write (paths relative to <dir>); ids go to <list>.identities.txt',
  )
  .option(
    '--ages <file>',
    "a published list (the release's annotations): its ages and genders where file names match",
  )
  .option('--batch <n>', 'images per network call', int('--batch', 1), 64)
  .addOption(backendOption())
  .action((dir: string, o: { out: string; ages?: string; batch: number; backend: string }) =>
    annotateWithProgress({ root: dir, ...o }),
  );

program
  .command('from-folder')
  .description(
    'detect and align the faces of an <identity>/<photo> tree (any size, JPEG/PNG/WebP, EXIF orientation) to ' +
      '112×112 insightface crops in <out>/<identity>/, then annotate them into <out>/all.txt; resumable',
  )
  .argument('<photos>', 'one folder per person, as torchvision ImageFolder')
  .requiredOption('--out <dir>', 'output directory')
  .option(
    '--all-faces',
    'keep every face of a photo (<stem>-1.jpg, … beside the largest), not only the largest',
  )
  .option('--aligned', 'the photos are aligned crops already: resize them, do not detect')
  .option('--no-annotate', 'only align; annotate later with `mtl-data annotate <out> --out <out>/all.txt`')
  .option(
    '--ages <file>',
    'for annotate: a published list whose ages and genders are taken where file names match',
  )
  .option('--batch <n>', 'for annotate: images per network call', int('--batch', 1), 64)
  .addOption(backendOption())
  .action(
    async (
      photos: string,
      o: {
        out: string;
        allFaces?: boolean;
        aligned?: boolean;
        annotate: boolean;
        ages?: string;
        batch: number;
        backend: string;
      },
    ) => {
      await useBackend(o.backend);
      const { FaceAligner, alignImageFolder } = await import('@mtlface/eval/align');
      const aligner = new FaceAligner();
      let progress: Progress | undefined;
      const r = await alignImageFolder({
        photos,
        out: o.out,
        aligner,
        allFaces: o.allFaces ?? false,
        ...(o.aligned ? { align: { aligned: true } } : {}),
        onProgress: (d, total) => {
          progress ??= createProgress('from-folder', total);
          progress.update(d);
        },
      }).finally(() => aligner.dispose());
      progress?.stop();
      const write = (name: string, lines: string[]) => {
        const path = join(o.out, name);
        if (lines.length > 0) writeFileSync(path, lines.map((l) => `${l}\n`).join(''));
        else rmSync(path, { force: true });
        return path;
      };
      for (const f of r.noFace) console.error(`from-folder: ${f}: no face found`);
      for (const u of r.unreadable)
        console.error(`from-folder: ${u.file}: unreadable, skipped (${u.reason})`);
      const noFace = write('no-face.txt', r.noFace);
      const unreadable = write(
        'unreadable-photos.txt',
        r.unreadable.map((u) => `${u.file}\t${u.reason}`),
      );
      console.log(
        `from-folder: ${r.written + r.kept} of ${r.photos} photos aligned → ${o.out} (${r.kept} from an earlier run; ` +
          `${r.severalFaces.length} with several faces: ${o.allFaces ? 'all kept' : 'the largest taken'})` +
          (r.noFace.length ? `; ${r.noFace.length} without a face → ${noFace}` : '') +
          (r.unreadable.length ? `; ${r.unreadable.length} unreadable → ${unreadable}` : ''),
      );
      if (o.annotate) {
        await annotateWithProgress({
          root: o.out,
          out: join(o.out, 'all.txt'),
          batch: o.batch,
          backend: o.backend,
          ...(o.ages ? { ages: o.ages } : {}),
        });
      }
    },
  );

try {
  await program.parseAsync(process.argv);
} catch (err) {
  console.error(`mtl-data: ${(err as Error).message}`);
  process.exit(1);
}
