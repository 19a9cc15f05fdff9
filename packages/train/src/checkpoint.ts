// Checkpoints (DESIGN.md): a safetensors file of every tensor (parameters, buffers, optimizer
// slots) plus a JSON sidecar with the rest. Each file is written under a temporary name, fsynced
// and renamed; the sidecar — which carries the tensors' sha256 — is written last, so a checkpoint
// exists only once both are complete, and the previous one is deleted only after that.
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { encodeSafetensors, readSafetensors, tensorsToRaw, type RawTensor } from '@mtlface/model';
import type { LossScalerState } from './loss-scaler.js';

export const CHECKPOINT_FORMAT = 'mtlface-checkpoint';
export const CHECKPOINT_VERSION = 1;
export const LIBRARY_VERSION = '0.1.0';

/** Everything but the tensors; the caller fills it, `writeCheckpoint` adds the file facts. */
export interface CheckpointMeta {
  /** Iterations completed; training resumes at this global iteration. */
  iteration: number;
  mode: string;
  /** Loss-scaler state per task (`fr`, `fas`). */
  scalers: Record<string, LossScalerState>;
  /** Steps taken by each optimizer (Adam's bias correction needs them). */
  optimizers: Record<string, { stepCount: number }>;
  /** Sampler position: the next global iteration and its epoch. */
  sampler: { iteration: number; epoch: number };
  /** Every random choice is a pure function of (seed, iteration, rank): the seed is the whole RNG state. */
  rng: { seed: number };
  worldSize: number;
  config: unknown;
  configHash: string;
  /** Last logged losses, for people reading the sidecar. */
  losses?: Record<string, number>;
}

/** What resuming needs besides the tensors: from our sidecar, or from the release's files. */
export type ResumeMeta = Pick<CheckpointMeta, 'iteration' | 'optimizers' | 'scalers'>;

export interface CheckpointSidecar extends CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  library: string;
  createdAt: string;
  tensors: { file: string; bytes: number; sha256: string; count: number };
}

export interface FoundCheckpoint {
  sidecarPath: string;
  tensorsPath: string;
  sidecar: CheckpointSidecar;
}

const NAME = /^ckpt-(\d+)\.json$/;

export function checkpointBase(iteration: number): string {
  return `ckpt-${String(iteration).padStart(7, '0')}`;
}

/** Writes `bytes` under a temporary name, fsyncs and renames it onto `path`. */
export function writeDurably(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    let off = 0;
    while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Makes a folder's renames durable (where the filesystem allows). */
export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on directories; the renames are still atomic.
  }
}

/**
 * Writes checkpoint `meta.iteration` into `dir` and prunes all but the newest `keep` complete ones.
 * Tensors are read from the device here (await data()), so call it between steps.
 */
export async function writeCheckpoint(
  dir: string,
  tensors: Iterable<[string, tf.Tensor]>,
  meta: CheckpointMeta,
  keep = 2,
): Promise<{ sidecarPath: string; tensorsPath: string; bytes: number }> {
  mkdirSync(dir, { recursive: true });
  const raw = await tensorsToRaw(tensors);
  const bytes = encodeSafetensors(raw, { format: CHECKPOINT_FORMAT, iteration: String(meta.iteration) });
  const base = checkpointBase(meta.iteration);
  const tensorsPath = join(dir, `${base}.safetensors`);
  const sidecarPath = join(dir, `${base}.json`);
  writeDurably(tensorsPath, bytes);
  const sidecar: CheckpointSidecar = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    library: LIBRARY_VERSION,
    createdAt: new Date().toISOString(),
    ...meta,
    tensors: {
      file: `${base}.safetensors`,
      bytes: bytes.byteLength,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      count: raw.size,
    },
  };
  writeDurably(sidecarPath, new TextEncoder().encode(JSON.stringify(sidecar, null, 2) + '\n'));
  fsyncDir(dir);
  pruneCheckpoints(dir, keep);
  return { sidecarPath, tensorsPath, bytes: bytes.byteLength };
}

function listSidecars(dir: string): { iteration: number; path: string }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .flatMap((f) => {
      const m = NAME.exec(f);
      return m ? [{ iteration: Number(m[1]), path: join(dir, f) }] : [];
    })
    .sort((a, b) => b.iteration - a.iteration);
}

function pruneCheckpoints(dir: string, keep: number): void {
  for (const old of listSidecars(dir).slice(keep)) {
    const tensors = old.path.replace(/\.json$/, '.safetensors');
    unlinkSync(old.path); // sidecar first: a half-pruned checkpoint is never mistaken for a complete one
    if (existsSync(tensors)) unlinkSync(tensors);
  }
  for (const f of readdirSync(dir)) if (/\.tmp-\d+$/.test(f)) unlinkSync(join(dir, f));
}

/** Why a checkpoint is unusable, or null when it is complete and intact. */
export function verifyCheckpoint(sidecarPath: string): { problem: string } | FoundCheckpoint {
  let sidecar: CheckpointSidecar;
  try {
    sidecar = JSON.parse(readFileSync(sidecarPath, 'utf8')) as CheckpointSidecar;
  } catch (e) {
    return { problem: `sidecar is unreadable or torn (${(e as Error).message})` };
  }
  if (sidecar.format !== CHECKPOINT_FORMAT || typeof sidecar.tensors?.sha256 !== 'string') {
    return { problem: `sidecar is not an ${CHECKPOINT_FORMAT} v${CHECKPOINT_VERSION} file` };
  }
  const dir = sidecarPath.slice(0, sidecarPath.lastIndexOf('/') + 1) || '.';
  const tensorsPath = join(dir, sidecar.tensors.file);
  if (!existsSync(tensorsPath)) return { problem: `tensor file ${tensorsPath} is missing` };
  const size = statSync(tensorsPath).size;
  if (size !== sidecar.tensors.bytes) {
    return {
      problem: `tensor file ${tensorsPath} has ${size} bytes, the sidecar says ${sidecar.tensors.bytes} (torn write)`,
    };
  }
  const sha = createHash('sha256').update(readFileSync(tensorsPath)).digest('hex');
  if (sha !== sidecar.tensors.sha256)
    return { problem: `tensor file ${tensorsPath} fails its sha256 check (corrupt)` };
  return { sidecarPath, tensorsPath, sidecar };
}

/**
 * The newest complete, intact checkpoint in `dir` (or a sidecar path), skipping torn or corrupt
 * ones with a message through `warn`; null when there is none.
 */
export function findLatestCheckpoint(
  dirOrFile: string,
  warn: (msg: string) => void = console.warn,
): FoundCheckpoint | null {
  const candidates = dirOrFile.endsWith('.json')
    ? [{ iteration: -1, path: dirOrFile }]
    : listSidecars(dirOrFile);
  for (const c of candidates) {
    const r = verifyCheckpoint(c.path);
    if ('problem' in r) {
      warn(`checkpoint ${c.path} is not usable: ${r.problem}; trying the previous one`);
      continue;
    }
    return r;
  }
  return null;
}

/** The tensors of a verified checkpoint, by name. */
export function readCheckpointTensors(found: FoundCheckpoint): Map<string, RawTensor> {
  return readSafetensors(found.tensorsPath).tensors;
}
