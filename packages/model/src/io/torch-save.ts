// What `torch.save` writes (the zip format PyTorch 1.6 and later reads), written here without
// Python: `<archive>/data.pkl` (pickle protocol 2, tensors as `torch._utils._rebuild_tensor_v2`
// calls on persistent-id storages), one stored entry `<archive>/data/<key>` per tensor and
// `<archive>/version`. Entries are stored uncompressed with their data 64-byte aligned, as
// PyTorch's writer does, so readers may map them in place.
import * as zlib from 'node:zlib';
import {
  OrderedDict,
  PickleGlobal,
  PickleObject,
  PyPersistent,
  PyTuple,
  pickle,
  type PickleWritable,
} from '@mtlface/pickle';
import { DTYPE_BYTES, numElements, type Dtype } from './dtypes.js';
import { TorchTensor } from './torch-file.js';

const STORAGE_NAMES: Record<Dtype, string> = {
  F32: 'FloatStorage',
  F64: 'DoubleStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  I64: 'LongStorage',
  I32: 'IntStorage',
  I16: 'ShortStorage',
  I8: 'CharStorage',
  U8: 'ByteStorage',
  BOOL: 'BoolStorage',
};

/** Values `encodeTorchSave` accepts: pickle values with {@link TorchTensor}s anywhere inside. */
export type TorchSaveValue =
  | Exclude<PickleWritable, PickleWritable[] | Map<PickleWritable, PickleWritable>>
  | TorchTensor
  | TorchSaveValue[]
  | Map<TorchSaveValue, TorchSaveValue>;

const REBUILD = new PickleGlobal('torch._utils', '_rebuild_tensor_v2');
const ORDERED_DICT = new PickleGlobal('collections', 'OrderedDict');

/** Replaces every tensor by its `_rebuild_tensor_v2` call, collecting the storages in order. */
function lowerTensors(value: TorchSaveValue, storages: Uint8Array[], path: string): PickleWritable {
  if (value instanceof TorchTensor) {
    const n = numElements(value.shape);
    if (value.bytes.byteLength !== n * DTYPE_BYTES[value.dtype]) {
      throw new Error(
        `torch.save: ${path} has ${value.bytes.byteLength} bytes for ${value.dtype}[${value.shape}]`,
      );
    }
    const key = String(storages.length);
    storages.push(value.bytes);
    const stride = value.shape.map((_, i) => numElements(value.shape.slice(i + 1)));
    const storage = new PyPersistent(
      new PyTuple('storage', new PickleGlobal('torch', STORAGE_NAMES[value.dtype]), key, 'cpu', n),
    );
    const hooks = new PickleObject(ORDERED_DICT, []);
    return new PickleObject(REBUILD, [
      storage,
      0,
      new PyTuple(...value.shape),
      new PyTuple(...stride),
      false,
      hooks,
    ] as PickleWritable[]);
  }
  if (Array.isArray(value)) return value.map((v, i) => lowerTensors(v, storages, `${path}[${i}]`));
  if (value instanceof PyTuple)
    return new PyTuple(...value.items.map((v, i) => lowerTensors(v, storages, `${path}[${i}]`)));
  if (value instanceof Map) {
    const out = value instanceof OrderedDict ? new OrderedDict() : new Map<PickleWritable, PickleWritable>();
    for (const [k, v] of value)
      out.set(lowerTensors(k, storages, `${path} key`), lowerTensors(v, storages, `${path}.${String(k)}`));
    return out;
  }
  return value;
}

function crc32(bytes: Uint8Array): number {
  const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  if (!native)
    throw new Error(`torch.save: writing needs zlib.crc32 (Node ≥ 20.15), this is ${process.version}`);
  return native(bytes);
}

const ALIGN = 64;
const LOCAL_HEADER = 30;
const CENTRAL_HEADER = 46;
const EOCD = 22;

