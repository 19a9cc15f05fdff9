import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { DataId, TensorInfo } from '@tensorflow/tfjs-core';

/**
 * Output buffers of the native kernels, recycled when their tensor is disposed.
 *
 * Fresh large ArrayBuffers cost a page fault per 4 KiB on first touch, and V8
 * frees dead ones only at some later GC (on its own thread), so without reuse
 * every op output of a training step lands on unmapped memory. Only buffers
 * this pool allocated are recycled, and never one that escaped: read by the
 * user (dataSync/data hand out the array itself) or aliased by a second tensor
 * (the cpu Slice kernel returns subarray views).
 */
export class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  private readonly owned = new WeakSet<ArrayBuffer>();
  private readonly users = new WeakMap<ArrayBuffer, number>();
  private readonly escaped = new WeakSet<ArrayBuffer>();
  private pooledBytes = 0;
  /** Bytes of pool-made arrays held by tensors now, and the most ever. */
  private inUseBytes = 0;
  private peakInUseBytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(
    /** Most bytes kept idle in the pool; a disposed output that would exceed it is left to the GC. */
    readonly maxPooledBytes = DEFAULT_MAX_POOLED_BYTES,
    /** Smaller arrays are cheap to allocate; not worth tracking. */
    private readonly minBytes = 64 * 1024,
    /**
     * Idle bytes also stay within this fraction of the most bytes ever in use: what sits idle at a
     * step's peak adds to the peak (the pool matches exact sizes, so a step's parameter-gradient
     * and update buffers wait through the next forward).
     */
    readonly idleFraction = DEFAULT_IDLE_FRACTION,
  ) {}

  /** The most idle bytes kept now. */
  idleLimit(): number {
    return Math.min(this.maxPooledBytes, this.idleFraction * this.peakInUseBytes);
  }

  private taken(bytes: number): void {
    this.inUseBytes += bytes;
    if (this.inUseBytes > this.peakInUseBytes) this.peakInUseBytes = this.inUseBytes;
  }

  /** A Float32Array of length n; contents are arbitrary (callers overwrite every element). */
  get(n: number): Float32Array {
    if (n * 4 < this.minBytes) return new Float32Array(n);
    const list = this.free.get(n);
    const reused = list?.pop();
    if (reused) {
      this.pooledBytes -= reused.byteLength;
      this.hits++;
      this.taken(reused.byteLength);
      return reused;
    }
    this.misses++;
    const a = new Float32Array(n);
    this.owned.add(a.buffer as ArrayBuffer);
    this.taken(a.byteLength);
    return a;
  }

  /** Bytes idle in the pool now, and how many tracked requests it served from them (hits) or not. */
  stats(): {
    idleBytes: number;
    maxIdleBytes: number;
    inUseBytes: number;
    peakInUseBytes: number;
    hits: number;
    misses: number;
  } {
    return {
      idleBytes: this.pooledBytes,
      maxIdleBytes: this.idleLimit(),
      inUseBytes: this.inUseBytes,
      peakInUseBytes: this.peakInUseBytes,
      hits: this.hits,
      misses: this.misses,
    };
  }

  /** A tensor now holds `values`. */
  attach(values: unknown): void {
    const buf = bufferOf(values);
    if (!buf || !this.owned.has(buf)) return;
    const n = (this.users.get(buf) ?? 0) + 1;
    this.users.set(buf, n);
    if (n > 1) this.escaped.add(buf);
  }

  /**
   * Whether `values` may be overwritten in place: a whole array this pool made, held by one tensor, never
   * handed out (dataSync/data) nor aliased. (The caller also checks that one tensor holds that tensor's data.)
   */
  exclusive(values: unknown): boolean {
    const buf = bufferOf(values);
    if (!buf || !this.owned.has(buf) || this.escaped.has(buf) || this.users.get(buf) !== 1) return false;
    const a = values as Float32Array;
    return a.byteOffset === 0 && a.byteLength === buf.byteLength;
  }
  /** Someone outside the backend got the array itself. */
  escape(values: unknown): void {
    const buf = bufferOf(values);
    if (buf && this.owned.has(buf)) this.escaped.add(buf);
  }

  /** The tensor holding `values` was deleted. */
  detach(values: unknown): void {
    const buf = bufferOf(values);
    if (!buf || !this.owned.has(buf)) return;
    const n = (this.users.get(buf) ?? 1) - 1;
    this.users.set(buf, n);
    if (n > 0) return;
    this.inUseBytes -= buf.byteLength;
    if (this.escaped.has(buf)) return;
    const a = values as Float32Array;
    if (a.byteOffset !== 0 || a.byteLength !== buf.byteLength) return;
    if (this.pooledBytes + a.byteLength > this.idleLimit()) return;
    let list = this.free.get(a.length);
    if (!list) this.free.set(a.length, (list = []));
    list.push(a);
    this.pooledBytes += a.byteLength;
  }
}

