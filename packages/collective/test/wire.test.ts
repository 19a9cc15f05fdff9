import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeBf16,
  decodeF16,
  encodeBf16,
  encodeF16,
  f32BitsToBf16,
  f32BitsToF16,
  F16_TO_F32,
} from '../src/index.js';
import type { ElementKernels, Half } from '../src/wire/kernels.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]!);
const fromBits = (b: number) => ((u32[0] = b >>> 0), f32[0]!);

/** Independent reference: the nearest binary16 by exhaustive neighbour search in doubles, ties to even. */
function refF16(x: number, bits = bitsOf(x)): number {
  if (Number.isNaN(x)) return ((bits >>> 16) & 0x8000) | 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // 65504 + half an ulp (16) rounds to inf
  // All finite halves are k·2^(e) with the subnormal step 2^-24; find the bracketing pair.
  let best = 0;
  let bestErr = Infinity;
  const exp = a < 2 ** -14 ? -24 : Math.floor(Math.log2(a)) - 10;
  const step = 2 ** Math.max(exp, -24);
  const lo = Math.floor(a / step) * step;
  for (const cand of [lo, lo + step]) {
    const h = halfBits(cand);
    const err = Math.abs(cand - a);
    if (err < bestErr || (err === bestErr && (h & 1) === 0)) {
      best = h;
      bestErr = err;
    }
  }
  return sign | best;
}

function halfBits(v: number): number {
  if (v === 0) return 0;
  if (v >= 65536) return 0x7c00;
  if (v < 2 ** -14) return Math.round(v / 2 ** -24);
  const e = Math.floor(Math.log2(v));
  const m = v / 2 ** e - 1;
  if (e > 15) return 0x7c00;
  return ((e + 15) << 10) | Math.round(m * 1024);
}

function refBf16(x: number): number {
  const b = bitsOf(x);
  if (Number.isNaN(x)) return ((b >>> 16) | 0x40) & 0xffff;
  if (!Number.isFinite(x)) return b >>> 16;
  // Exact doubles: pick the nearer of truncation and truncation + 1 ulp, ties to even.
  const lo = (b >>> 16) & 0xffff;
  const loVal = fromBits(lo << 16);
  const hiBits = ((lo + 1) & 0xffff) << 16;
  // Past the largest finite value the "next" value is ±2^128 (which is then inf).
  const hiVal = (hiBits & 0x7fffffff) === 0x7f800000 ? Math.sign(x) * 2 ** 128 : fromBits(hiBits);
  const dLo = Math.abs(x - loVal);
  const dHi = Math.abs(hiVal - x);
  if (dLo < dHi || (dLo === dHi && (lo & 1) === 0)) return lo;
  return (lo + 1) & 0xffff;
}

test('every f16 pattern decodes and re-encodes to itself (NaNs stay NaN)', () => {
  for (let h = 0; h < 65536; h++) {
    const v = F16_TO_F32[h]!;
    const back = f32BitsToF16(bitsOf(v));
    if (Number.isNaN(v)) {
      assert.ok((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0);
      assert.equal(back & 0x7e00, 0x7e00, `NaN ${h.toString(16)} stays a quiet NaN`);
      assert.equal(back & 0x8000, h & 0x8000, 'NaN keeps its sign');
    } else assert.equal(back, h, `pattern 0x${h.toString(16)} (${v})`);
  }
});

test('f16 decode table matches the format definition', () => {
  assert.equal(F16_TO_F32[0x3c00], 1);
  assert.equal(F16_TO_F32[0xc000], -2);
  assert.equal(F16_TO_F32[0x7bff], 65504);
  assert.equal(F16_TO_F32[0x0001], 2 ** -24);
  assert.equal(F16_TO_F32[0x03ff], 1023 * 2 ** -24);
  assert.equal(F16_TO_F32[0x7c00], Infinity);
  assert.equal(F16_TO_F32[0xfc00], -Infinity);
  assert.ok(Object.is(F16_TO_F32[0x8000], -0));
});

test('f16 encoding rounds to nearest, ties to even, overflow to inf', () => {
  assert.equal(f32BitsToF16(bitsOf(1 + 2 ** -11)), 0x3c00, 'tie between 1 and 1+2^-10 goes to even (1)');
  assert.equal(f32BitsToF16(bitsOf(1 + 3 * 2 ** -11)), 0x3c02, 'tie goes to even (1+2^-9)');
  assert.equal(f32BitsToF16(bitsOf(65519)), 0x7bff);
  assert.equal(f32BitsToF16(bitsOf(65520)), 0x7c00);
  assert.equal(f32BitsToF16(bitsOf(-1e9)), 0xfc00);
  assert.equal(f32BitsToF16(bitsOf(2 ** -25)), 0, 'half the smallest subnormal ties to zero');
  assert.equal(f32BitsToF16(bitsOf(3 * 2 ** -25)), 2, 'subnormal tie to even');
  assert.equal(f32BitsToF16(bitsOf(-Infinity)), 0xfc00);
  assert.equal(f32BitsToF16(bitsOf(NaN)) & 0x7e00, 0x7e00);
});

test('f16 and bf16 encoders agree with independent references on random floats', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (bits) => {
      const x = fromBits(bits);
      assert.equal(
        f32BitsToF16(bits >>> 0),
        refF16(x, bits >>> 0),
        `f16 of ${x} (0x${(bits >>> 0).toString(16)})`,
      );
      assert.equal(f32BitsToBf16(bits >>> 0), refBf16(x), `bf16 of ${x}`);
    }),
    { numRuns: 20000 },
  );
  fc.assert(
    fc.property(fc.float({ min: -70000, max: 70000, noNaN: true }), (x) => {
      assert.equal(f32BitsToF16(bitsOf(x)), refF16(Math.fround(x)), `f16 of ${x}`);
    }),
    { numRuns: 20000 },
  );
});

