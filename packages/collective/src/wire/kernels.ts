import { nativeAddon, type CollectiveAddon } from '../native/addon.js';

export type Half = 'f16' | 'bf16';

/**
 * The wires' element kernels as the codecs use them. Two implementations, bit-identical to the
 * JavaScript loops in half.ts/codec.ts: the native addon (AVX2 + F16C, on the caller's arrays)
 * and WebAssembly SIMD (simd.ts, which streams through its own memory).
 */
export interface ElementKernels {
  readonly name: 'native' | 'wasm-simd';
  /**
   * Memory to receive a payload into so that the next kernel reads it in place (WebAssembly's
   * input region); null: read it where it is.
   */
  inputArea(kind: 'f32' | 'half', bytes: number): Uint8Array | null;
  /** dst = encode(src); with `round`, src is rewritten to the decoded value (what receivers see). */
  encode(half: Half, src: Float32Array, dst: Uint16Array, round: boolean): void;
  decode(half: Half, src: Uint16Array, dst: Float32Array): void;
  /**
   * acc = (acc ⊕ decode(src)) / divisor; then, when `out` is given, out = encode(acc) and acc is
   * rounded to the decoded value. ⊕ is + or max (NaN wins). With `keepAcc` false (and `out`),
   * acc is left as it was: only the encoded result is wanted.
   */
  reduceHalf(
    half: Half,
    acc: Float32Array,
    src: Uint16Array,
    max: boolean,
    divisor: number,
    out: Uint16Array | null,
    keepAcc?: boolean,
  ): void;
  /** acc = (acc ⊕ src) / divisor in f32. */
  reduceF32(acc: Float32Array, src: Float32Array, max: boolean, divisor: number): void;
}

const code = (h: Half) => (h === 'f16' ? 0 : 1);

/** The native addon's kernels (no copies: they run on the arrays they are given). */
export class NativeKernels implements ElementKernels {
  readonly name = 'native';
  constructor(readonly addon: CollectiveAddon) {}
  inputArea = (): null => null;
  encode: ElementKernels['encode'] = (half, src, dst, round) =>
    this.addon.encode(code(half), src, dst, round);
  decode: ElementKernels['decode'] = (half, src, dst) => this.addon.decode(code(half), src, dst);
  reduceHalf: ElementKernels['reduceHalf'] = (half, acc, src, max, divisor, out, keepAcc = true) =>
    this.addon.reduceHalf(code(half), acc, src, max, divisor, out, keepAcc);
  reduceF32: ElementKernels['reduceF32'] = (acc, src, max, divisor) =>
    this.addon.reduceF32(acc, src, max, divisor);
}

/** The native kernels, or null when the addon is not there (or MTL_PG_NATIVE=0). */
export function nativeKernels(): NativeKernels | null {
  const a = nativeAddon();
  return a ? new NativeKernels(a) : null;
}
