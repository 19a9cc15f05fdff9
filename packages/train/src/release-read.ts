// Reading the release's save_models files into the trainer's checkpoint names (release-files.ts
// says which files a mode has). Every file is checked before anything is returned; errors name the
// file and the first offending key.
import { existsSync } from 'node:fs';
import type * as tf from '@tensorflow/tfjs-core';
import type { PickleValue } from '@mtlface/pickle';
import {
  TorchTensor,
  importTorchState,
  rawToFloat32,
  readTorchPickle,
  readTorchWeights,
  tensorFromTorch,
  torchShape,
  torchStateToOurs,
  type Module,
  type RawTensor,
  type StateEntry,
} from '@mtlface/model';
import type { Trainer } from './trainer.js';
import type { LossScaler, LossScalerState } from './loss-scaler.js';
import { Adam, SGD, type Optimizer } from './optim.js';
import type { ResumeMeta } from './checkpoint.js';
import {
  RELEASE_OPTIMIZER_FILES,
  RELEASE_NETWORK_FILES,
  paramEntries,
  releaseFilePath,
  releaseFilesRead,
  releasePlan,
} from './release-files.js';

class ReleaseFileError extends Error {
  constructor(file: string, what: string) {
    super(`${file}: ${what}`);
  }
}

function asMap(v: PickleValue, file: string, key: string): Map<PickleValue, PickleValue> {
  if (!(v instanceof Map)) throw new ReleaseFileError(file, `${key} is not a dict`);
  return v;
}

/** A module state dict (names with the release's `module.` removed, as its load_network does). */
function readStateDict(file: string): Map<string, RawTensor> {
  const value = asMap(readTorchPickle(file), file, 'the file');
  const out = new Map<string, RawTensor>();
  for (const [k, v] of value) {
    if (typeof k !== 'string') throw new ReleaseFileError(file, `key ${String(k)} is not a name`);
    if (!(v instanceof TorchTensor)) throw new ReleaseFileError(file, `'${k}' is not a tensor`);
    out.set(k.replaceAll('module.', ''), v);
  }
  if (out.size === 0) throw new ReleaseFileError(file, 'empty state dict');
  return out;
}

const OPTIMIZER_SLOTS: Record<string, readonly string[]> = {
  SGD: ['momentum_buffer'],
  Adam: ['step', 'exp_avg', 'exp_avg_sq'],
};

function numberOf(v: PickleValue, file: string, key: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof TorchTensor && v.shape.length === 0) return rawToFloat32(v, key)[0]!;
  throw new ReleaseFileError(file, `${key} is not a number`);
}

/**
 * An optimizer state dict → our slots (checkpoint names, our layouts) and its step count. The
 * release numbers parameters in `parameters()` order of its networks, which is ours (tested).
 */
function readOptimizer(
  file: string,
  iteration: number,
  optimizer: Optimizer,
  entries: StateEntry[],
  out: Map<string, tf.Tensor>,
): number {
  const kind = optimizer instanceof Adam ? 'Adam' : 'SGD';
  const slots = OPTIMIZER_SLOTS[kind]!;
  const value = asMap(readTorchPickle(file), file, 'the file');
  const groups = value.get('param_groups');
  if (!Array.isArray(groups) || groups.length !== 1)
    throw new ReleaseFileError(file, 'param_groups is not a list of one group (the release uses one)');
  const ids = asMap(groups[0]!, file, 'param_groups[0]').get('params');
  const n = optimizer.params.length;
  if (!Array.isArray(ids) || ids.length !== n || ids.some((id, i) => Number(id) !== i)) {
    const len = Array.isArray(ids) ? ids.length : 'no';
    throw new ReleaseFileError(
      file,
      `param_groups[0].params lists ${len} parameters, this model's ${kind} has ${n} (0..${n - 1})`,
    );
  }
  const state = asMap(value.get('state') ?? null, file, 'state');
  const staged = new Map<string, tf.Tensor>();
  const steps = new Set<number>();
  try {
    for (let i = 0; i < n && state.size > 0; i++) {
      const p = optimizer.params[i]!;
      const s = state.get(i);
      if (s === undefined) throw new ReleaseFileError(file, `state.${i} (${p.name}) is missing`);
      const st = asMap(s, file, `state.${i}`);
      for (const k of st.keys()) {
        if (!slots.includes(String(k)))
          throw new ReleaseFileError(
            file,
            `state.${i}.${String(k)} (${p.name}) is not a ${kind} slot we keep`,
          );
      }
      for (const slot of slots) {
        const key = `state.${i}.${slot}`;
        const t = st.get(slot);
        if (slot === 'step') {
          steps.add(numberOf(t ?? null, file, key));
          continue;
        }
        // torch keeps a None buffer for SGD without momentum; ours keeps no slot then
        if (t === null && optimizer instanceof SGD && optimizer.momentum === 0) continue;
        if (!(t instanceof TorchTensor)) throw new ReleaseFileError(file, `${key} (${p.name}) is missing`);
        const e = entries[i]!;
        const want = torchShape(e.tensor.shape, e.layout);
        if (t.shape.length !== want.length || t.shape.some((d, j) => d !== want[j]))
          throw new ReleaseFileError(file, `${key} (${p.name}) has shape [${t.shape}], expected [${want}]`);
        staged.set(`optim.${optimizer.name}.${p.name}.${slot}`, tensorFromTorch(t, e.tensor, e.layout, key));
      }
    }
    if (steps.size > 1)
      throw new ReleaseFileError(file, `parameters were stepped different numbers of times (${[...steps]})`);
  } catch (e) {
    staged.forEach((t) => t.dispose());
    throw e;
  }
  for (const [k, t] of staged) out.set(k, t);
  // SGD's state has no step count (its update needs none): the release steps once per iteration.
  return steps.size === 1 ? [...steps][0]! : state.size > 0 ? iteration : 0;
}

