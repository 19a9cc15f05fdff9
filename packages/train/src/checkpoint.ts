// Checkpoints (DESIGN.md): a safetensors file of every tensor (parameters, buffers, optimizer
// slots) plus a JSON sidecar with the rest. Each file is written under a temporary name, fsynced
// and renamed; the sidecar — which carries the tensors' sha256 — is written last, so a checkpoint
// exists only once both are complete. Pruning happens only after the new checkpoint has been read
// back and verified, and touches only checkpoints of the same run (its id survives resumes): a
// directory may hold other runs' files, and those are never ours to delete.
import { createHash, randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statfsSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { encodeSafetensors, readSafetensors, tensorsToRaw, type RawTensor } from '@mtlface/model';
import type { LossScalerState } from './loss-scaler.js';
import { checkpointBase, checkpointSidecars } from './checkpoint-names.js';

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
  /**
   * The run that wrote it: `id` is made at a fresh start and kept by every resume of that run;
   * `attempt` counts the starts (fresh = 0). Pruning only ever deletes checkpoints of `id`.
   */
  run?: RunIdentity;
}

export interface RunIdentity {
  id: string;
  attempt: number;
}

/** A checkpoint problem the user must act on (disk, torn files, nothing to resume): one line, no stack. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** A new run's identity. */
export function newRunIdentity(): RunIdentity {
  return { id: randomUUID(), attempt: 0 };
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

export { checkpointBase } from './checkpoint-names.js';

const TMP = /\.tmp-(\d+)$/;

function diskProblem(err: unknown): string | null {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return 'no space left on the device';
  if (code === 'EIO') return 'an I/O error from the device';
  if (code === 'EROFS') return 'the filesystem is read-only';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return null;
}

function freeBytes(dir: string): number | null {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}

/**
 * Writes `bytes` to `path` atomically: a temporary file, fsync, rename. On any failure the
 * temporary file is removed, and a disk error becomes a CheckpointError naming the file and the
 * bytes it needed.
 */
export function writeFileDurably(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      let off = 0;
      while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // never created, or already renamed
    }
    const problem = diskProblem(err);
    if (!problem) throw err;
    const free = freeBytes(dirname(path));
    throw new CheckpointError(
      `cannot write ${path}: ${problem} (needs ${bytes.byteLength} bytes` +
        (free !== null ? `, ${free} free` : '') +
        ')',
    );
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary files that no running writer owns: those of dead processes, and this
 * process's own (it has written nothing yet when this runs at start). Returns the names removed.
 */
export function sweepStaleTemps(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  for (const f of readdirSync(dir)) {
    const m = TMP.exec(f);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && pidAlive(pid)) continue;
    try {
      unlinkSync(join(dir, f));
      removed.push(f);
    } catch {
      // another process swept it first
    }
  }
  return removed;
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
 * Writes checkpoint `meta.iteration` into `dir`, reads it back to verify it, then prunes this
 * run's older checkpoints down to the newest `keep` (the new one included). Checkpoints of other
 * runs, of no run, or newer than this one are left alone. Tensors are read from the device here
 * (await data()), so call it between steps.
 */
export async function writeCheckpoint(
  dir: string,
  tensors: Iterable<[string, tf.Tensor]>,
  meta: CheckpointMeta,
  keep = 2,
): Promise<{ sidecarPath: string; tensorsPath: string; bytes: number; pruned: string[] }> {
  mkdirSync(dir, { recursive: true });
  const raw = await tensorsToRaw(tensors);
  const bytes = encodeSafetensors(raw, { format: CHECKPOINT_FORMAT, iteration: String(meta.iteration) });
  const base = checkpointBase(meta.iteration);
  const tensorsPath = join(dir, `${base}.safetensors`);
  const sidecarPath = join(dir, `${base}.json`);
  writeFileDurably(tensorsPath, bytes);
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
  writeFileDurably(sidecarPath, new TextEncoder().encode(JSON.stringify(sidecar, null, 2) + '\n'));
  fsyncDir(dir);
  const check = verifyCheckpoint(sidecarPath);
  if ('problem' in check) {
    throw new CheckpointError(`checkpoint ${sidecarPath} did not verify after writing: ${check.problem}`);
  }
  const pruned = meta.run ? pruneCheckpoints(dir, meta.run.id, meta.iteration, keep) : [];
  return { sidecarPath, tensorsPath, bytes: bytes.byteLength, pruned };
}

/** A sidecar in a directory, with the run that wrote it (null when unreadable or written by no run). */
export interface ListedCheckpoint {
  iteration: number;
  path: string;
  runId: string | null;
}

/** The checkpoint sidecars in `dir`, newest first. */
export function listCheckpoints(dir: string): ListedCheckpoint[] {
  return checkpointSidecars(dir)
    .map(({ name, iteration }) => {
      const path = join(dir, name);
      let runId: string | null = null;
      try {
        const id = (JSON.parse(readFileSync(path, 'utf8')) as CheckpointSidecar).run?.id;
        if (typeof id === 'string') runId = id;
      } catch {
        // torn or foreign: belongs to no run we could prune for
      }
      return { iteration, path, runId };
    })
    .sort((a, b) => b.iteration - a.iteration);
}

function pruneCheckpoints(dir: string, runId: string, newest: number, keep: number): string[] {
  const ours = listCheckpoints(dir).filter((c) => c.runId === runId && c.iteration < newest);
  const removed: string[] = [];
  for (const old of ours.slice(Math.max(0, keep - 1))) {
    const tensors = old.path.replace(/\.json$/, '.safetensors');
    unlinkSync(old.path); // sidecar first: a half-pruned checkpoint is never mistaken for a complete one
    if (existsSync(tensors)) unlinkSync(tensors);
    removed.push(basename(old.path));
  }
  return removed;
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

/** Every checkpoint that was tried and rejected, with the reason. */
export interface Rejected {
  path: string;
  problem: string;
}

/**
 * The newest complete, intact checkpoint in `dir` (or a sidecar path), with the ones skipped on the
 * way (torn, corrupt) and why; `found` is null when there is none.
 */
export function scanCheckpoints(dirOrFile: string): { found: FoundCheckpoint | null; rejected: Rejected[] } {
  const candidates = dirOrFile.endsWith('.json')
    ? [{ iteration: -1, path: dirOrFile }]
    : listCheckpoints(dirOrFile);
  const rejected: Rejected[] = [];
  for (const c of candidates) {
    const r = verifyCheckpoint(c.path);
    if ('problem' in r) rejected.push({ path: c.path, problem: r.problem });
    else return { found: r, rejected };
  }
  return { found: null, rejected };
}

/**
 * The newest complete, intact checkpoint in `dir` (or a sidecar path), skipping torn or corrupt
 * ones with a message through `warn`; null when there is none.
 */
export function findLatestCheckpoint(
  dirOrFile: string,
  warn: (msg: string) => void = console.warn,
): FoundCheckpoint | null {
  const { found, rejected } = scanCheckpoints(dirOrFile);
  for (const r of rejected) warn(`checkpoint ${r.path} is not usable: ${r.problem}; trying the previous one`);
  return found;
}

/** The tensors of a verified checkpoint, by name. */
export function readCheckpointTensors(found: FoundCheckpoint): Map<string, RawTensor> {
  return readSafetensors(found.tensorsPath).tensors;
}