test('array codecs match the scalar ones and preserve inf and NaN', () => {
  const src = new Float32Array([
    0,
    -0,
    1,
    -1.5,
    65504,
    70000,
    -Infinity,
    Infinity,
    NaN,
    1e-7,
    3.14159,
    -2.5e-5,
  ]);
  const u = new Uint32Array(src.buffer);
  const h = new Uint16Array(src.length);
  const back = new Float32Array(src.length);
  encodeF16(u, h);
  decodeF16(h, back);
  for (let i = 0; i < src.length; i++) assert.equal(h[i], f32BitsToF16(u[i]!));
  assert.deepEqual(Array.from(back.subarray(5, 9)), [Infinity, -Infinity, Infinity, NaN]);
  encodeBf16(u, h);
  decodeBf16(h, new Uint32Array(back.buffer));
  for (let i = 0; i < src.length; i++) assert.equal(h[i], f32BitsToBf16(u[i]!));
  assert.deepEqual(Array.from(back.subarray(6, 9)), [-Infinity, Infinity, NaN]);
  assert.equal(back[2], 1);
});

test('the f32 mean step rounds exactly as "acc += x; acc /= N" for every divisor', async () => {
  const { CODECS } = await import('../src/wire/codec.js');
  const n = 4096;
  const seed = Number(process.env.MTL_TEST_SEED ?? 4242);
  let state = seed >>> 0;
  const random = (): number => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const rnd = () => fromBits((random() * 2 ** 32) >>> 0);
  for (const divisor of [2, 3, 4, 5, 8, 6, 1024]) {
    const acc = new Float32Array(n);
    const src = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      // Mostly ordinary magnitudes, some arbitrary bit patterns (subnormals, huge, inf, NaN).
      acc[i] = i % 8 === 0 ? rnd() : (random() - 0.5) * 2 ** ((i % 60) - 30);
      src[i] = i % 16 === 1 ? rnd() : (random() - 0.5) * 2 ** ((i % 50) - 25);
    }
    const want = acc.slice();
    for (let i = 0; i < n; i++) {
      want[i]! += src[i]!;
      want[i]! /= divisor;
    }
    CODECS.f32.reduceFinal(new Uint8Array(src.buffer), acc, 'sum', divisor, null);
    const got = new Uint32Array(acc.buffer);
    const ref = new Uint32Array(want.buffer);
    for (let i = 0; i < n; i++) {
      if (got[i] !== ref[i] && !(Number.isNaN(acc[i]) && Number.isNaN(want[i])))
        assert.fail(
          `divisor ${divisor}, element ${i}: got ${acc[i]}, want ${want[i]} (MTL_TEST_SEED=${seed})`,
        );
    }
  }
});

const isNaNPattern = (half: Half, v: number) => (v & 0x7fff) > (half === 'f16' ? 0x7c00 : 0x7f80);

