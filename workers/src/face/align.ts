// `mtl-face align PHOTO... --out DIR`: detect the one face of each photo (over the detector pyramid), find
// five landmarks and warp it to the insightface 112×112 template. 112×112 inputs are aligned crops already
// and pass through. Photos with no face or several faces are reported by name.
import { mkdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import sharp from 'sharp';
import { initBackend } from '@mtlface/backend';
import { AlignError } from '@mtlface/eval/align';
import { createAligner } from './face-model.js';
import { reportErrors, backendOption } from './cli.js';

interface AlignCliOptions {
  out: string;
  size: string;
  detectorSize?: string;
  largest?: boolean;
  aligned?: boolean;
  json?: boolean;
  backend: string;
}

export function register(program: Command): void {
  program
    .command('align')
    .description(
      'detect, landmark and align faces to the insightface 112×112 template (bundled detector weights)',
    )
    .argument('<images...>', 'photos with one face each')
    .requiredOption('--out <dir>', 'directory for the aligned crops (<name>.png)')
    .option('--size <px>', 'crop side (the template is scaled)', '112')
    .option(
      '--detector-size <px>',
      'one detector input side, a multiple of 32, instead of searching 128, 224, 320, 416 and 608',
    )
    .option('--largest', 'with several faces, align the largest instead of failing')
    .option('--aligned', 'the inputs are aligned crops of any size: resize them, do not detect')
    .option('--no-aligned', 'detect even in 112×112 inputs (by default they are taken as aligned crops)')
    .option('--json', 'one JSON object per image')
    .addOption(backendOption())
    .action(reportErrors('align', run));
}

async function run(images: string[], o: AlignCliOptions): Promise<void> {
  const size = Number(o.size);
  const detectorSize = o.detectorSize === undefined ? undefined : Number(o.detectorSize);
  if (!Number.isInteger(size) || size < 16)
    throw new Error(`--size must be an integer ≥ 16, got "${o.size}"`);
  if (
    detectorSize !== undefined &&
    (!Number.isInteger(detectorSize) || detectorSize < 32 || detectorSize % 32 !== 0)
  ) {
    throw new Error(`--detector-size must be a positive multiple of 32, got "${o.detectorSize}"`);
  }
  await initBackend({ backend: o.backend as 'auto', log: (l) => console.error(l) });
  mkdirSync(o.out, { recursive: true });
  const aligner = await createAligner();
  let failed = 0;
  try {
    for (const image of images) {
      const out = join(o.out, `${basename(image, extname(image))}.png`);
      try {
        const a = await aligner.align(image, {
          size,
          ...(detectorSize !== undefined ? { detectorSize } : {}),
          ...(o.aligned !== undefined ? { aligned: o.aligned } : {}),
          largest: o.largest ?? false,
        });
        await sharp(Buffer.from(a.crop), { raw: { width: size, height: size, channels: 3 } })
          .png()
          .toFile(out);
        const points = a.points.map(([x, y]) => [Number(x.toFixed(1)), Number(y.toFixed(1))]);
        if (o.json)
          console.log(
            JSON.stringify({
              image,
              out,
              passthrough: a.passthrough,
              score: a.box.score,
              box: a.box,
              points,
            }),
          );
        else if (a.passthrough) console.log(`${image}: aligned crop, passed through → ${out}`);
        else console.log(`${image}: face ${(100 * a.box.score).toFixed(0)}% → ${out}`);
      } catch (e) {
        failed++;
        const reason = e instanceof AlignError ? e.reason : 'error';
        if (o.json) console.log(JSON.stringify({ image, error: reason, message: (e as Error).message }));
        else console.error(`${(e as Error).message}`);
      }
    }
  } finally {
    aligner.dispose();
  }
  if (failed > 0) {
    console.error(`${failed} of ${images.length} images not aligned`);
    process.exitCode = 1;
  }
}