function readScaler(file: string, scaler: LossScaler): LossScalerState {
  const value = asMap(readTorchPickle(file), file, 'the file');
  if (!scaler.enabled) return scaler.state();
  if (value.size === 0) {
    throw new ReleaseFileError(
      file,
      'empty GradScaler state (saved with amp off); set amp: false or restore a run that used amp',
    );
  }
  const scale = numberOf(value.get('scale') ?? null, file, 'scale');
  const tracker = numberOf(value.get('_growth_tracker') ?? null, file, '_growth_tracker');
  if (!(scale > 0) || !Number.isInteger(tracker) || tracker < 0)
    throw new ReleaseFileError(file, `scale ${scale} / _growth_tracker ${tracker} is not a scaler state`);
  return { scale, growthTracker: tracker };
}

/** The release's checkpoint as the trainer's checkpoint tensors (caller disposes) and meta. */
export interface ReleaseState {
  tensors: Map<string, tf.Tensor>;
  meta: ResumeMeta;
}

/**
 * Reads `<dir>/<module>-<iteration>` for the trainer's mode. Every file is checked (present, a
 * torch.save zip, names and shapes of this model) before anything is returned; errors name the
 * file and the first offending key. Model, optimizer slots, step counts and scaler states.
 */
export function readReleaseCheckpoint(dir: string, iteration: number, trainer: Trainer): ReleaseState {
  const p = releasePlan(trainer.cfg.mode);
  for (const stem of releaseFilesRead(trainer.cfg.mode)) {
    const f = releaseFilePath(dir, stem, iteration);
    if (!existsSync(f))
      throw new ReleaseFileError(f, `missing (restore_iter ${iteration} reads ${stem}-${iteration})`);
  }
  const tensors = new Map<string, tf.Tensor>();
  try {
    const modules = new Map(trainer.nets.modules());
    for (const net of p.networks) {
      const file = releaseFilePath(dir, RELEASE_NETWORK_FILES[net], iteration);
      const ours = torchStateToOurs(modules.get(net)!, readStateDict(file), { where: file });
      for (const [k, t] of ours) tensors.set(`${net}.${k}`, t);
    }
    const optimizers: ResumeMeta['optimizers'] = {};
    for (const task of p.tasks) {
      const o = trainer[task]!.optimizer;
      const file = releaseFilePath(dir, RELEASE_OPTIMIZER_FILES[task], iteration);
      optimizers[o.name] = {
        stepCount: readOptimizer(file, iteration, o, paramEntries(trainer, o.params), tensors),
      };
    }
    const scalers: ResumeMeta['scalers'] = {};
    for (const [which, stem] of p.scalers) {
      let file = releaseFilePath(dir, stem, iteration);
      if (!existsSync(file)) file = releaseFilePath(dir, 'scaler', iteration);
      scalers[which] = readScaler(file, trainer.scalers[which]);
    }
    return { tensors, meta: { iteration, optimizers, scalers } };
  } catch (e) {
    tensors.forEach((t) => t.dispose());
    throw e;
  }
}

/**
 * The release's `--id_pretrained_path` / `--age_pretrained_path`: state dicts (torch.save, names
 * under `module.` or not) loaded into the backbone / age estimator, all or nothing.
 */
export function loadReleasePretrained(
  trainer: Trainer,
  paths: { backbone?: string | null; estimation?: string | null },
): string[] {
  const loaded: string[] = [];
  const targets: Array<[string | null | undefined, Module, string]> = [
    [paths.backbone, trainer.nets.backbone, 'backbone'],
    [paths.estimation, trainer.nets.estimation, 'estimation'],
  ];
  for (const [path, module, name] of targets) {
    if (!path) continue;
    importTorchState(module, readTorchWeights(path), { where: path });
    loaded.push(`${name} from ${path}`);
  }
  return loaded;
}

/**
 * Rank 0's start from the release's files (no checkpoint of ours to resume): `restore_iter > 0`
 * reads `<save_models>/<module>-<restore_iter>`; a fresh start loads `id_pretrained_path` /
 * `age_pretrained_path` into the backbone / age estimator. Null when nothing is restored.
 */
export function startFromRelease(trainer: Trainer, log: (line: string) => void): ReleaseState | null {
  const r = trainer.cfg.release;
  if (r.restore_iter > 0) {
    if (!r.save_models)
      throw new Error(`release.restore_iter is ${r.restore_iter} but release.save_models names no folder`);
    const state = readReleaseCheckpoint(r.save_models, r.restore_iter, trainer);
    log(`restored iteration ${r.restore_iter} from the release's files in ${r.save_models}`);
    return state;
  }
  const loaded = loadReleasePretrained(trainer, {
    backbone: r.id_pretrained_path,
    estimation: r.age_pretrained_path,
  });
  if (loaded.length > 0) log(`initialised ${loaded.join(', ')}`);
  return null;
}