async function checkKernels(k: ElementKernels): Promise<void> {
  const { reduceF32 } = await import('../src/wire/codec.js');
  const { encodeF16RoundTrip, encodeBf16RoundTrip, reduceFinalF16 } = await import('../src/wire/half.js');
  const specials = [
    0,
    -0,
    Infinity,
    -Infinity,
    NaN,
    -NaN,
    65504,
    -65504,
    65519,
    65519.99,
    65520,
    65536,
    1e9,
    -1e-9,
    2 ** -14,
    2 ** -15,
    2 ** -24,
    2 ** -25,
    3 * 2 ** -26,
    2 ** -26,
    5.960464477539063e-8,
    1e-45,
    -1e-45,
    2 ** -126,
    2 ** -149,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    1 + 2 ** -8,
    1 + 3 * 2 ** -8,
    3.4028234663852886e38,
  ];
  const nanBits = [0x7f800001, 0xffc00000, 0x7fbfffff, 0xff800001, 0x7fc00001, 0xffffffff];
  // Longer than one 2^18-element block, not a multiple of 8: blocks and tails both run.
  const len = (1 << 18) + 13;
  const bits = new Uint32Array(len);
  let s = 12345;
  for (let i = 0; i < len; i++) bits[i] = s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
  specials.forEach((x, i) => (bits[i] = bitsOf(x)));
  nanBits.forEach((b, i) => (bits[specials.length + i] = b));
  // Rounding ties of both formats, around 1 and in the f16 subnormal range.
  for (let i = 0; i < 200; i++) bits[100 + i] = ((127 << 23) | (i << 12) | 0x1000) >>> 0;
  for (let i = 0; i < 200; i++) bits[300 + i] = ((127 << 23) | (i << 16) | 0x8000) >>> 0;
  for (let i = 0; i < 200; i++) bits[500 + i] = bitsOf((i + 0.5) * 2 ** -24);
  const src = new Float32Array(bits.buffer);
  const same = (a: ArrayBufferView, b: ArrayBufferView, what: string) => {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) assert.fail(`${what}: byte ${i} differs`);
  };
  // Where both operands of ⊕ are NaN, IEEE 754 leaves open which one's sign and payload the result
  // carries (x86 takes the first operand, V8 may order them either way): results must then be NaN
  // on both sides, with any payload. Everything else, encodings included, is compared bit for bit.
  const bothNaN = (x: Float32Array, y: ArrayLike<number>, half: Half | null, i: number) =>
    Number.isNaN(x[i]) && (half === null ? Number.isNaN(y[i]) : isNaNPattern(half, y[i]!));
  const sameReduced = (
    a: Float32Array | Uint16Array,
    b: Float32Array | Uint16Array,
    acc: Float32Array,
    wire: ArrayLike<number>,
    half: Half | null,
    what: string,
  ) => {
    const fmt = a instanceof Float32Array ? null : (half ?? 'f16');
    const au = a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a;
    const bu = b instanceof Float32Array ? new Uint32Array(b.buffer, b.byteOffset, b.length) : b;
    for (let i = 0; i < au.length; i++) {
      if (au[i] === bu[i]) continue;
      const nan =
        fmt === null
          ? Number.isNaN(a[i]) && Number.isNaN(b[i])
          : isNaNPattern(fmt, au[i]!) && isNaNPattern(fmt, bu[i]!);
      if (nan && bothNaN(acc, wire, half, i)) continue;
      assert.fail(`${what}: element ${i} differs (${au[i]!.toString(16)} vs ${bu[i]!.toString(16)})`);
    }
  };
  for (const half of ['f16', 'bf16'] as const) {
    const jsEnc = half === 'f16' ? encodeF16 : encodeBf16;
    const jsEncRound = half === 'f16' ? encodeF16RoundTrip : encodeBf16RoundTrip;
    const a = new Uint16Array(len);
    const b = new Uint16Array(len + 8).fill(0xabcd);
    jsEnc(bits, a);
    k.encode(half, src, b.subarray(0, len), false);
    same(a, b.subarray(0, len), `${half} encode`);
    assert.ok(
      b.subarray(len).every((v) => v === 0xabcd),
      `${half} encode writes past the end`,
    );
    const r1 = src.slice();
    const r2 = src.slice();
    jsEncRound(new Uint32Array(r1.buffer), a);
    k.encode(half, r2, b.subarray(0, len), true);
    same(r1, r2, `${half} encode with rounding`);
    // Decode every 16-bit pattern.
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const d1 = new Float32Array(65536);
    const d2 = new Float32Array(65536);
    if (half === 'f16') decodeF16(all, d1);
    else decodeBf16(all, new Uint32Array(d1.buffer));
    k.decode(half, all, d2);
    same(d1, d2, `${half} decode`);
    // The fused reduction: ⊕ decode, divide, encode and round.
    const wire = a.slice();
    for (const max of [false, true]) {
      for (const divisor of [1, 3, 4]) {
        for (const withOut of [false, true]) {
          const acc1 = src.slice();
          const acc2 = src.slice();
          const o1 = new Uint16Array(len);
          const o2 = new Uint16Array(len);
          if (half === 'f16') reduceFinalF16(acc1, wire, max, divisor, withOut ? o1 : null);
          else {
            const dec = new Float32Array(len);
            decodeBf16(wire, new Uint32Array(dec.buffer));
            reduceF32(acc1, dec, max ? 'max' : 'sum');
            if (divisor !== 1) for (let i = 0; i < len; i++) acc1[i]! /= divisor;
            if (withOut) encodeBf16RoundTrip(new Uint32Array(acc1.buffer), o1);
          }
          k.reduceHalf(half, acc2, wire, max, divisor, withOut ? o2 : null);
          const what = `${half} reduce max=${max} divisor=${divisor} out=${withOut}`;
          sameReduced(acc1, acc2, src, wire, half, what);
          if (withOut) sameReduced(o1, o2, src, wire, half, `${what} (encoded)`);
          if (withOut && divisor === 1) {
            // Reduce-and-encode only (a forwarded partial sum): same bytes, accumulator untouched.
            const acc3 = src.slice();
            const o3 = new Uint16Array(len);
            k.reduceHalf(half, acc3, wire, max, 1, o3, false);
            const plain = new Uint16Array(len);
            const acc4 = src.slice();
            k.reduceHalf(half, acc4, wire, max, 1, null);
            k.encode(half, acc4, plain, false);
            sameReduced(o3, plain, src, wire, half, `${what} (reduce-encode)`);
            same(acc3, src, `${what} (reduce-encode leaves the accumulator)`);
          }
        }
      }
    }
  }
  for (const max of [false, true]) {
    for (const divisor of [1, 2, 3]) {
      const other = src.slice().reverse();
      // NaN ⊕ NaN with different signs and payloads, and NaN ⊕ number both ways round.
      const ou = new Uint32Array(other.buffer);
      nanBits.forEach((b, i) => (ou[specials.length + i] = nanBits[nanBits.length - 1 - i]!));
      ou[0] = nanBits[0]!;
      const acc1 = src.slice();
      const acc2 = src.slice();
      reduceF32(acc1, other, max ? 'max' : 'sum');
      if (divisor !== 1) for (let i = 0; i < len; i++) acc1[i]! /= divisor;
      k.reduceF32(acc2, other, max, divisor);
      sameReduced(acc1, acc2, src, other, null, `f32 reduce max=${max} divisor=${divisor}`);
    }
  }
}

