#!/usr/bin/env node
// `mtl-data`: dataset preparation. Subcommands live in @mtlface/data; this file only wires them.
import { Command, InvalidArgumentError } from 'commander';
import {
  createProgress,
  datasetDifficulty,
  fromBin,
  fromRec,
  generatorDifficulty,
  type Progress,
  synthImages,
  synthesize,
} from '@mtlface/data';
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
    '--stats',
    'measure pixel distances: same identity across ≥20 years vs different identities at the same age',
  )
  .action(async (o) => {
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

try {
  await program.parseAsync(process.argv);
} catch (err) {
  console.error(`mtl-data: ${(err as Error).message}`);
  process.exit(1);
}
