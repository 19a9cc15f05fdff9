import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  encodeSafetensors,
  floatToBf16,
  floatToHalf,
  halfToFloat,
  rawFromFloat32,
  rawFromInt32,
  rawToFloat32,
  rawToInt32,
  readSafetensors,
} from '@mtlface/model';

/** A safetensors file assembled by hand from the format description (independent of our encoder). */
function handMade(): Uint8Array {
  const header = JSON.stringify({
    __metadata__: { format: 'pt' },
    a: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
    b: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] },
    c: { dtype: 'I64', shape: [2], data_offsets: [6, 22] },
    d: { dtype: 'U8', shape: [3], data_offsets: [22, 25] },
  });
  const h = Buffer.from(header);
  const data = Buffer.alloc(25);
  data.writeUInt16LE(0x3c00, 0); // 1.0
  data.writeUInt16LE(0xc100, 2); // -2.5
  data.writeUInt16LE(0x4049, 4); // bf16 3.140625
  data.writeBigInt64LE(-7n, 6);
  data.writeBigInt64LE(123456789n, 14);
  data.set([1, 2, 255], 22);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return new Uint8Array(Buffer.concat([len, h, data]));
}

test('reads F16, BF16, I64 and U8 tensors and metadata from a hand-assembled file', () => {
  const f = readSafetensors(handMade());
  assert.deepEqual(f.metadata, { format: 'pt' });
  assert.deepEqual([...rawToFloat32(f.tensors.get('a')!)], [1, -2.5]);
  assert.deepEqual([...rawToFloat32(f.tensors.get('b')!)], [3.140625]);
  assert.deepEqual([...rawToInt32(f.tensors.get('c')!)], [-7, 123456789]);
  assert.deepEqual([...rawToInt32(f.tensors.get('d')!)], [1, 2, 255]);
});

test('write then read preserves names, order, shapes, bytes and metadata; data stays 8-byte aligned', () => {
  const t1 = rawFromFloat32(new Float32Array([1.5, -2, 3e-8, 65504]), [2, 2]);
  const t2 = rawFromInt32(new Int32Array([5, -6]), [2], 'I64');
  const t3 = rawFromFloat32(new Float32Array([0.1, -0.2]), [2], 'F16');
  const bytes = encodeSafetensors(
    [
      ['x.weight', t1],
      ['n', t2],
      ['h', t3],
    ],
    { step: '12' },
  );
  assert.equal(Number(Buffer.from(bytes).readBigUInt64LE(0)) % 8, 0);
  const f = readSafetensors(bytes);
  assert.deepEqual([...f.tensors.keys()], ['x.weight', 'n', 'h']);
  assert.deepEqual(f.metadata, { step: '12' });
  assert.deepEqual(f.tensors.get('x.weight')!.shape, [2, 2]);
  assert.deepEqual(Buffer.from(f.tensors.get('x.weight')!.bytes), Buffer.from(t1.bytes));
  assert.deepEqual([...rawToInt32(f.tensors.get('n')!)], [5, -6]);
  const h = rawToFloat32(f.tensors.get('h')!);
  assert.ok(Math.abs(h[0]! - 0.1) < 1e-4 && Math.abs(h[1]! + 0.2) < 1e-4);
});

test('corrupt files fail with the tensor or field named', () => {
  const good = handMade();
  const bad = good.slice(0, good.length - 1);
  assert.throws(() => readSafetensors(bad), /tensor 'd': data_offsets \[22, 25\]/);
  assert.throws(() => readSafetensors(new Uint8Array(4)), /too short/);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 1000n, true);
  assert.throws(() => readSafetensors(huge), /header length 1000 exceeds/);
  const int64 = rawFromInt32(new Int32Array([0]), [1], 'I64');
  new DataView(int64.bytes.buffer).setBigInt64(0, 1n << 40n, true);
  assert.throws(() => rawToInt32(int64, 'step'), /step: int64 value 1099511627776 does not fit int32/);
});

test('f16 encoding: known bit patterns and exact round trip of every finite half', () => {
  assert.equal(floatToHalf(1), 0x3c00);
  assert.equal(floatToHalf(-2.5), 0xc100);
  assert.equal(floatToHalf(65504), 0x7bff);
  assert.equal(floatToHalf(1e6), 0x7c00);
  assert.equal(floatToHalf(2 ** -24), 0x0001);
  assert.equal(floatToBf16(1), 0x3f80);
  for (let h = 0; h < 0x10000; h++) {
    const v = halfToFloat(h);
    if (Number.isFinite(v) && !(h === 0x8000)) assert.equal(floatToHalf(v), h, `half ${h.toString(16)}`);
  }
});

test('f16 rounding picks the nearest half (property)', () => {
  fc.assert(
    fc.property(fc.float({ min: -60000, max: 60000, noNaN: true }), (x) => {
      const bits = floatToHalf(x);
      const h = halfToFloat(bits);
      // neighbouring bit patterns are the adjacent representable magnitudes of the same sign
      return [bits - 1, bits + 1]
        .filter((b) => (b & 0x8000) === (bits & 0x8000) && Number.isFinite(halfToFloat(b)))
        .every((b) => Math.abs(h - x) <= Math.abs(halfToFloat(b) - x));
    }),
  );
});
