import {
  decodeBf16,
  decodeF16,
  reduceFinalF16,
  encodeBf16,
  encodeBf16RoundTrip,
  encodeF16,
  encodeF16RoundTrip,
  F16_TO_F32,
} from './half.js';
import { nativeKernels, type ElementKernels, type Half } from './kernels.js';
import { simdKernels } from './simd.js';
import { bytesOf, f32View, u16View } from './views.js';

/**
 * The element kernels in use, bit-identical to the JavaScript loops below: the native addon
 * (AVX2 + F16C) where it was built, else WebAssembly SIMD, else (null) the JavaScript loops.
 */
const kernels: ElementKernels | null = nativeKernels() ?? simdKernels();

/** Which element kernels run: 'native', 'wasm-simd' or 'js'. */
export const KERNELS: 'native' | 'wasm-simd' | 'js' = kernels ? kernels.name : 'js';

export type Wire = 'f32' | 'f16' | 'bf16';
export type ElementwiseOp = 'sum' | 'max';

/**
 * How Float32 data travels: `encode` returns the bytes to send (for f32 a view
 * of the source itself: no copy), `decodeInto`/`reduceInto` consume received
 * bytes. Reduction always accumulates in f32.
 */
export interface WireCodec {
  readonly wire: Wire;
  readonly bytesPerElement: number;
  /** Bytes for src; `take` supplies fresh memory when the wire needs encoding. */
  encode(src: Float32Array, take: (bytes: number) => Uint8Array): Uint8Array;
  /** As encode, and rounds src in place to exactly what receivers will decode. */
  encodeRound(src: Float32Array, take: (bytes: number) => Uint8Array): Uint8Array;
  decodeInto(bytes: Uint8Array, dst: Float32Array): void;
  reduceInto(bytes: Uint8Array, dst: Float32Array, op: ElementwiseOp): void;
  /**
   * The owner's last reduction step in one pass: dst = (dst ⊕ decode(bytes)) / divisor, then,
   * when `take` is given, encode dst (rounding it in place) and return the bytes to send.
   */
  reduceFinal(
    bytes: Uint8Array,
    dst: Float32Array,
    op: ElementwiseOp,
    divisor: number,
    take: ((bytes: number) => Uint8Array) | null,
  ): Uint8Array | null;
  /**
   * Memory to receive a payload of `bytes` into so that the next decode/reduce reads it in place
   * (the SIMD kernels' input region); null: use your own. Valid until the next codec call.
   */
  inputArea?(bytes: number): Uint8Array | null;
  /**
   * encode(dst ⊕ decode(bytes)) in one pass, leaving dst unspecified: a ring step whose partial
   * sum is only forwarded (its chunk is overwritten by the all-gather). Same bits as reduceInto
   * then encode.
   */
  reduceEncode?(
    bytes: Uint8Array,
    dst: Float32Array,
    op: ElementwiseOp,
    take: (bytes: number) => Uint8Array,
  ): Uint8Array;
}

/** reduceFinal from the separate steps (for wires without a fused kernel). */
function composedFinal(codec: WireCodec) {
  return (
    bytes: Uint8Array,
    dst: Float32Array,
    op: ElementwiseOp,
    divisor: number,
    take: ((n: number) => Uint8Array) | null,
  ) => {
    codec.reduceInto(bytes, dst, op);
    if (divisor !== 1) divideF32(dst, divisor);
    return take ? codec.encodeRound(dst, take) : null;
  };
}

function reduceFinalF32(dst: Float32Array, src: Float32Array, op: ElementwiseOp, divisor: number): void {
  const n = dst.length;
  if (op === 'sum' && divisor !== 1) {
    // One load and one store per element: `dst[i] += s; dst[i] /= d` stored, reloaded and
    // divided (latency-bound, ~4 ns/element here). fround(a + b) is the first store's rounding;
    // the division's result rounds on the store. For a power-of-two divisor, multiplying by its
    // reciprocal is exact in f64, so the stored f32 is identical and the divide disappears.
    const inv = 1 / divisor;
    if (Number.isInteger(Math.log2(divisor)))
      for (let i = 0; i < n; i++) dst[i] = Math.fround(dst[i]! + src[i]!) * inv;
    else for (let i = 0; i < n; i++) dst[i] = Math.fround(dst[i]! + src[i]!) / divisor;
  } else {
    reduceF32(dst, src, op);
    if (divisor !== 1) divideF32(dst, divisor);
  }
}

