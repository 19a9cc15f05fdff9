// The MTLFace release's checkpoints: a `save_models` folder of `<module>-<iteration>` torch.save
// files, one per module, as its LoggerX writes them (DDP state dicts, names under `module.`;
// optimizer and GradScaler state dicts in PyTorch 1.13's form). We read them into the trainer's
// checkpoint names and write the trainer's state back in the same form.
//
// The release's FR and FAS tasks both save a `scaler-N` (the later one wins there). Here `scaler-N`
// is FR's scaler when FR trains (aifr, joint) and FAS's in fas mode; joint also writes FAS's as
// `fas_scaler-N`, and reads it from there when present (from `scaler-N` otherwise).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { OrderedDict, PyFloat, PyTuple, type PickleValue, type PickleWritable } from '@mtlface/pickle';
import {
  TorchTensor,
  encodeTorchSave,
  exportTorchState,
  rawToFloat32,
  readTorchPickle,
  readTorchWeights,
  tensorFromTorch,
  tensorToTorch,
  torchShape,
  torchStateToOurs,
  importTorchState,
  type Module,
  type NetworkName,
  type RawTensor,
  type StateEntry,
  type TorchSaveValue,
} from '@mtlface/model';
import type { Trainer } from './trainer.js';
import type { LossScaler, LossScalerState } from './loss-scaler.js';
import { Adam, SGD, type NamedParam, type Optimizer } from './optim.js';
import { fsyncDir, writeDurably, type ResumeMeta } from './checkpoint.js';

/** The release's file stem of each network (its LoggerX names files after the variables). */
export const RELEASE_NETWORK_FILES: Record<NetworkName, string> = {
  backbone: 'backbone',
  head: 'head',
  estimation: 'estimation_network',
  da_discriminator: 'da_discriminator',
  generator: 'generator',
  discriminator: 'discriminator',
};

const FR_NETWORKS: readonly NetworkName[] = ['backbone', 'head', 'estimation', 'da_discriminator'];
const FAS_NETWORKS: readonly NetworkName[] = ['generator', 'discriminator'];

type Task = 'fr' | 'fasD' | 'fasG';
const OPTIMIZER_FILES: Record<Task, string> = { fr: 'optimizer', fasD: 'd_optim', fasG: 'g_optim' };

export function releaseFilePath(dir: string, stem: string, iteration: number): string {
  return join(dir, `${stem}-${iteration}`);
}

/** What a mode reads and writes: networks, optimizers, and which scaler goes in which file. */
function plan(mode: string): {
  networks: NetworkName[];
  tasks: Task[];
  scalers: Array<['fr' | 'fas', string]>;
} {
  if (mode === 'aifr') return { networks: [...FR_NETWORKS], tasks: ['fr'], scalers: [['fr', 'scaler']] };
  // The release builds FR's networks in every mode (the frozen backbone and age estimator live there).
  const networks = [...FR_NETWORKS, ...FAS_NETWORKS];
  if (mode === 'fas') return { networks, tasks: ['fasD', 'fasG'], scalers: [['fas', 'scaler']] };
  return {
    networks,
    tasks: ['fr', 'fasD', 'fasG'],
    scalers: [
      ['fr', 'scaler'],
      ['fas', 'fas_scaler'],
    ],
  };
}

/** The file stems a mode reads (joint's `fas_scaler` is optional: a PyTorch folder has one scaler). */
export function releaseFilesRead(mode: string): string[] {
  const p = plan(mode);
  return [
    ...p.networks.map((n) => RELEASE_NETWORK_FILES[n]),
    ...p.tasks.map((t) => OPTIMIZER_FILES[t]),
    'scaler',
  ];
}

// ---- reading --------------------------------------------------------------------------------

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

