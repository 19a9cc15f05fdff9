// The release's save_models folder ↔ our training checkpoint, for runs kept as YAML configs:
// `mtl-face import-torch --release DIR --iter N --config CFG --out CKPT_DIR` and
// `mtl-face export-torch CKPT --release DIR`. Both build the run's trainer (networks, optimizers,
// scalers) from the config and go through the same reader/writer as training does.
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { DistributedSampler, loadDataset } from '@mtlface/data';
import { TorchTensor, rawToTensor, readTorchPickle } from '@mtlface/model';
import {
  Trainer,
  configHash,
  findLatestCheckpoint,
  loadConfig,
  readCheckpointTensors,
  readReleaseCheckpoint,
  releaseFilePath,
  validateConfig,
  writeCheckpoint,
  writeReleaseCheckpoint,
} from '@mtlface/train';
import { backendOption, reportErrors } from './cli.js';

export interface ImportReleaseOptions {
  release: string;
  iter: number;
  config: string;
  out: string;
  /** World size the checkpoint's sampler position is recorded for (the run that resumes it). */
  worldSize: number;
}

/** The release's files of iteration `iter` → `ckpt-<iter>` in `out` (our checkpoint, resumable). */
export async function importRelease(o: ImportReleaseOptions): Promise<string> {
  const cfg = loadConfig(o.config);
  const dataset = await loadDataset(cfg.data.train_list, {
    root: cfg.data.root,
    ageGroups: cfg.model.groups,
  });
  const headFile = releaseFilePath(o.release, 'head', o.iter);
  const head = [...(readTorchPickle(headFile) as Map<string, unknown>).values()][0];
  if (!(head instanceof TorchTensor) || head.shape.length !== 2)
    throw new Error(`${headFile}: no [classes, dim] weight`);
  if (head.shape[0] !== dataset.numClasses) {
    throw new Error(
      `${headFile}: the head has ${head.shape[0]} classes, ${cfg.data.train_list} has ${dataset.numClasses}`,
    );
  }
  const trainer = new Trainer(cfg, { numClasses: dataset.numClasses, group: null });
  try {
    const state = readReleaseCheckpoint(o.release, o.iter, trainer);
    trainer.loadState(state.tensors, state.meta);
    state.tensors.forEach((t) => t.dispose());
    const sampler = new DistributedSampler({
      size: dataset.files.length,
      batchSize: cfg.data.batch_size,
      worldSize: o.worldSize,
      rank: 0,
      seed: cfg.seed,
    });
    const r = await writeCheckpoint(
      o.out,
      trainer.checkpointTensors(),
      {
        iteration: o.iter,
        mode: cfg.mode,
        ...trainer.checkpointMeta(),
        sampler: { iteration: o.iter, epoch: sampler.position(o.iter).epoch },
        rng: { seed: cfg.seed },
        worldSize: o.worldSize,
        config: cfg,
        configHash: configHash({ ...cfg, resume: false, stop_at: null }),
      },
      Number.MAX_SAFE_INTEGER, // an import never prunes the folder's other checkpoints
    );
    return r.sidecarPath;
  } finally {
    trainer.dispose();
  }
}

/** Our checkpoint (a checkpoint folder or sidecar) → the release's files for its iteration in `release`. */
export async function exportRelease(checkpoint: string, release: string): Promise<string[]> {
  const found = findLatestCheckpoint(checkpoint, (m) => console.warn(m));
  if (!found) throw new Error(`${checkpoint}: no complete checkpoint`);
  const cfg = validateConfig(found.sidecar.config, `${found.sidecarPath} (config)`);
  const raw = readCheckpointTensors(found);
  const head = raw.get('head.weight');
  if (!head) throw new Error(`${found.tensorsPath}: no head.weight`);
  const tensors = new Map([...raw].map(([k, r]) => [k, rawToTensor(r, k)]));
  const trainer = new Trainer(cfg, { numClasses: head.shape[0]!, group: null });
  try {
    trainer.loadState(tensors, found.sidecar);
    return await writeReleaseCheckpoint(release, trainer, found.sidecar.iteration);
  } finally {
    tf.dispose([...tensors.values()]);
    trainer.dispose();
  }
}

function nonNegativeInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a non-negative integer, got "${v}"`);
  return n;
}

/** `import-torch --release`: checks the flags that go with it, then imports. */
export async function runImportRelease(o: {
  release: string;
  iter?: string;
  config?: string;
  out: string;
  worldSize: string;
  backend: string;
}): Promise<void> {
  if (o.iter === undefined) throw new Error('--release needs --iter N (the <module>-N files to read)');
  if (!o.config) throw new Error("--release needs --config (the run's YAML: networks, optimizers, data)");
  const iter = nonNegativeInt('--iter', o.iter);
  const worldSize = nonNegativeInt('--world-size', o.worldSize);
  if (worldSize === 0) throw new Error('--world-size must be at least 1');
  await initBackend({ backend: o.backend as 'cpu', log: () => {} });
  const sidecar = await importRelease({ release: o.release, iter, config: o.config, out: o.out, worldSize });
  console.log(`wrote ${sidecar} (iteration ${iter}; resume with checkpoint_dir=${o.out} resume=true)`);
}

export function register(program: Command): void {
  program
    .command('export-torch')
    .description(
      "write a training checkpoint as the MTLFace release's save_models files (<module>-<iteration>, " +
        'torch.save; the release continues it with --restore_iter)',
    )
    .argument('<checkpoint>', 'checkpoint folder (its newest complete checkpoint) or ckpt-N.json')
    .requiredOption('--release <dir>', 'save_models folder to write into')
    .addOption(backendOption())
    .action(
      reportErrors('export-torch', async (checkpoint: string, o: { release: string; backend: string }) => {
        await initBackend({ backend: o.backend as 'cpu', log: () => {} });
        const files = await exportRelease(checkpoint, o.release);
        console.log(`wrote ${files.length} files: ${files.join(', ')}`);
      }),
    );
}
