// Shared by the training end-to-end tests: a tiny synthetic set and the tiny demo-design config.
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesize } from '@mtlface/data';

export const REPO = new URL('../', import.meta.url).pathname;

/** The demo design at test size, as key=value overrides of configs/demo.yaml. */
export const TINY = [
  'model.arch={units: [1, 1, 1, 1], widths: [16, 16, 16, 16]}',
  'model.input_size=16',
  'model.embedding_dim=16',
  'model.generator_units=8',
  'model.discriminator_dim=8',
  'model.discriminator_repeat=2',
  'data.batch_size=4',
  'data.loader_threads=1',
  'backend=auto',
  'val_interval=0',
];

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