function paramEntries(trainer: Trainer, params: readonly NamedParam[]): StateEntry[] {
  const entries = new Map<string, StateEntry>();
  for (const [prefix, m] of trainer.nets.modules())
    for (const [n, e] of m.stateEntries(prefix)) entries.set(n, e);
  return params.map((p) => entries.get(p.name)!);
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
  const p = plan(trainer.cfg.mode);
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
      const file = releaseFilePath(dir, OPTIMIZER_FILES[task], iteration);
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

// ---- writing --------------------------------------------------------------------------------

const torchTensor = (r: RawTensor): TorchTensor => new TorchTensor(r.dtype, r.shape, r.bytes);
const f32Scalar = (x: number): TorchTensor =>
  new TorchTensor('F32', [], new Uint8Array(new Float32Array([x]).buffer));
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

async function moduleStateDict(module: Module): Promise<OrderedDict<string, TorchTensor>> {
  const out = new OrderedDict<string, TorchTensor>();
  for (const [k, r] of await exportTorchState(module, 'module.')) out.set(k, torchTensor(r));
  return out;
}

/** torch.optim.SGD(...).state_dict() of PyTorch 1.13 (one group; weight decay is the release's own). */
async function sgdStateDict(
  params: readonly NamedParam[],
  entries: StateEntry[],
  slots: Map<string, tf.Tensor>,
  name: string,
  lr: number,
  momentum: number,
  stepped: boolean,
): Promise<Map<TorchSaveValue, TorchSaveValue>> {
  const state = new Map<number, Map<string, TorchTensor | null>>();
  for (const [i, p] of params.entries()) {
    const buf = slots.get(`optim.${name}.${p.name}.momentum_buffer`);
    if (buf)
      state.set(i, new Map([['momentum_buffer', torchTensor(await tensorToTorch(buf, entries[i]!.layout))]]));
    else if (stepped && momentum === 0) state.set(i, new Map([['momentum_buffer', null]]));
  }
  const group = new Map<string, PickleWritable>([
    ['lr', new PyFloat(lr)],
    ['momentum', new PyFloat(momentum)],
    ['dampening', 0],
    ['weight_decay', 0],
    ['nesterov', false],
    ['maximize', false],
    ['foreach', null],
    ['differentiable', false],
    ['params', range(params.length)],
  ]);
  return new Map<TorchSaveValue, TorchSaveValue>([
    ['state', state],
    ['param_groups', [group]],
  ]);
}

/** torch.optim.Adam(...).state_dict() of PyTorch 1.13 (`step` a float32 0-d tensor per parameter). */
async function adamStateDict(
  o: Optimizer,
  entries: StateEntry[],
  lr: number,
  betas: readonly [number, number],
  eps: number,
): Promise<Map<TorchSaveValue, TorchSaveValue>> {
  const slots = o.slots();
  const state = new Map<number, Map<string, TorchTensor>>();
  for (const [i, p] of o.params.entries()) {
    const m = slots.get(`optim.${o.name}.${p.name}.exp_avg`);
    const v = slots.get(`optim.${o.name}.${p.name}.exp_avg_sq`);
    if (!m || !v) continue;
    const layout = entries[i]!.layout;
    state.set(
      i,
      new Map([
        ['step', f32Scalar(o.stepCount)],
        ['exp_avg', torchTensor(await tensorToTorch(m, layout))],
        ['exp_avg_sq', torchTensor(await tensorToTorch(v, layout))],
      ]),
    );
  }
  const group = new Map<string, PickleWritable>([
    ['lr', new PyFloat(lr)],
    ['betas', new PyTuple(new PyFloat(betas[0]), new PyFloat(betas[1]))],
    ['eps', new PyFloat(eps)],
    ['weight_decay', 0],
    ['amsgrad', false],
    ['maximize', false],
    ['foreach', null],
    ['capturable', false],
    ['differentiable', false],
    ['fused', false],
    ['params', range(o.params.length)],
  ]);
  return new Map<TorchSaveValue, TorchSaveValue>([
    ['state', state],
    ['param_groups', [group]],
  ]);
}

/** torch.cuda.amp.GradScaler(...).state_dict(): `{}` when disabled (amp off), as PyTorch's. */
function scalerStateDict(s: LossScaler): Map<string, PickleWritable> {
  if (!s.enabled) return new Map();
  const st = s.state();
  return new Map<string, PickleWritable>([
    ['scale', new PyFloat(st.scale)],
    ['growth_factor', new PyFloat(s.growthFactor)],
    ['backoff_factor', new PyFloat(s.backoffFactor)],
    ['growth_interval', s.growthInterval],
    ['_growth_tracker', st.growthTracker],
  ]);
}

/**
 * Every release file of the trainer's state after `iteration` iterations, encoded (stem → bytes).
 * In fas mode FR's optimizer is written fresh (no buffers): the release loads one in every mode.
 */
export async function encodeReleaseCheckpoint(
  trainer: Trainer,
  iteration: number,
): Promise<Map<string, Uint8Array>> {
  const cfg = trainer.cfg;
  const p = plan(cfg.mode);
  const files = new Map<string, TorchSaveValue>();
  const modules = new Map(trainer.nets.modules());
  for (const net of p.networks)
    files.set(RELEASE_NETWORK_FILES[net], await moduleStateDict(modules.get(net)!));
  const frLr = trainer.frLr(Math.max(0, iteration - 1));
  const frParams = trainer.fr?.params ?? trainer.nets.params(FR_NETWORKS, 0);
  files.set(
    'optimizer',
    await sgdStateDict(
      frParams,
      paramEntries(trainer, frParams),
      trainer.fr?.optimizer.slots() ?? new Map(),
      trainer.fr?.optimizer.name ?? 'fr',
      frLr,
      cfg.fr_optim.momentum,
      (trainer.fr?.optimizer.stepCount ?? 0) > 0,
    ),
  );
  const fasOpt = cfg.fas_optim;
  const adams: Array<['fasD' | 'fasG', number | null]> = [
    ['fasD', fasOpt.d_lr],
    ['fasG', fasOpt.g_lr],
  ];
  for (const [task, lr] of adams) {
    const o = trainer[task]?.optimizer;
    if (!o) continue;
    const dict = await adamStateDict(
      o,
      paramEntries(trainer, o.params),
      lr ?? fasOpt.lr,
      fasOpt.betas,
      fasOpt.eps,
    );
    files.set(OPTIMIZER_FILES[task], dict);
  }
  for (const [which, stem] of p.scalers) files.set(stem, scalerStateDict(trainer.scalers[which]));
  const out = new Map<string, Uint8Array>();
  for (const [stem, value] of files) out.set(stem, encodeTorchSave(value, `${stem}-${iteration}`));
  return out;
}

/**
 * Writes the release's files for `iteration` into `dir`. All files are encoded before the first is
 * written, and each is written under a temporary name, fsynced and renamed.
 */
export async function writeReleaseCheckpoint(
  dir: string,
  trainer: Trainer,
  iteration: number,
): Promise<string[]> {
  const files = await encodeReleaseCheckpoint(trainer, iteration);
  mkdirSync(dir, { recursive: true });
  const paths: string[] = [];
  for (const [stem, bytes] of files) {
    const path = releaseFilePath(dir, stem, iteration);
    writeDurably(path, bytes);
    paths.push(path);
  }
  fsyncDir(dir);
  return paths;
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