/**
 * The default bounds on idle pooled bytes (absolute, and as a fraction of the peak in use). A fraction of 1
 * since the kernels and lean backprop: measured (packages/backend/README.md, "Quiet window 2"), a step
 * allocates the same sizes every time, so a pool that keeps them all makes no fresh memory after the first
 * step, and its peak RSS was no higher than at ¼ (ir50 112: 1238 vs 1289 MB at batch 8, 4904 vs 4616 MB at
 * batch 64 against PyTorch's 6704) while the step was 15–23 % faster.
 */
export const DEFAULT_MAX_POOLED_BYTES = 4 * 1024 ** 3;
export const DEFAULT_IDLE_FRACTION = 1;

/** The bounds the native backend's pool gets: `MTL_POOL_MAX_MB` and `MTL_POOL_IDLE_FRACTION`. */
export function poolBoundsFromEnv(env: NodeJS.ProcessEnv = process.env): {
  maxPooledBytes: number;
  idleFraction: number;
} {
  const num = (name: string, fallback: number, what: string): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < 0) throw new Error(`${name}: expected ${what} >= 0, got '${raw}'`);
    return v;
  };
  return {
    maxPooledBytes: num('MTL_POOL_MAX_MB', DEFAULT_MAX_POOLED_BYTES / 2 ** 20, 'a number of MiB') * 2 ** 20,
    idleFraction: num('MTL_POOL_IDLE_FRACTION', DEFAULT_IDLE_FRACTION, 'a fraction'),
  };
}

function poolFromEnv(): BufferPool {
  const { maxPooledBytes, idleFraction } = poolBoundsFromEnv();
  return new BufferPool(maxPooledBytes, undefined, idleFraction);
}

function bufferOf(values: unknown): ArrayBuffer | null {
  return values instanceof Float32Array ? (values.buffer as ArrayBuffer) : null;
}

/** tfjs's cpu backend whose storage cooperates with the BufferPool. */
export class NativeBackendCPU extends MathBackendCPU {
  readonly pool = poolFromEnv();

  constructor() {
    super();
    // The cpu backend's first-use banner recommends tfjs-node; not relevant here.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  override write(
    values: Parameters<MathBackendCPU['write']>[0],
    shape: number[],
    dtype: Parameters<MathBackendCPU['write']>[2],
  ): DataId {
    this.pool.attach(values);
    return super.write(values, shape, dtype);
  }

  override move(
    dataId: DataId,
    values: Parameters<MathBackendCPU['move']>[1],
    shape: number[],
    dtype: Parameters<MathBackendCPU['move']>[3],
    refCount: number,
  ): void {
    this.pool.attach(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override readSync(dataId: DataId): ReturnType<MathBackendCPU['readSync']> {
    const values = super.readSync(dataId);
    this.pool.escape(values);
    return values;
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.data.get(dataId)?.values;
    const released = super.disposeData(dataId, force);
    if (released && values !== undefined && !this.data.has(dataId)) this.pool.detach(values);
    return released;
  }
}

/** `MTL_IN_PLACE_UPDATES=0` (the A/B) turns in-place updates off; read once, not per update. */
const IN_PLACE_UPDATES = process.env.MTL_IN_PLACE_UPDATES !== '0';

/**
 * The values of `t` when a kernel may overwrite them as its output: on the native backend, a pool-made array
 * that nothing else can see (one tensor holds the data, and the pool says the array never escaped); else
 * null. The optimizers update parameters and slots in place this way, as PyTorch's do: no fresh buffer, so
 * no page faults on first touch, for the largest arrays of a step.
 */
export function overwritable(backend: unknown, t: TensorInfo): Float32Array | null {
  if (!(backend instanceof NativeBackendCPU) || !IN_PLACE_UPDATES) return null;
  if (backend.refCount(t.dataId) !== 1) return null;
  const values = backend.data.get(t.dataId)?.values;
  return values instanceof Float32Array && backend.pool.exclusive(values) ? values : null;
}

/** Output storage for a native kernel (pooled when the backend is the native one). */
export function allocOutput(backend: unknown, n: number): Float32Array {
  return backend instanceof NativeBackendCPU ? backend.pool.get(n) : new Float32Array(n);
}
