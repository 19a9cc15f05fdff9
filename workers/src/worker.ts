#!/usr/bin/env node
// The built-in training worker: `worker.ts <config.yaml> [key=value ...] [--resume]`.
// mtl-launch runs it in every worker with the launcher's environment (RANK, WORLD_SIZE, ...).
import { loadConfig } from '@mtlface/train';
import { reportFailure } from './errors.js';
import { runTraining } from './train/run.js';

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith('--')));
const positional = args.filter((a) => !a.startsWith('--'));
const [configFile, ...overrides] = positional;
const unknown = [...flags].filter((f) => f !== '--resume');
if (!configFile || unknown.length > 0) {
  console.error(
    `usage: worker <config.yaml> [key=value ...] [--resume]${unknown.length ? ` (unknown flag ${unknown.join(', ')})` : ''}`,
  );
  process.exit(2);
}
const rankPrefix = process.env.RANK !== undefined ? `[rank ${process.env.RANK}] ` : '';
try {
  const cfg = loadConfig(configFile, overrides);
  await runTraining(cfg, { resume: flags.has('--resume') });
  process.exit(0);
} catch (err) {
  process.exit(reportFailure(err, rankPrefix));
}