/** A zip of stored (uncompressed) entries, each entry's data 64-byte aligned via an extra field. */
export function storedZip(entries: Array<[name: string, data: Uint8Array]>): Uint8Array {
  const enc = new TextEncoder();
  const layout: Array<{
    nameBytes: Uint8Array;
    data: Uint8Array;
    offset: number;
    extra: number;
    crc: number;
  }> = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBytes = enc.encode(name);
    const start = offset + LOCAL_HEADER + nameBytes.length;
    // The padding lives in an extra field (id 'FB', as PyTorch's writer names it): 4 header bytes + pad.
    let extra = (ALIGN - (start % ALIGN)) % ALIGN;
    if (extra > 0 && extra < 4) extra += ALIGN;
    layout.push({ nameBytes, data, offset, extra, crc: crc32(data) });
    offset = start + extra + data.byteLength;
  }
  const centralSize = layout.reduce((n, e) => n + CENTRAL_HEADER + e.nameBytes.length, 0);
  if (offset + centralSize + EOCD > 0xffffffff || entries.length > 0xffff) {
    throw new Error(`torch.save: ${offset} bytes in ${entries.length} entries need zip64, not written here`);
  }
  const out = new Uint8Array(offset + centralSize + EOCD);
  const dv = new DataView(out.buffer);
  const common = (at: number, e: (typeof layout)[number]) => {
    dv.setUint16(at, 20, true); // version needed
    dv.setUint16(at + 2, 0x800, true); // UTF-8 names
    dv.setUint16(at + 4, 0, true); // stored
    dv.setUint16(at + 6, 0, true); // time
    dv.setUint16(at + 8, 0x21, true); // date 1980-01-01
    dv.setUint32(at + 10, e.crc, true);
    dv.setUint32(at + 14, e.data.byteLength, true);
    dv.setUint32(at + 18, e.data.byteLength, true);
    dv.setUint16(at + 22, e.nameBytes.length, true);
  };
  for (const e of layout) {
    dv.setUint32(e.offset, 0x04034b50, true);
    common(e.offset + 4, e);
    dv.setUint16(e.offset + 28, e.extra, true);
    out.set(e.nameBytes, e.offset + LOCAL_HEADER);
    const x = e.offset + LOCAL_HEADER + e.nameBytes.length;
    if (e.extra > 0) {
      dv.setUint16(x, 0x4246, true); // 'FB'
      dv.setUint16(x + 2, e.extra - 4, true);
    }
    out.set(e.data, x + e.extra);
  }
  let at = offset;
  for (const e of layout) {
    dv.setUint32(at, 0x02014b50, true);
    dv.setUint16(at + 4, 20, true); // version made by
    common(at + 6, e);
    // extra, comment, disk, internal and external attributes stay 0
    dv.setUint32(at + 42, e.offset, true);
    out.set(e.nameBytes, at + CENTRAL_HEADER);
    at += CENTRAL_HEADER + e.nameBytes.length;
  }
  dv.setUint32(at, 0x06054b50, true);
  dv.setUint16(at + 8, layout.length, true);
  dv.setUint16(at + 10, layout.length, true);
  dv.setUint32(at + 12, centralSize, true);
  dv.setUint32(at + 16, offset, true);
  return out;
}

/**
 * The bytes `torch.save(value, f)` would write for `value` (a state dict, an optimizer's state
 * dict, …): tensors as {@link TorchTensor}s (contiguous, little-endian), Python's types spelled as
 * `@mtlface/pickle`'s writer wants them. `archive` is the zip's top folder (torch uses the file's
 * stem; any name reads back).
 */
export function encodeTorchSave(value: TorchSaveValue, archive = 'archive'): Uint8Array {
  const storages: Uint8Array[] = [];
  const pkl = pickle(lowerTensors(value, storages, 'value'));
  return storedZip([
    [`${archive}/data.pkl`, pkl],
    ...storages.map((s, i): [string, Uint8Array] => [`${archive}/data/${i}`, s]),
    [`${archive}/version`, new TextEncoder().encode('3\n')],
  ]);
}