test('the WebAssembly SIMD kernels give the JavaScript codec bit for bit (random and special values, any length)', async () => {
  const { simdKernels } = await import('../src/wire/simd.js');
  const k = simdKernels();
  assert.ok(k, 'Node 20 has WebAssembly SIMD: the kernels must load here');
  await checkKernels(k);
});

test('the native kernels (AVX2 + F16C and portable C) give the JavaScript codec bit for bit', async () => {
  const { nativeKernels } = await import('../src/wire/kernels.js');
  const { nativeAddonMissing } = await import('../src/native/addon.js');
  const { KERNELS } = await import('../src/wire/codec.js');
  const k = nativeKernels();
  // npm ci builds the addon (a C compiler is among the system packages); without it this fails, naming why.
  assert.ok(k, `the native addon did not load: ${nativeAddonMissing()}`);
  assert.equal(KERNELS, 'native', 'the codecs use the native kernels when the addon is there');
  // Bad arguments are errors naming them, never a read past an array.
  assert.throws(
    () => k.addon.reduceF32(new Float32Array(2), new Uint16Array(2) as never, false, 1),
    /src must be a Float32Array/,
  );
  assert.throws(
    () => k.addon.encode(0, new Float32Array(3), new Uint16Array(2), false),
    /lengths differ \(3 vs 2\)/,
  );
  assert.throws(
    () => k.addon.reduceHalf(0, new Float32Array(4), new Uint16Array(4), false, 1, new Uint16Array(3), true),
    /lengths differ/,
  );
  assert.throws(
    () => (k.addon.decode as (...a: unknown[]) => void)(0, new Uint16Array(1)),
    /too few arguments/,
  );
  const vector = k.addon.vector;
  try {
    for (const on of [true, false]) {
      if (k.addon.setVector(on) !== on) {
        assert.ok(on, 'the portable path can always be chosen');
        continue; // a CPU without AVX2/F16C: only the portable path exists
      }
      await checkKernels(k);
    }
  } finally {
    k.addon.setVector(vector);
  }
});

