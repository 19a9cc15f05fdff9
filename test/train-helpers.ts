// Shared by the training end-to-end tests: a tiny synthetic set and the tiny demo-design config.
import { fileURLToPath } from 'node:url';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesize } from '@mtlface/data';
import { loadConfig, type TrainConfig } from '@mtlface/train';
import { TINY_MODEL } from '../packages/train/test/helpers.js';

export const REPO = fileURLToPath(new URL('../', import.meta.url));

/** The demo design at test size, as key=value overrides of configs/demo.yaml. */
export const TINY = [...TINY_MODEL, 'data.loader_threads=1', 'backend=auto', 'val_interval=0'];

let cached: string | null = null;

/** A small synthetic cross-age set (16 px), generated once per test process. */
export async function tinySynth(): Promise<string> {
  if (cached && existsSync(join(cached, 'train.txt'))) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'mtl-train-synth-'));
  await synthesize({
    out: dir,
    identities: 20,
    imagesPerIdentity: 8,
    size: 16,
    seed: 3,
    pairs: 40,
    threads: 1,
  });
  cached = dir;
  return dir;
}

export function dataOverrides(dir: string): string[] {
  return [`data.root=${dir}`, `data.train_list=${join(dir, 'train.txt')}`];
}

/** A run of the tiny design: 6 iterations, a checkpoint every 3 into `dir`, then `extra` overrides. */
export function sixIterationRun(data: string, dir: string, extra: string[] = []): TrainConfig {
  return loadConfig(join(REPO, 'configs/demo.yaml'), [
    ...TINY,
    ...dataOverrides(data),
    'iterations=6',
    'checkpoint_interval=3',
    `checkpoint_dir=${dir}`,
    ...extra,
  ]);
}

/** runTraining options of an in-process, single-rank, silent run. */
export const QUIET_RUN = { log: () => {}, env: {}, skipBackendInit: true, group: null };
