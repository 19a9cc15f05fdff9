// Gradient synchronisation as DDP does it: gradients copied out into flat buckets (reverse
// parameter order, ~bucketBytes each) and all-reduced (mean) bucket by bucket, the copy-out of
// bucket i+1 overlapping the ring traffic of bucket i. Under AMP the copy-out multiplies by the
// loss scale (a power of two: exact in f32), the wire is f16/bf16, the reduced values are checked
// for inf/NaN (identical on every rank after a ring all-reduce, so every rank takes the same
// decision), then unscaled.
import * as tf from '@tensorflow/tfjs-core';

export type Wire = 'f32' | 'f16' | 'bf16';

/** The part of @mtlface/collective's ProcessGroup that gradient sync uses. */
export interface GradientGroup {
  readonly rank: number;
  readonly worldSize: number;
  allReduce(buf: Float32Array, opts?: { op?: 'sum' | 'mean' | 'max'; wire?: Wire }): Promise<unknown>;
  /** Needed only to measure peer wait ({@link SyncOptions.measurePeerWait}). */
  barrier?(): Promise<unknown>;
}

export interface SyncOptions {
  /**
   * Profiling: a barrier before the first bucket, so that the time spent waiting for the slowest
   * rank to arrive (load imbalance: Horovod's timeline calls it NEGOTIATE_ALLREDUCE) is reported
   * as `peerWaitMs` apart from `exposedCommMs`. Costs one small collective per sync.
   */
  measurePeerWait?: boolean;
}

export interface SyncTimings {
  /** Downloading gradients into the buckets (and scaling them). */
  copyOutMs: number;
  /**
   * Time spent waiting on all-reduces, i.e. not hidden behind copy-out. Includes waiting for a
   * slower rank to arrive, unless that was measured apart (`peerWaitMs`).
   */
  exposedCommMs: number;
  /** Waiting for every rank to arrive at the sync (only with `measurePeerWait`; else 0). */
  peerWaitMs: number;
  /** Unscale + inf/NaN check + building the gradient tensors. */
  unscaleMs: number;
  bytes: number;
  buckets: number;
}

export interface SyncResult {
  /** Averaged, unscaled gradients aligned with the parameters; null when a value was inf/NaN. */
  grads: tf.Tensor[] | null;
  timings: SyncTimings;
}

interface Bucket {
  /** Parameter indices, in bucket order (reverse parameter order overall). */
  params: number[];
  offsets: number[];
  buffer: Float32Array;
}

export interface BucketerOptions {
  /** Bucket size in bytes (f32 payload): a bucket closes once it reaches this size. */
  bucketBytes: number;
  wire: Wire;
}

export class GradientBucketer {
  readonly buckets: readonly Bucket[];
  private readonly shapes: readonly (readonly number[])[];

  constructor(
    shapes: readonly (readonly number[])[],
    readonly opts: BucketerOptions,
  ) {
    if (!(opts.bucketBytes > 0))
      throw new RangeError(`GradientBucketer: bucketBytes must be > 0, got ${opts.bucketBytes}`);
    this.shapes = shapes;
    const cap = Math.max(1, Math.floor(opts.bucketBytes / 4));
    const buckets: { params: number[]; offsets: number[]; size: number }[] = [];
    let cur: { params: number[]; offsets: number[]; size: number } | null = null;
    for (let i = shapes.length - 1; i >= 0; i--) {
      const n = tf.util.sizeFromShape(shapes[i] as number[]);
      if (cur === null) {
        cur = { params: [], offsets: [], size: 0 };
        buckets.push(cur);
      }
      cur.params.push(i);
      cur.offsets.push(cur.size);
      cur.size += n;
      // As DDP's bucket assignment: a bucket closes once it reaches the cap.
      if (cur.size >= cap) cur = null;
    }
    this.buckets = buckets.map((b) => ({
      params: b.params,
      offsets: b.offsets,
      buffer: new Float32Array(b.size),
    }));
  }

  /**
   * Averages `grads` (aligned with the shapes; null = no gradient = zeros) over the group.
   * `group` null or of size 1: no communication, same scaling and checks.
   */
  async sync(
    grads: readonly (tf.Tensor | null)[],
    group: GradientGroup | null,
    scale = 1,
    opts: SyncOptions = {},
  ): Promise<SyncResult> {
    if (grads.length !== this.shapes.length) {
      throw new Error(
        `GradientBucketer.sync: ${grads.length} gradients for ${this.shapes.length} parameters`,
      );
    }
    const timings: SyncTimings = {
      copyOutMs: 0,
      exposedCommMs: 0,
      peerWaitMs: 0,
      unscaleMs: 0,
      bytes: 0,
      buckets: this.buckets.length,
    };
    const communicate = group !== null && group.worldSize > 1;
    if (communicate && opts.measurePeerWait) {
      if (!group.barrier)
        throw new Error('GradientBucketer.sync: measurePeerWait needs a group with barrier()');
      const t = performance.now();
      await group.barrier();
      timings.peerWaitMs = performance.now() - t;
    }
    let inflight: Promise<unknown> | null = null;
    for (const bucket of this.buckets) {
      let t = performance.now();
      await this.copyOut(bucket, grads, scale);
      timings.copyOutMs += performance.now() - t;
      t = performance.now();
      if (inflight) await inflight;
      timings.exposedCommMs += performance.now() - t;
      if (communicate) {
        inflight = group.allReduce(bucket.buffer, { op: 'mean', wire: this.opts.wire });
        timings.bytes += bucket.buffer.byteLength;
      }
    }
    const t = performance.now();
    if (inflight) await inflight;
    timings.exposedCommMs += performance.now() - t;

    const u = performance.now();
    const inv = 1 / scale;
    let finite = true;
    for (const b of this.buckets) {
      const buf = b.buffer;
      for (let k = 0; k < buf.length; k++) {
        const v = (buf[k] as number) * inv;
        if (!Number.isFinite(v)) {
          finite = false;
          break;
        }
        buf[k] = v;
      }
      if (!finite) break;
    }
    let out: tf.Tensor[] | null = null;
    if (finite) {
      out = new Array<tf.Tensor>(this.shapes.length);
      for (const b of this.buckets) {
        b.params.forEach((p, j) => {
          const off = b.offsets[j] as number;
          const shape = this.shapes[p] as number[];
          // A copy: the bucket buffers are reused by the next step while these tensors may live on.
          out![p] = tf.tensor(b.buffer.slice(off, off + tf.util.sizeFromShape(shape)), shape, 'float32');
        });
      }
    }
    timings.unscaleMs = performance.now() - u;
    return { grads: out, timings };
  }

  private async copyOut(bucket: Bucket, grads: readonly (tf.Tensor | null)[], scale: number): Promise<void> {
    const buf = bucket.buffer;
    for (let j = 0; j < bucket.params.length; j++) {
      const p = bucket.params[j] as number;
      const off = bucket.offsets[j] as number;
      const g = grads[p];
      const n = tf.util.sizeFromShape(this.shapes[p] as number[]);
      if (!g) {
        buf.fill(0, off, off + n);
        continue;
      }
      if (g.size !== n)
        throw new Error(`GradientBucketer: gradient ${p} has ${g.size} values, expected ${n}`);
      const v = (await g.data()) as Float32Array;
      if (scale === 1) buf.set(v, off);
      else for (let k = 0; k < n; k++) buf[off + k] = (v[k] as number) * scale;
    }
  }
}
