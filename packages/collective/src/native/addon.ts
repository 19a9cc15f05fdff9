import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The optional native addon (native/collective_addon.c, built by `npm ci` when a C compiler is
 * there): mmap for the shared-memory rings and the wires' element kernels on AVX2 + F16C.
 * Everything has a fallback; `MTL_PG_NATIVE=0` forces it (the tests run both).
 */
export interface CollectiveAddon {
  /** ArrayBuffer over mmap(MAP_SHARED) of `fd`; `writable` first reserves the pages (ENOSPC is an error). */
  map(fd: number, bytes: number, writable: boolean): ArrayBuffer;
  reduceF32(acc: Float32Array, src: Float32Array, max: boolean, divisor: number): void;
  /** half 0 = f16, 1 = bf16. */
  encode(half: number, src: Float32Array, dst: Uint16Array, round: boolean): void;
  decode(half: number, src: Uint16Array, dst: Float32Array): void;
  reduceHalf(
    half: number,
    acc: Float32Array,
    src: Uint16Array,
    max: boolean,
    divisor: number,
    out: Uint16Array | null,
    keepAcc: boolean,
  ): void;
  /** Turns the AVX2 path on or off (tests); returns whether it is on. */
  setVector(on: boolean): boolean;
  /** Whether the AVX2 + F16C path runs (else portable C). */
  readonly vector: boolean;
}

let loaded: CollectiveAddon | null | undefined;
let why = '';

/** The addon, or null (not built, not loadable, or MTL_PG_NATIVE=0): see {@link nativeAddonMissing}. */
export function nativeAddon(): CollectiveAddon | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env.MTL_PG_NATIVE === '0') {
    why = 'MTL_PG_NATIVE=0';
    return loaded;
  }
  // src/native/addon.ts and dist/native/addon.js sit at the same depth below the package.
  const path = fileURLToPath(new URL('../../build/Release/mtl_collective.node', import.meta.url));
  try {
    loaded = createRequire(import.meta.url)(path) as CollectiveAddon;
  } catch (err) {
    why = `${path}: ${(err as Error).message.split('\n')[0]}`;
  }
  return loaded;
}

/** Why the addon is not in use ('' when it is). */
export function nativeAddonMissing(): string {
  nativeAddon();
  return why;
}
