// Every rank starts identical: rank 0's state (fresh, or the checkpoint it resumed) is broadcast,
// loaded everywhere, and verified with a checksum gathered from every rank.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { encodeSafetensors, readSafetensors, rawToTensor, tensorsToRaw } from '@mtlface/model';
import type { CheckpointSidecar, FoundCheckpoint, ResumeMeta } from './checkpoint.js';

/** The collective calls state sync needs (a subset of @mtlface/collective's ProcessGroup). */
export interface StateGroup {
  readonly rank: number;
  readonly worldSize: number;
  broadcast(buf: Float32Array | Uint8Array, root: number): Promise<unknown>;
  allGather(bytes: Uint8Array): Promise<Uint8Array[]>;
}

export interface SyncedState {
  /** Tensors every rank must load (checkpoint names); caller disposes. */
  tensors: Map<string, tf.Tensor>;
  /** The resumed checkpoint's sidecar, or null for a fresh start or an in-memory state. */
  sidecar: CheckpointSidecar | null;
  /** What resuming needs (the sidecar's, or the in-memory state's); null for a fresh start. */
  meta: ResumeMeta | null;
}

/** A state rank 0 read from elsewhere (the release's files): checkpoint names → tensors, and its meta. */
export interface InMemoryState {
  tensors: Map<string, tf.Tensor>;
  meta: ResumeMeta;
}

async function broadcastBytes(group: StateGroup | null, bytes: Uint8Array | null): Promise<Uint8Array> {
  if (!group || group.worldSize === 1) return bytes ?? new Uint8Array(0);
  const header = new Uint8Array(8);
  if (group.rank === 0) new DataView(header.buffer).setBigUint64(0, BigInt(bytes?.byteLength ?? 0), true);
  await group.broadcast(header, 0);
  const len = Number(new DataView(header.buffer).getBigUint64(0, true));
  const buf = group.rank === 0 ? (bytes ?? new Uint8Array(0)) : new Uint8Array(len);
  if (len > 0) await group.broadcast(buf, 0);
  return buf;
}

/**
 * Rank 0 passes either the checkpoint it resumes (`found`: a checkpoint file, or a state it read
 * itself) or its freshly initialised state (`fresh`, checkpoint names → tensors); every rank gets
 * the same tensors and sidecar/meta back.
 */
export async function broadcastInitialState(
  group: StateGroup | null,
  found: FoundCheckpoint | InMemoryState | null,
  fresh: () => Map<string, tf.Tensor>,
): Promise<SyncedState> {
  let tensorBytes: Uint8Array | null = null;
  let sidecarBytes: Uint8Array | null = null;
  if (!group || group.rank === 0) {
    if (found && 'tensorsPath' in found) {
      tensorBytes = new Uint8Array(readFileSync(found.tensorsPath));
      sidecarBytes = new TextEncoder().encode(JSON.stringify({ sidecar: found.sidecar }));
    } else if (found) {
      tensorBytes = encodeSafetensors(await tensorsToRaw(found.tensors));
      sidecarBytes = new TextEncoder().encode(JSON.stringify({ meta: found.meta }));
    } else {
      tensorBytes = encodeSafetensors(await tensorsToRaw(fresh()));
    }
  }
  const sidecarRaw = await broadcastBytes(group, sidecarBytes);
  const tensorRaw = await broadcastBytes(group, tensorBytes);
  const resumed = (sidecarRaw.byteLength > 0 ? JSON.parse(new TextDecoder().decode(sidecarRaw)) : {}) as {
    sidecar?: CheckpointSidecar;
    meta?: ResumeMeta;
  };
  const sidecar = resumed.sidecar ?? null;
  const parsed = readSafetensors(tensorRaw);
  const tensors = new Map<string, tf.Tensor>();
  for (const [name, raw] of parsed.tensors) tensors.set(name, rawToTensor(raw, name));
  return { tensors, sidecar, meta: sidecar ?? resumed.meta ?? null };
}

/** sha256 over the named tensors in name order (values and shapes). */
export async function stateChecksum(tensors: ReadonlyMap<string, tf.Tensor>): Promise<string> {
  const h = createHash('sha256');
  for (const name of [...tensors.keys()].sort()) {
    const t = tensors.get(name)!;
    const data = await t.data();
    h.update(`${name}:${t.dtype}:[${t.shape}]`);
    h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return h.digest('hex');
}

/** Fails on every rank, naming the ranks whose state differs from rank 0's. */
export async function verifyIdenticalState(
  group: StateGroup | null,
  tensors: ReadonlyMap<string, tf.Tensor>,
): Promise<string> {
  const mine = await stateChecksum(tensors);
  if (!group || group.worldSize === 1) return mine;
  const all = (await group.allGather(new TextEncoder().encode(mine))).map((b) => new TextDecoder().decode(b));
  const bad = all.flatMap((c, r) => (c !== all[0] ? [r] : []));
  if (bad.length > 0) {
    throw new Error(
      `initial state differs from rank 0's on rank(s) ${bad.join(', ')} (checksums ${bad.map((r) => all[r]!.slice(0, 12)).join(', ')} vs ${all[0]!.slice(0, 12)})`,
    );
  }
  return mine;
}

/** The collective call that buffer sync needs. */
export type BufferGroup = Pick<StateGroup, 'rank' | 'worldSize' | 'broadcast'>;

/**
 * Copies rank 0's buffers of these modules (batch-norm running statistics and batch counters,
 * spectral-norm u and v) to every rank, in one broadcast of their concatenation. Ranks update
 * running statistics on their own batches (per-rank BN, as DDP); DDP with broadcast_buffers
 * replaces them by rank 0's before every training forward, and so do the trainer and a sharded
 * evaluation. Integer buffers travel as f32: exact below 2^24.
 */
export async function broadcastBuffers(
  group: BufferGroup | null,
  modules: ReadonlyArray<{ namedBuffers(): Array<[string, tf.Variable]> }>,
): Promise<void> {
  if (!group || group.worldSize === 1) return;
  const vars = modules.flatMap((m) => m.namedBuffers().map(([, v]) => v));
  const buf = new Float32Array(vars.reduce((n, v) => n + v.size, 0));
  let off = 0;
  for (const v of vars) {
    buf.set(await v.data(), off);
    off += v.size;
  }
  await group.broadcast(buf, 0);
  off = 0;
  for (const v of vars) {
    const part = buf.subarray(off, off + v.size);
    off += v.size;
    tf.tidy(() => v.assign(tf.tensor(part, v.shape, v.dtype)));
  }
}
