#!/usr/bin/env node
// The built-in training worker: `worker.ts <config.yaml> [key=value ...] [--resume]`, or the MTLFace
// release's flags (`worker.ts --train_fr --backbone_name ir50 ...`, see worker-args.ts).
// mtl-launch runs it in every worker with the launcher's environment (RANK, WORLD_SIZE, ...).
import { reportFailure } from './errors.js';
import { parseWorkerArgs } from './worker-args.js';
import { runTraining } from './train/run.js';

const rankPrefix = process.env.RANK !== undefined ? `[rank ${process.env.RANK}] ` : '';
try {
  const args = parseWorkerArgs(process.argv.slice(2));
  if ('help' in args) {
    console.log(args.help);
    process.exit(0);
  }
  await runTraining(args.config, { resume: args.resume });
  process.exit(0);
} catch (err) {
  process.exit(reportFailure(err, rankPrefix));
}
