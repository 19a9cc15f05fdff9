// Writing the trainer's state as the release's save_models files (release-files.ts says which files
// a mode has): state dicts in torch 1.13's form, through @mtlface/model's torch.save writer.
import { mkdirSync } from 'node:fs';
import type * as tf from '@tensorflow/tfjs-core';
import { OrderedDict, PyFloat, PyTuple, type PickleWritable } from '@mtlface/pickle';
import {
  TorchTensor,
  encodeTorchSave,
  exportTorchState,
  tensorToTorch,
  type Module,
  type RawTensor,
  type StateEntry,
  type TorchSaveValue,
} from '@mtlface/model';
import type { Trainer } from './trainer.js';
import type { LossScaler } from './loss-scaler.js';
import type { NamedParam, Optimizer } from './optim.js';
import { fsyncDir, writeFileDurably } from './checkpoint.js';
import {
  FR_NETWORK_NAMES,
  RELEASE_OPTIMIZER_FILES,
  RELEASE_NETWORK_FILES,
  paramEntries,
  releaseFilePath,
  releasePlan,
} from './release-files.js';

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
  const p = releasePlan(cfg.mode);
  const files = new Map<string, TorchSaveValue>();
  const modules = new Map(trainer.nets.modules());
  for (const net of p.networks)
    files.set(RELEASE_NETWORK_FILES[net], await moduleStateDict(modules.get(net)!));
  const frLr = trainer.frLr(Math.max(0, iteration - 1));
  const frParams = trainer.fr?.params ?? trainer.nets.params(FR_NETWORK_NAMES, 0);
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
    files.set(RELEASE_OPTIMIZER_FILES[task], dict);
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
    writeFileDurably(path, bytes);
    paths.push(path);
  }
  fsyncDir(dir);
  return paths;
}
