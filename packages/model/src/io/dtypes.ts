/** Element types of safetensors files (and of tensors read from PyTorch files). */
export type Dtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Record<Dtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** A tensor as bytes: little-endian, row-major (C order), `shape` in the file's own layout. */
export interface RawTensor {
  dtype: Dtype;
  shape: number[];
  bytes: Uint8Array;
}

export function isDtype(s: string): s is Dtype {
  return Object.hasOwn(DTYPE_BYTES, s);
}

export function numElements(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function view(raw: RawTensor): DataView {
  return new DataView(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.byteLength);
}

/** IEEE half → float. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float → IEEE half, round to nearest even. */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  e = h >> 10;
  return sign | h;
}

/** float → bfloat16 bits, round to nearest even. */
export function floatToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decodes any floating or integer dtype to float32 (int64 must fit in a double exactly). */
export function rawToFloat32(raw: RawTensor, name = 'tensor'): Float32Array {
  const n = numElements(raw.shape);
  checkSize(raw, n, name);
  const dv = view(raw);
  const out = new Float32Array(n);
  switch (raw.dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) {
        u32[0] = dv.getUint16(i * 2, true) << 16;
        out[i] = f32[0]!;
      }
      break;
    default: {
      const ints = rawToInt32(raw, name);
      for (let i = 0; i < n; i++) out[i] = ints[i]!;
    }
  }
  return out;
}

/** Decodes an integer/bool dtype to int32; fails naming the tensor when an int64 does not fit. */
export function rawToInt32(raw: RawTensor, name = 'tensor'): Int32Array {
  const n = numElements(raw.shape);
  checkSize(raw, n, name);
  const dv = view(raw);
  const out = new Int32Array(n);
  switch (raw.dtype) {
    case 'I64':
      for (let i = 0; i < n; i++) {
        const v = dv.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n)
          throw new Error(`${name}: int64 value ${v} does not fit int32`);
        out[i] = Number(v);
      }
      break;
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true);
      break;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true);
      break;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      break;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = dv.getUint8(i);
      break;
    default:
      throw new Error(`${name}: cannot read ${raw.dtype} as integers`);
  }
  return out;
}

/** Encodes float32 values as F32, F16 or BF16. */
export function rawFromFloat32(
  data: Float32Array,
  shape: number[],
  dtype: 'F32' | 'F16' | 'BF16' = 'F32',
): RawTensor {
  checkShape(data.length, shape);
  if (dtype === 'F32') {
    const bytes = new Uint8Array(data.length * 4);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i]!, true);
    return { dtype, shape, bytes };
  }
  const bytes = new Uint8Array(data.length * 2);
  const dv = new DataView(bytes.buffer);
  const enc = dtype === 'F16' ? floatToHalf : floatToBf16;
  for (let i = 0; i < data.length; i++) dv.setUint16(i * 2, enc(data[i]!), true);
  return { dtype, shape, bytes };
}

/** Encodes int32 values as I32 or I64. */
export function rawFromInt32(data: Int32Array, shape: number[], dtype: 'I32' | 'I64' = 'I32'): RawTensor {
  checkShape(data.length, shape);
  const w = DTYPE_BYTES[dtype];
  const bytes = new Uint8Array(data.length * w);
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) {
    if (dtype === 'I32') dv.setInt32(i * 4, data[i]!, true);
    else dv.setBigInt64(i * 8, BigInt(data[i]!), true);
  }
  return { dtype, shape, bytes };
}

function checkSize(raw: RawTensor, n: number, name: string): void {
  if (raw.bytes.byteLength !== n * DTYPE_BYTES[raw.dtype]) {
    throw new Error(
      `${name}: ${raw.bytes.byteLength} bytes for ${raw.dtype} [${raw.shape}] (expected ${n * DTYPE_BYTES[raw.dtype]})`,
    );
  }
}

function checkShape(length: number, shape: number[]): void {
  if (numElements(shape) !== length) throw new Error(`${length} values do not fill shape [${shape}]`);
}
