import * as tf from '@tensorflow/tfjs-core';
import type { Module, TorchLayout } from '../nn/module.js';
import { rawFromFloat32, rawFromInt32, rawToFloat32, rawToInt32, type RawTensor } from './dtypes.js';

export interface TorchImportOptions {
  /** Only tensors under this prefix (e.g. 'backbone.') belong to the module; it is stripped. */
  prefix?: string;
  /** Names the source in errors. */
  where?: string;
}

/** PyTorch's shape for one of our tensors. */
export function torchShape(ours: readonly number[], layout: TorchLayout): number[] {
  if (layout === 'conv') {
    const [kh, kw, i, o] = ours as [number, number, number, number];
    return [o, i, kh, kw];
  }
  return [...ours];
}

// BatchNorm's batch counter is absent from old checkpoints; PyTorch loads them anyway.
const OPTIONAL = /(^|\.)num_batches_tracked$/;

/**
 * Converts a PyTorch state dict into our layouts (OIHW → HWIO for convolutions; everything else
 * as is, the linears' flatten order being PyTorch's by construction). All names and shapes are
 * checked first: unknown, missing or mis-shaped tensors are all reported by name in one error.
 * Returns new tensors the caller owns.
 */
export function torchStateToOurs(
  module: Module,
  tensors: Map<string, RawTensor>,
  options: TorchImportOptions = {},
): Map<string, tf.Tensor> {
  const prefix = options.prefix ?? '';
  const where = options.where ?? 'torch state dict';
  const entries = module.stateEntries();
  const problems: string[] = [];
  const selected = new Map<string, RawTensor>();
  for (const [name, raw] of tensors) {
    if (!name.startsWith(prefix)) continue;
    const own = name.slice(prefix.length);
    const entry = entries.get(own);
    if (!entry) {
      problems.push(`unexpected tensor '${name}' ${raw.dtype}[${raw.shape}]`);
      continue;
    }
    const want = torchShape(entry.tensor.shape, entry.layout);
    if (raw.shape.length !== want.length || raw.shape.some((d, i) => d !== want[i])) {
      problems.push(`tensor '${name}' has shape [${raw.shape}], expected [${want}]`);
      continue;
    }
    selected.set(own, raw);
  }
  for (const own of entries.keys()) {
    if (!selected.has(own) && !OPTIONAL.test(own) && !problems.some((p) => p.includes(`'${prefix}${own}'`))) {
      problems.push(`missing tensor '${prefix}${own}'`);
    }
  }
  if (problems.length > 0) {
    throw new Error(
      `${where}: import failed, nothing loaded; ${problems.length} problem(s): ${problems.join('; ')}`,
    );
  }
  const out = new Map<string, tf.Tensor>();
  try {
    for (const [own, raw] of selected) {
      const entry = entries.get(own)!;
      const full = prefix + own;
      out.set(own, tensorFromTorch(raw, entry.tensor, entry.layout, full));
    }
  } catch (e) {
    tf.dispose([...out.values()]);
    throw new Error(`${where}: import failed, nothing loaded; ${(e as Error).message}`);
  }
  return out;
}

/** Loads a PyTorch state dict into `module`, all or nothing (see `torchStateToOurs`). */
export function importTorchState(
  module: Module,
  tensors: Map<string, RawTensor>,
  options: TorchImportOptions = {},
): void {
  const converted = torchStateToOurs(module, tensors, options);
  try {
    module.loadStateDict(converted, { strict: false });
  } finally {
    tf.dispose([...converted.values()]);
  }
}

/** The module's state dict in PyTorch layouts (conv OIHW, int buffers as int64), ready for safetensors. */
export async function exportTorchState(module: Module, prefix = ''): Promise<Map<string, RawTensor>> {
  const out = new Map<string, RawTensor>();
  for (const [name, entry] of module.stateEntries())
    out.set(prefix + name, await tensorToTorch(entry.tensor, entry.layout));
  return out;
}

/**
 * One tensor of PyTorch's layout as ours, shaped and typed like `like` (int buffers int32, the rest
 * float32); the caller owns the result. The shape is the caller's to have checked.
 */
export function tensorFromTorch(
  raw: RawTensor,
  like: { shape: readonly number[]; dtype: tf.DataType },
  layout: TorchLayout,
  name: string,
): tf.Tensor {
  return tf.tidy(() => {
    if (like.dtype === 'int32') return tf.tensor(rawToInt32(raw, name), [...like.shape], 'int32');
    const t = tf.tensor(rawToFloat32(raw, name), raw.shape, 'float32');
    return layout === 'conv' ? tf.transpose(t, [2, 3, 1, 0]) : tf.reshape(t, [...like.shape]);
  });
}

/** One of our tensors in PyTorch's layout (conv OIHW; int32 as int64, as PyTorch keeps counters). */
export async function tensorToTorch(t: tf.Tensor, layout: TorchLayout): Promise<RawTensor> {
  if (t.dtype === 'int32') return rawFromInt32((await t.data()) as Int32Array, [...t.shape], 'I64');
  const torchT = layout === 'conv' ? tf.transpose(t, [3, 2, 0, 1]) : t;
  const data = (await torchT.data()) as Float32Array;
  if (torchT !== t) torchT.dispose();
  return rawFromFloat32(data, torchShape(t.shape, layout));
}
