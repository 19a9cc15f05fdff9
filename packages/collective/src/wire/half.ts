/**
 * IEEE binary16 and bfloat16 conversion over raw bits: round-to-nearest-even,
 * overflow to ±inf, inf and NaN preserved (NaN comes out quiet, sign kept).
 * The encoder is F. Giesen's float_to_half_fast3_rtne on Uint32 views; decoding
 * is a 65,536-entry table, so "decode and add" is one load per element.
 */

const F32_INF = 0xff << 23;
const F16_MAX_PLUS = (127 + 16) << 23; // 2^16: anything at or above rounds to inf
const DENORM_LIMIT = 113 << 23; // below 2^-14 the half is subnormal
const DENORM_MAGIC_BITS = (127 - 15 + 23 - 10 + 1) << 23;
const DENORM_MAGIC = new Float32Array(new Uint32Array([DENORM_MAGIC_BITS]).buffer)[0]!;
const EXP_REBIAS = ((15 - 127) << 23) + 0xfff;

const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

/** f16 bits → f32 value, indexed by the 16-bit pattern. */
export const F16_TO_F32: Float32Array = (() => {
  const t = new Float32Array(65536);
  const u = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const man = h & 0x3ff;
    if (exp === 0x1f) u[h] = sign | F32_INF | (man << 13) | (man ? 0x400000 : 0);
    else if (exp === 0) t[h] = (sign ? -1 : 1) * man * 2 ** -24;
    else u[h] = sign | ((exp + 112) << 23) | (man << 13);
  }
  return t;
})();

/** One f32 bit pattern → f16 bit pattern. */
export function f32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  let u = bits & 0x7fffffff;
  let o: number;
  if (u >= F16_MAX_PLUS) o = u > F32_INF ? 0x7e00 : 0x7c00;
  else if (u < DENORM_LIMIT) {
    scratchU[0] = u;
    scratchF[0] = scratchF[0]! + DENORM_MAGIC;
    o = scratchU[0]! - DENORM_MAGIC_BITS;
  } else {
    const odd = (u >>> 13) & 1;
    u = (u + EXP_REBIAS + odd) | 0;
    o = u >>> 13;
  }
  return o | sign;
}

/** Encodes src (as f32 bits) into dst f16 bits, element by element. */
export function encodeF16(src: Uint32Array, dst: Uint16Array): void {
  const n = src.length;
  for (let i = 0; i < n; i++) {
    const bits = src[i]!;
    const sign = (bits >>> 16) & 0x8000;
    let u = bits & 0x7fffffff;
    if (u >= DENORM_LIMIT && u < F16_MAX_PLUS) {
      u = (u + EXP_REBIAS + ((u >>> 13) & 1)) | 0;
      dst[i] = (u >>> 13) | sign;
    } else dst[i] = f32BitsToF16(bits);
  }
}

/**
 * Encodes src into dst and writes the rounded value back into src, so the
 * sender holds exactly what its peers will decode (every rank ends bit-identical).
 */
export function encodeF16RoundTrip(src: Uint32Array, dst: Uint16Array): void {
  encodeF16(src, dst);
  const f = new Float32Array(src.buffer, src.byteOffset, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) f[i] = F16_TO_F32[dst[i]!]!;
}

export function decodeF16(src: Uint16Array, dst: Float32Array): void {
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = F16_TO_F32[src[i]!]!;
}

export function f32BitsToBf16(bits: number): number {
  if ((bits & 0x7fffffff) > F32_INF) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function encodeBf16(src: Uint32Array, dst: Uint16Array): void {
  const n = src.length;
  for (let i = 0; i < n; i++) {
    const bits = src[i]!;
    if ((bits & 0x7fffffff) > F32_INF) dst[i] = (bits >>> 16) | 0x40;
    else dst[i] = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
  }
}

export function encodeBf16RoundTrip(src: Uint32Array, dst: Uint16Array): void {
  encodeBf16(src, dst);
  const n = src.length;
  for (let i = 0; i < n; i++) src[i] = dst[i]! << 16;
}

export function decodeBf16(src: Uint16Array, dst: Uint32Array): void {
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = src[i]! << 16;
}

/**
 * The chunk owner's last reduce-scatter step on the f16 wire, fused into one
 * pass: acc = (acc ⊕ decode(src)) [/ divisor], then (if `out`) encode acc into
 * out and round acc to exactly the encoded value. ⊕ is + or max (NaN wins).
 */
export function reduceFinalF16(
  acc: Float32Array,
  src: Uint16Array,
  max: boolean,
  divisor: number,
  out: Uint16Array | null,
): void {
  const bits = new Uint32Array(acc.buffer, acc.byteOffset, acc.length);
  const t = F16_TO_F32;
  const n = acc.length;
  for (let i = 0; i < n; i++) {
    const b = t[src[i]!]!;
    if (!max) acc[i]! += b;
    else if (b > acc[i]! || b !== b) acc[i] = b;
    if (divisor !== 1) acc[i]! /= divisor;
    if (out === null) continue;
    const f = bits[i]!;
    const sign = (f >>> 16) & 0x8000;
    let u = f & 0x7fffffff;
    let h: number;
    if (u >= DENORM_LIMIT && u < F16_MAX_PLUS) {
      u = (u + EXP_REBIAS + ((u >>> 13) & 1)) | 0;
      h = (u >>> 13) | sign;
    } else h = f32BitsToF16(f);
    out[i] = h;
    acc[i] = t[h]!;
  }
}