export function reduceF32(dst: Float32Array, src: Float32Array, op: ElementwiseOp): void {
  const n = dst.length;
  if (op === 'sum') for (let i = 0; i < n; i++) dst[i]! += src[i]!;
  else
    for (let i = 0; i < n; i++) {
      const a = dst[i]!;
      const b = src[i]!;
      // NaN wins so that overflow checks after the reduction still see it.
      if (b > a || b !== b) dst[i] = b;
    }
}

/** dst /= divisor elementwise (the mean's division, done once by the chunk's owner). */
export function divideF32(dst: Float32Array, divisor: number): void {
  const n = dst.length;
  for (let i = 0; i < n; i++) dst[i]! /= divisor;
}

function reduceF16(dst: Float32Array, src: Uint16Array, op: ElementwiseOp): void {
  const n = dst.length;
  const t = F16_TO_F32;
  if (op === 'sum') for (let i = 0; i < n; i++) dst[i]! += t[src[i]!]!;
  else
    for (let i = 0; i < n; i++) {
      const b = t[src[i]!]!;
      if (b > dst[i]! || b !== b) dst[i] = b;
    }
}

function checkLength(bytes: Uint8Array, dst: Float32Array, bpe: number): void {
  if (bytes.byteLength !== dst.length * bpe) {
    throw new Error(
      `payload of ${bytes.byteLength} bytes where ${dst.length} elements × ${bpe} bytes were expected`,
    );
  }
}

const f32Codec = {
  wire: 'f32',
  bytesPerElement: 4,
  encode: (src: Float32Array) => bytesOf(src),
  encodeRound: (src: Float32Array) => bytesOf(src),
  decodeInto(bytes: Uint8Array, dst: Float32Array) {
    checkLength(bytes, dst, 4);
    bytesOf(dst).set(bytes);
  },
  reduceInto(bytes: Uint8Array, dst: Float32Array, op: ElementwiseOp) {
    checkLength(bytes, dst, 4);
    reduceF32(dst, f32View(bytes), op);
  },
  reduceFinal(
    bytes: Uint8Array,
    dst: Float32Array,
    op: ElementwiseOp,
    divisor: number,
    take: ((n: number) => Uint8Array) | null,
  ) {
    checkLength(bytes, dst, 4);
    reduceFinalF32(dst, f32View(bytes), op, divisor);
    return take ? bytesOf(dst) : null;
  },
} satisfies WireCodec;

function u32(src: Float32Array): Uint32Array {
  return new Uint32Array(src.buffer, src.byteOffset, src.length);
}

/** The first n 16-bit values of an encode buffer (from the pool: 8-byte aligned). */
function u16Of(out: Uint8Array, n: number): Uint16Array {
  return new Uint16Array(out.buffer, out.byteOffset, n);
}

const f16Codec: WireCodec = {
  wire: 'f16',
  bytesPerElement: 2,
  encode(src, take) {
    const out = take(src.length * 2);
    encodeF16(u32(src), u16Of(out, src.length));
    return out;
  },
  encodeRound(src, take) {
    const out = take(src.length * 2);
    encodeF16RoundTrip(u32(src), u16Of(out, src.length));
    return out;
  },
  decodeInto(bytes, dst) {
    checkLength(bytes, dst, 2);
    decodeF16(u16View(bytes), dst);
  },
  reduceInto(bytes, dst, op) {
    checkLength(bytes, dst, 2);
    reduceF16(dst, u16View(bytes), op);
  },
  reduceFinal(bytes, dst, op, divisor, take) {
    checkLength(bytes, dst, 2);
    const out = take ? take(dst.length * 2) : null;
    reduceFinalF16(dst, u16View(bytes), op === 'max', divisor, out ? u16Of(out, dst.length) : null);
    return out;
  },
};

