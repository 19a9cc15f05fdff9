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
  try {
    const require = createRequire(import.meta.url);
    cached = { addon: require(ADDON_PATH) as DnnlAddon };
  } catch (err) {
    cached = { addon: null, reason: `the oneDNN addon failed to load: ${(err as Error).message}` };
  }
  return cached;
}
