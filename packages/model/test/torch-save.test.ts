// Our torch.save writer against PyTorch 1.13's torch.load (/usr/bin/python3): every dtype we write,
// 0-d and empty tensors, the Python types of optimizer and scaler state dicts, and the zip layout
// PyTorch's own writer uses (stored entries, data 64-byte aligned).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OrderedDict, PyFloat, PyTuple, type PickleWritable } from '@mtlface/pickle';
import {
  TorchTensor,
  encodeTorchSave,
  readTorchPickle,
  rawFromFloat32,
  rawFromInt32,
  type Dtype,
} from '@mtlface/model';

const PYTHON = '/usr/bin/python3';

/** Runs `code` under PyTorch with the file path as argv[1]; returns its stdout parsed as JSON. */
function torchLoad(bytes: Uint8Array, code: string): unknown {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-torch-save-'));
  try {
    const file = join(dir, 'value.pth');
    writeFileSync(file, bytes);
    const r = spawnSync(PYTHON, ['-c', code, file], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) {
      throw new Error(
        `torch.load under ${PYTHON} (PyTorch 1.13 must be installed) failed (status ${r.status}` +
          `${r.error ? `, ${r.error.message}` : ''}): ${r.stderr}`,
      );
    }
    return JSON.parse(r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const DESCRIBE = `
import sys, json, zipfile, torch
def d(v):
    if isinstance(v, torch.Tensor):
        return {'tensor': str(v.dtype), 'shape': list(v.shape), 'hex': v.reshape(-1).view(torch.uint8).numpy().tobytes().hex(),
                'requires_grad': v.requires_grad}
    if isinstance(v, dict):
        return {'type': type(v).__name__, 'items': [[d(k), d(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple)):
        return {'type': type(v).__name__, 'items': [d(x) for x in v]}
    return {'type': type(v).__name__, 'repr': repr(v)}
z = zipfile.ZipFile(sys.argv[1])
offsets = []
for i in z.infolist():
    with open(sys.argv[1], 'rb') as f:
        f.seek(i.header_offset + 26)
        n, e = int.from_bytes(f.read(2), 'little'), int.from_bytes(f.read(2), 'little')
    offsets.append([i.filename, i.compress_type, (i.header_offset + 30 + n + e) % 64])
print(json.dumps({'value': d(torch.load(sys.argv[1])), 'zip': offsets}))
`;

function bytesOf(dtype: Dtype, values: number[] | bigint[]): Uint8Array {
  const arrays: Record<Dtype, (n: number) => ArrayBufferView> = {
    F64: (n) => new Float64Array(n),
    F32: (n) => new Float32Array(n),
    F16: (n) => new Uint16Array(n),
    BF16: (n) => new Uint16Array(n),
    I64: (n) => new BigInt64Array(n),
    I32: (n) => new Int32Array(n),
    I16: (n) => new Int16Array(n),
    I8: (n) => new Int8Array(n),
    U8: (n) => new Uint8Array(n),
    BOOL: (n) => new Uint8Array(n),
  };
  const a = arrays[dtype](values.length) as unknown as { set(v: unknown): void } & ArrayBufferView;
  a.set(values);
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('torch.load reads every dtype we write bit-exactly, with shapes, 0-d and empty tensors', () => {
  const tensors: Array<[string, TorchTensor, string]> = [
    [
      'f32',
      new TorchTensor('F32', [2, 3], bytesOf('F32', [1.5, -0, 3e-39, Infinity, NaN, -2.25])),
      'torch.float32',
    ],
    ['f64', new TorchTensor('F64', [2], bytesOf('F64', [Math.PI, -1e300])), 'torch.float64'],
    ['f16', new TorchTensor('F16', [3], bytesOf('F16', [0x3c00, 0xc000, 0x7bff])), 'torch.float16'],
    ['bf16', new TorchTensor('BF16', [2], bytesOf('BF16', [0x3f80, 0xc040])), 'torch.bfloat16'],
    ['i64', new TorchTensor('I64', [], bytesOf('I64', [-(2n ** 40n)])), 'torch.int64'],
    ['i32', new TorchTensor('I32', [1, 2, 1], bytesOf('I32', [-7, 2 ** 31 - 1])), 'torch.int32'],
    ['i16', new TorchTensor('I16', [2], bytesOf('I16', [-300, 300])), 'torch.int16'],
    ['i8', new TorchTensor('I8', [2], bytesOf('I8', [-1, 5])), 'torch.int8'],
    ['u8', new TorchTensor('U8', [3], bytesOf('U8', [0, 128, 255])), 'torch.uint8'],
    ['bool', new TorchTensor('BOOL', [2], bytesOf('BOOL', [1, 0])), 'torch.bool'],
    ['scalar', new TorchTensor('F32', [], bytesOf('F32', [7])), 'torch.float32'],
    ['empty', new TorchTensor('F32', [0, 4], new Uint8Array(0)), 'torch.float32'],
  ];
  const value = new OrderedDict(tensors.map(([k, t]) => [k, t]));
  // a state dict also passes torch.load(weights_only=True), the loader that refuses arbitrary globals
  const got = torchLoad(
    encodeTorchSave(value),
    `${DESCRIBE}\ntorch.load(sys.argv[1], weights_only=True)\n`,
  ) as {
    value: {
      type: string;
      items: Array<[{ repr: string }, { tensor: string; shape: number[]; hex: string }]>;
    };
    zip: Array<[string, number, number]>;
  };
  assert.equal(got.value.type, 'OrderedDict');
  assert.deepEqual(
    got.value.items.map(([k, t]) => [k.repr, t.tensor, t.shape, t.hex]),
    tensors.map(([k, t, dtype]) => [`'${k}'`, dtype, t.shape, hex(t.bytes)]),
  );
  // stored entries, each one's data on a 64-byte boundary, as torch's own writer lays them out
  assert.deepEqual(
    got.zip.map(([name, method, misalign]) => [name, method, misalign]),
    [
      ['archive/data.pkl', 0, 0],
      ...tensors.map((_, i): [string, number, number] => [`archive/data/${i}`, 0, 0]),
      ['archive/version', 0, 0],
    ],
  );
});

test('the Python types of optimizer and scaler state dicts come out as Python wrote them', () => {
  const momentum = new TorchTensor('F32', [2], bytesOf('F32', [0.5, -0.5]));
  const value = new Map<PickleWritable | TorchTensor, unknown>([
    [
      'state',
      new Map([
        [0, new Map([['momentum_buffer', momentum]])],
        [1, new Map([['momentum_buffer', null]])],
      ]),
    ],
    [
      'param_groups',
      [
        new Map<string, unknown>([
          ['lr', new PyFloat(0.1)],
          ['betas', new PyTuple(new PyFloat(0.5), new PyFloat(0.99))],
          ['dampening', 0],
          ['nesterov', false],
          ['foreach', null],
          ['maximize', true],
          ['big', 2n ** 70n],
          ['neg', -(2 ** 40)],
          ['mid', 70000],
          ['unicode', 'âge → ✓'],
          ['params', Array.from({ length: 1500 }, (_, i) => i)],
        ]),
      ],
    ],
    ['scale', new PyFloat(65536)],
  ]);
  const code = DESCRIBE.replace(
    "print(json.dumps({'value': d(torch.load(sys.argv[1])), 'zip': offsets}))",
    `v = torch.load(sys.argv[1]); g = v['param_groups'][0]
print(json.dumps([type(v).__name__, list(v['state'].keys()), v['state'][0]['momentum_buffer'].tolist(),
  v['state'][1]['momentum_buffer'], [[k, type(x).__name__, repr(x)] for k, x in g.items() if k != 'params'],
  g['params'] == list(range(1500)), type(v['scale']).__name__, v['scale']]))`,
  );
  const got = torchLoad(encodeTorchSave(value as never), code);
  assert.deepEqual(got, [
    'dict',
    [0, 1],
    [0.5, -0.5],
    null,
    [
      ['lr', 'float', '0.1'],
      ['betas', 'tuple', '(0.5, 0.99)'],
      ['dampening', 'int', '0'],
      ['nesterov', 'bool', 'False'],
      ['foreach', 'NoneType', 'None'],
      ['maximize', 'bool', 'True'],
      ['big', 'int', String(2n ** 70n)],
      ['neg', 'int', String(-(2 ** 40))],
      ['mid', 'int', '70000'],
      ['unicode', 'str', "'âge → ✓'"],
    ],
    true,
    'float',
    65536,
  ]);
});

test('our reader reads back what our writer wrote', () => {
  const w = rawFromFloat32(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  const n = rawFromInt32(new Int32Array([9]), [], 'I64');
  const bytes = encodeTorchSave(
    new OrderedDict([
      ['module.w', new TorchTensor(w.dtype, w.shape, w.bytes)],
      ['module.n', new TorchTensor(n.dtype, n.shape, n.bytes)],
    ]),
  );
  const back = readTorchPickle(bytes) as Map<string, TorchTensor>;
  assert.deepEqual([...back.keys()], ['module.w', 'module.n']);
  assert.equal(hex(back.get('module.w')!.bytes), hex(w.bytes));
  assert.deepEqual(back.get('module.n')!.shape, []);
  assert.equal(hex(back.get('module.n')!.bytes), hex(n.bytes));
});

test('values the writer cannot express are refused, naming where they are', () => {
  assert.throws(() => encodeTorchSave(new Map([['lr', 0.1]])), /value\["lr"\] is 0\.1, not an int/);
  assert.throws(
    () => encodeTorchSave(new Map([['t', new TorchTensor('F32', [3], new Uint8Array(8))]])),
    /value\.t has 8 bytes for F32\[3\]/,
  );
});