let bfScratch = new Float32Array(0);

const bf16Codec: WireCodec = {
  wire: 'bf16',
  bytesPerElement: 2,
  encode(src, take) {
    const out = take(src.length * 2);
    encodeBf16(u32(src), u16Of(out, src.length));
    return out;
  },
  encodeRound(src, take) {
    const out = take(src.length * 2);
    encodeBf16RoundTrip(u32(src), u16Of(out, src.length));
    return out;
  },
  decodeInto(bytes, dst) {
    checkLength(bytes, dst, 2);
    decodeBf16(u16View(bytes), u32(dst));
  },
  reduceInto(bytes, dst, op) {
    checkLength(bytes, dst, 2);
    if (bfScratch.length < dst.length) bfScratch = new Float32Array(dst.length);
    const tmp = bfScratch.subarray(0, dst.length);
    decodeBf16(u16View(bytes), u32(tmp));
    reduceF32(dst, tmp, op);
  },
  reduceFinal: (...args) => composedFinal(bf16Codec)(...args),
};

/** The f32 wire with its reductions on the element kernels (same bits as f32Codec). */
function kernelF32Codec(k: ElementKernels): WireCodec {
  return {
    ...f32Codec,
    inputArea: (bytes) => k.inputArea('f32', bytes),
    reduceInto(bytes, dst, op) {
      checkLength(bytes, dst, 4);
      k.reduceF32(dst, f32View(bytes), op === 'max', 1);
    },
    reduceFinal(bytes, dst, op, divisor, take) {
      checkLength(bytes, dst, 4);
      k.reduceF32(dst, f32View(bytes), op === 'max', divisor);
      return take ? bytesOf(dst) : null;
    },
  };
}

/** The 16-bit wires on the element kernels (same bits as the codecs above). */
function kernelHalfCodec(half: Half, k: ElementKernels): WireCodec {
  return {
    wire: half,
    bytesPerElement: 2,
    inputArea: (bytes) => k.inputArea('half', bytes),
    encode(src, take) {
      const out = take(src.length * 2);
      k.encode(half, src, u16Of(out, src.length), false);
      return out;
    },
    encodeRound(src, take) {
      const out = take(src.length * 2);
      k.encode(half, src, u16Of(out, src.length), true);
      return out;
    },
    decodeInto(bytes, dst) {
      checkLength(bytes, dst, 2);
      k.decode(half, u16View(bytes), dst);
    },
    reduceInto(bytes, dst, op) {
      checkLength(bytes, dst, 2);
      k.reduceHalf(half, dst, u16View(bytes), op === 'max', 1, null);
    },
    reduceFinal(bytes, dst, op, divisor, take) {
      checkLength(bytes, dst, 2);
      const out = take ? take(dst.length * 2) : null;
      k.reduceHalf(half, dst, u16View(bytes), op === 'max', divisor, out ? u16Of(out, dst.length) : null);
      return out;
    },
    reduceEncode(bytes, dst, op, take) {
      checkLength(bytes, dst, 2);
      const out = take(dst.length * 2);
      k.reduceHalf(half, dst, u16View(bytes), op === 'max', 1, u16Of(out, dst.length), false);
      return out;
    },
  };
}

/** The JavaScript codecs (the fallback; tests compare them with {@link CODECS}). */
export const JS_CODECS: Readonly<Record<Wire, WireCodec>> = { f32: f32Codec, f16: f16Codec, bf16: bf16Codec };

export const CODECS: Readonly<Record<Wire, WireCodec>> = {
  f32: kernels ? kernelF32Codec(kernels) : f32Codec,
  f16: kernels ? kernelHalfCodec('f16', kernels) : f16Codec,
  bf16: kernels ? kernelHalfCodec('bf16', kernels) : bf16Codec,
};
