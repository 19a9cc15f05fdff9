import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The oneDNN addon's functions (packages/backend/native/dnnl_addon.cc). All synchronous. */
export interface DnnlAddon {
  /** y = conv(x, filter) (+ bias) (relu if activation = 1); params from `convParams`. */
  conv2d(
    x: Float32Array,
    filter: Float32Array,
    bias: Float32Array | null,
    y: Float32Array,
    params: Int32Array,
    activation: 0 | 1,
  ): void;
  conv2dBackpropInput(dy: Float32Array, filter: Float32Array, dx: Float32Array, params: Int32Array): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, params: Int32Array): void;
  /** Row-major batched sgemm; params = [batch, m, n, k, transA, transB, strideA, strideB]. */
  matmul(a: Float32Array, b: Float32Array, c: Float32Array, params: Int32Array): void;
  /** Broadcasting binary op (codes in elementwise.ts) with geometry from `broadcastGeometry`. */
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, geometry: Int32Array): void;
  /** out[o, i] = reduce over r < n of x[o, r, i]; op 0 sum, 1 mean, 2 max, 3 min. */
  reduce(op: number, x: Float32Array, out: Float32Array, outer: number, n: number, inner: number): void;
  compare(op: number, a: Float32Array, b: Float32Array, out: Uint8Array, geometry: Int32Array): void;
  select(cond: Uint8Array, t: Float32Array, e: Float32Array, out: Float32Array): void;
  /** Strided copy with geometry from `copyGeometry`. */
  copy(src: Float32Array, dst: Float32Array, geometry: Int32Array): void;
  /** Training-mode batch norm over x viewed as [n, channels]: writes y, mean, invStd and the biased variance. */
  batchNormForward(
    x: Float32Array,
    scale: Float32Array,
    offset: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    variance: Float32Array,
    channels: number,
    eps: number,
  ): void;
  /** Its backward: dx, dScale, dOffset from x, dy and the forward's mean and invStd. */
  batchNormBackward(
    x: Float32Array,
    dy: Float32Array,
    scale: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    dx: Float32Array,
    dScale: Float32Array,
    dOffset: Float32Array,
    channels: number,
  ): void;
  /** z = prelu(batchNorm(x)) in training mode, without storing the batch norm's output. */
  batchNormPreluForward(
    x: Float32Array,
    scale: Float32Array,
    offset: Float32Array,
    alpha: Float32Array,
    z: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    variance: Float32Array,
    channels: number,
    eps: number,
  ): void;
  /** Its backward (the batch norm's output recomputed from x). */
  batchNormPreluBackward(
    x: Float32Array,
    dz: Float32Array,
    scale: Float32Array,
    offset: Float32Array,
    alpha: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    dx: Float32Array,
    dScale: Float32Array,
    dOffset: Float32Array,
    dAlpha: Float32Array,
    channels: number,
  ): void;
  /** PReLU's backward with per-channel slopes (last axis). */
  preluBackward(
    x: Float32Array,
    alpha: Float32Array,
    dy: Float32Array,
    dx: Float32Array,
    dAlpha: Float32Array,
    channels: number,
  ): void;
  /** One SGD update (torch.optim.SGD's float32 operations); buffers null when absent. */
  sgdStep(
    param: Float32Array,
    grad: Float32Array,
    buf: Float32Array | null,
    paramOut: Float32Array,
    bufOut: Float32Array | null,
    weightDecay: number,
    momentum: number,
    lr: number,
  ): void;
  /** One Adam update (torch 1.13 single-tensor Adam's float32 operations); m, v null on the first step. */
  adamStep(
    param: Float32Array,
    grad: Float32Array,
    m: Float32Array | null,
    v: Float32Array | null,
    paramOut: Float32Array,
    mOut: Float32Array,
    vOut: Float32Array,
    weightDecay: number,
    beta1: number,
    beta2: number,
    bc2Sqrt: number,
    eps: number,
    stepSize: number,
  ): void;
  implInfo(kind: 'fwd' | 'bwdData' | 'bwdFilter', params: Int32Array): string;
  cacheSize(): number;
  version(): string;
}

export type AddonLoad = { addon: DnnlAddon; reason?: undefined } | { addon: null; reason: string };

export const ADDON_PATH = fileURLToPath(new URL('../../build/Release/mtl_dnnl.node', import.meta.url));

let cached: AddonLoad | undefined;

/** Loads the addon once; `reason` says why it is unavailable (not built, or the library failed to load). */
export function loadDnnlAddon(): AddonLoad {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) {
    cached = {
      addon: null,
      reason:
        'the oneDNN addon is not built (install libdnnl-dev, then `npm run build:native -w @mtlface/backend`)',
    };
    return cached;
  }
  // libgomp reads OMP_WAIT_POLICY once, when the addon brings it in. Its default spins a thread for
  // a while after every parallel region: here that is after every oneDNN primitive, while the main
  // thread goes on with single-threaded element-wise loops, so the spinner takes the second core
  // from them and from the other processes. Measured on this 2-core Xeon under load 20–23, ir-tiny
  // 64 batch 8: 4.7 s of user time and 4.7–7.2 s per step spinning, 2.8 s and 2.8–3.0 s passive.
  // Set for the load only (children, PyTorch in the benchmarks included, keep their default).
  const policy = process.env.OMP_WAIT_POLICY;
  if (policy === undefined) process.env.OMP_WAIT_POLICY = 'passive';
  try {
    const require = createRequire(import.meta.url);
    cached = { addon: require(ADDON_PATH) as DnnlAddon };
  } catch (err) {
    cached = { addon: null, reason: `the oneDNN addon failed to load: ${(err as Error).message}` };
  } finally {
    if (policy === undefined) delete process.env.OMP_WAIT_POLICY;
  }
  return cached;
}
