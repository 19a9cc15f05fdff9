// Gradient synchronisation as DDP does it: gradients copied out into flat buckets (reverse
// parameter order, ~bucketBytes each) and all-reduced (mean) bucket by bucket, the copy-out of
// bucket i+1 overlapping the ring traffic of bucket i. Under AMP the copy-out multiplies by the
// loss scale (a power of two: exact in f32), the wire is f16/bf16, the reduced values are checked
// for inf/NaN (identical on every rank after a ring all-reduce, so every rank takes the same
// decision), then unscaled.
//
// How gradients leave the backend (`readBack`): where tensors live in host memory (cpu, native,
// wasm) each gradient's data() is a view or a cheap copy, so 'per-tensor' reads them one by one
// into the bucket. Where they live on a device (webgpu, tensorflow on a GPU) every read-back is a
// queue flush and a device-to-host transfer, so 'packed' first concatenates the bucket's gradients
// on the device (flattened, in bucket order) and reads that back once; the averaged bucket goes
// back as one upload, split on the device. Concatenation, slicing and the host-side scaling are the
// same copies and the same f32 products on both paths, so both give bit-identical gradients.
import * as tf from '@tensorflow/tfjs-core';
import { hostValues } from '@mtlface/model';

export type Wire = 'f32' | 'f16' | 'bf16';

/** How gradients leave the device (see the top of this file); 'auto' decides by {@link gradientsOnDevice}. */
export type ReadBack = 'auto' | 'per-tensor' | 'packed';

/**
 * Whether the active backend keeps tensors in device memory, so that each read-back is a transfer
 * worth saving: webgpu and webgl, and tensorflow when its binding runs on a GPU device.
 */