test('the SIMD and JavaScript codecs give the same bytes through the codec interface the ring uses', async () => {
  const { CODECS, JS_CODECS } = await import('../src/wire/codec.js');
  const len = 70_001;
  let s = 99;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2 ** 32);
  const x = Float32Array.from({ length: len }, () => (rand() - 0.5) * 2 ** (rand() * 40 - 20));
  const y = Float32Array.from({ length: len }, () => (rand() - 0.5) * 2 ** (rand() * 40 - 20));
  x[5] = NaN;
  y[6] = Infinity;
  x[7] = 70000;
  const fresh = (n: number) => new Uint8Array(n);
  const eq = (a: ArrayBufferView, b: ArrayBufferView, what: string) =>
    assert.deepEqual(
      new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
      new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
      what,
    );
  // f32: the reductions (encode and decode are views and copies, the same code).
  assert.notEqual(CODECS.f32, JS_CODECS.f32);
  const bx = new Uint8Array(x.buffer.slice(0));
  for (const op of ['sum', 'max'] as const) {
    const a1 = y.slice();
    const a2 = y.slice();
    CODECS.f32.reduceInto(bx, a1, op);
    JS_CODECS.f32.reduceInto(bx, a2, op);
    eq(a1, a2, `f32 reduceInto ${op}`);
    for (const divisor of [1, 2, 3]) {
      const f1 = y.slice();
      const f2 = y.slice();
      CODECS.f32.reduceFinal(bx, f1, op, divisor, null);
      JS_CODECS.f32.reduceFinal(bx, f2, op, divisor, null);
      eq(f1, f2, `f32 reduceFinal ${op}/${divisor}`);
    }
  }
  for (const wire of ['f16', 'bf16'] as const) {
    const simd = CODECS[wire];
    const js = JS_CODECS[wire];
    assert.notEqual(simd, js);
    const wx = js.encode(x, fresh);
    eq(simd.encode(x, fresh), wx, `${wire} encode`);
    const r1 = x.slice();
    const r2 = x.slice();
    eq(simd.encodeRound(r1, fresh), js.encodeRound(r2, fresh), `${wire} encodeRound bytes`);
    eq(r1, r2, `${wire} encodeRound values`);
    const d1 = new Float32Array(len);
    const d2 = new Float32Array(len);
    simd.decodeInto(wx, d1);
    js.decodeInto(wx, d2);
    eq(d1, d2, `${wire} decode`);
    for (const op of ['sum', 'max'] as const) {
      const a1 = y.slice();
      const a2 = y.slice();
      simd.reduceInto(wx, a1, op);
      js.reduceInto(wx, a2, op);
      eq(a1, a2, `${wire} reduceInto ${op}`);
      // reduceEncode = reduceInto then encode, without touching dst.
      const a3 = y.slice();
      eq(simd.reduceEncode!(wx, a3, op, fresh), js.encode(a2, fresh), `${wire} reduceEncode ${op}`);
      eq(a3, y, `${wire} reduceEncode leaves dst`);
      for (const divisor of [1, 3]) {
        const f1 = y.slice();
        const f2 = y.slice();
        eq(
          simd.reduceFinal(wx, f1, op, divisor, fresh)!,
          js.reduceFinal(wx, f2, op, divisor, fresh)!,
          `${wire} reduceFinal ${op}/${divisor}`,
        );
        eq(f1, f2, `${wire} reduceFinal values ${op}/${divisor}`);
      }
    }
  }
});