export function gradientsOnDevice(backendName = tf.getBackend()): boolean {
  if (backendName === 'webgpu' || backendName === 'webgl') return true;
  if (backendName === 'tensorflow') {
    // tfjs-node's NodeJSKernelBackend sets this from its binding (true only for a GPU device).
    return (tf.findBackend('tensorflow') as { isUsingGpuDevice?: boolean } | null)?.isUsingGpuDevice === true;
  }
  return false;
}

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
  /** How the gradients left the backend this time ('auto' resolved). */
  readBack: 'per-tensor' | 'packed';
  /** Device-to-host reads: one per gradient tensor (per-tensor), one per bucket (packed). */
  readBacks: number;
  /** Tensors created from host data for the averaged gradients: one per gradient or one per bucket. */
  uploads: number;
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
  /** Default 'auto': 'packed' on a device backend ({@link gradientsOnDevice}), else 'per-tensor'. */
  readBack?: ReadBack;
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
      readBack: this.resolveReadBack(),
      readBacks: 0,
      uploads: 0,
    };
    const packed = timings.readBack === 'packed';
    const communicate = group !== null && group.worldSize > 1;
    if (!communicate && !packed && scale >= 1 && Number.isInteger(Math.log2(scale)))
      return this.passThrough(grads, scale, timings);
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
      if (packed) await this.copyOutPacked(bucket, grads, scale, timings);
      else await this.copyOut(bucket, grads, scale, timings);
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
        if (packed) this.uploadPacked(b, out, timings);
        else
          b.params.forEach((p, j) => {
            const off = b.offsets[j] as number;
            const shape = this.shapes[p] as number[];
            // A copy: the bucket buffers are reused by the next step while these tensors may live on.
            out![p] = tf.tensor(b.buffer.slice(off, off + tf.util.sizeFromShape(shape)), shape, 'float32');
            timings.uploads++;
          });
      }
    }
    timings.unscaleMs = performance.now() - u;
    return { grads: out, timings };
  }

  /**
   * World size 1, gradients on the host, a scale of 2^k ≥ 1: what the bucket path returns is the input
   * itself (v·2^k rounds to float32 exactly unless it overflows, and ·2^-k undoes it), so the gradients go
   * to the optimizer as they are, and only the overflow check runs: f32(v·2^k) is finite iff
   * |v| < 2^128 / 2^k. No copy, no new arrays, the same results bit for bit (grad-sync.test.ts).
   */
  private passThrough(grads: readonly (tf.Tensor | null)[], scale: number, timings: SyncTimings): SyncResult {
    const u = performance.now();
    const limit = 2 ** 128 / scale;
    const out: tf.Tensor[] = [];
    let finite = true;
    for (let p = 0; p < this.shapes.length && finite; p++) {
      const g = this.gradientOf(p, grads);
      if (!g) continue;
      const v = hostValues(g) ?? (g.dataSync() as Float32Array);
      for (let k = 0; k < v.length; k++) {
        if (!(Math.abs(v[k] as number) < limit)) {
          finite = false;
          break;
        }
      }
    }
    if (finite)
      for (let p = 0; p < this.shapes.length; p++) {
        const shape = this.shapes[p] as number[];
        const g = grads[p];
        // a reshape shares g's data: the caller disposes g and the result independently
        out.push(g ? tf.reshape(g, shape) : tf.zeros(shape, 'float32'));
      }
    timings.unscaleMs = performance.now() - u;
    return { grads: finite ? out : null, timings };
  }

  private resolveReadBack(): 'per-tensor' | 'packed' {
    const mode = this.opts.readBack ?? 'auto';
    if (mode !== 'auto') return mode;
    return gradientsOnDevice() ? 'packed' : 'per-tensor';
  }

  /** The gradient for bucket slot `j`, size-checked; null when the parameter has none. */
  private gradient(bucket: Bucket, j: number, grads: readonly (tf.Tensor | null)[]): tf.Tensor | null {
    return this.gradientOf(bucket.params[j] as number, grads);
  }

  /** Parameter p's gradient, size-checked; null when it has none. */
  private gradientOf(p: number, grads: readonly (tf.Tensor | null)[]): tf.Tensor | null {
    const g = grads[p];
    if (!g) return null;
    const n = tf.util.sizeFromShape(this.shapes[p] as number[]);
    if (g.size !== n) throw new Error(`GradientBucketer: gradient ${p} has ${g.size} values, expected ${n}`);
    return g;
  }

  /** Copies `v[from .. from+n)` to `buf[off ..]`, times `scale` (exact: a power of two). */
  private static put(
    buf: Float32Array,
    off: number,
    v: Float32Array,
    from: number,
    n: number,
    scale: number,
  ) {
    if (scale === 1) buf.set(from === 0 && v.length === n ? v : v.subarray(from, from + n), off);
    else for (let k = 0; k < n; k++) buf[off + k] = (v[from + k] as number) * scale;
  }

  private async copyOut(
    bucket: Bucket,
    grads: readonly (tf.Tensor | null)[],
    scale: number,
    timings: SyncTimings,
  ): Promise<void> {
    const buf = bucket.buffer;
    for (let j = 0; j < bucket.params.length; j++) {
      const off = bucket.offsets[j] as number;
      const n = tf.util.sizeFromShape(this.shapes[bucket.params[j] as number] as number[]);
      const g = this.gradient(bucket, j, grads);
      if (!g) {
        buf.fill(0, off, off + n);
        continue;
      }
      // The backend's own array when it is on the host (read here and not kept: the pool may still
      // recycle it), else a read-back.
      const v = hostValues(g) ?? ((await g.data()) as Float32Array);
      timings.readBacks++;
      GradientBucketer.put(buf, off, v, 0, n, scale);
    }
  }

  /** One device-side concat of the bucket's gradients, one read-back, then the same host copies. */
  private async copyOutPacked(
    bucket: Bucket,
    grads: readonly (tf.Tensor | null)[],
    scale: number,
    timings: SyncTimings,
  ): Promise<void> {
    const buf = bucket.buffer;
    const present: number[] = [];
    for (let j = 0; j < bucket.params.length; j++) {
      if (this.gradient(bucket, j, grads)) present.push(j);
      else {
        const off = bucket.offsets[j] as number;
        buf.fill(0, off, off + tf.util.sizeFromShape(this.shapes[bucket.params[j] as number] as number[]));
      }
    }
    if (present.length === 0) return;
    const flat = tf.tidy(() => {
      const parts = present.map((j) => tf.reshape(grads[bucket.params[j] as number]!, [-1]));
      return parts.length === 1 ? parts[0]! : tf.concat(parts);
    });
    let v: Float32Array;
    try {
      v = (await flat.data()) as Float32Array;
    } finally {
      flat.dispose();
    }
    timings.readBacks++;
    let from = 0;
    for (const j of present) {
      const n = tf.util.sizeFromShape(this.shapes[bucket.params[j] as number] as number[]);
      GradientBucketer.put(buf, bucket.offsets[j] as number, v, from, n, scale);
      from += n;
    }
  }

  /** The averaged bucket as one tensor (a copy: the buffer is reused), split into the parameters. */
  private uploadPacked(bucket: Bucket, out: tf.Tensor[], timings: SyncTimings): void {
    const flat = tf.tensor1d(bucket.buffer.slice(), 'float32');
    timings.uploads++;
    tf.tidy(() => {
      bucket.params.forEach((p, j) => {
        const shape = this.shapes[p] as number[];
        const part = tf.reshape(
          tf.slice(flat, [bucket.offsets[j] as number], [tf.util.sizeFromShape(shape)]),
          shape,
        );
        out[p] = tf.keep(part);
      });
    });
    flat.dispose();
  }
}
