import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { DTYPE_BYTES, numElements, type Dtype, type RawTensor } from './dtypes.js';
import { PickleObject, unpickle, type PickleValue } from '@mtlface/pickle';
import { readSafetensors } from './safetensors.js';

const STORAGE_DTYPES: Record<string, Dtype> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

class StorageType {
  constructor(readonly dtype: Dtype) {}
}

interface Storage {
  dtype: Dtype;
  bytes: Uint8Array;
  key: string;
}

/** A tensor decoded from a torch file: contiguous C-order bytes. */
export class TorchTensor implements RawTensor {
  constructor(
    readonly dtype: Dtype,
    readonly shape: number[],
    readonly bytes: Uint8Array,
  ) {}
}

function rebuildTensor(storage: Storage, offset: number, size: number[], stride: number[]): TorchTensor {
  const w = DTYPE_BYTES[storage.dtype];
  const n = numElements(size);
  const contiguousStride = size.map((_, i) => size.slice(i + 1).reduce((a, b) => a * b, 1));
  const lastIndex = offset + size.reduce((s, d, i) => s + (d - 1) * stride[i]!, 0);
  if (n > 0 && (lastIndex + 1) * w > storage.bytes.byteLength) {
    throw new Error(`tensor [${size}] at offset ${offset} overruns storage ${storage.key}`);
  }
  if (n === 0 || size.every((d, i) => d === 1 || stride[i] === contiguousStride[i])) {
    return new TorchTensor(storage.dtype, size, storage.bytes.slice(offset * w, (offset + n) * w));
  }
  const out = new Uint8Array(n * w);
  const idx = new Array<number>(size.length).fill(0);
  for (let i = 0; i < n; i++) {
    const src = offset + idx.reduce((s, v, k) => s + v * stride[k]!, 0);
    out.set(storage.bytes.subarray(src * w, src * w + w), i * w);
    for (let k = size.length - 1; k >= 0; k--) {
      if (++idx[k]! < size[k]!) break;
      idx[k] = 0;
    }
  }
  return new TorchTensor(storage.dtype, size, out);
}

/**
 * Reads what `torch.save` writes (the zip format, PyTorch ≥ 1.6): the pickled object with its
 * tensors decoded. Containers come back as Maps/arrays.
 */
export function readTorchPickle(source: string | Uint8Array): PickleValue {
  const where = typeof source === 'string' ? source : 'torch file';
  const buf = typeof source === 'string' ? new Uint8Array(readFileSync(source)) : source;
  if (!(buf[0] === 0x50 && buf[1] === 0x4b)) {
    throw new Error(
      `${where}: not a zip archive; only the torch.save zip format (PyTorch ≥ 1.6) is supported`,
    );
  }
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(buf);
  } catch (e) {
    throw new Error(`${where}: unreadable zip (${(e as Error).message})`);
  }
  const pkl = Object.keys(files).find((n) => n.endsWith('data.pkl') && n.split('/').length === 2);
  if (!pkl) throw new Error(`${where}: no <archive>/data.pkl inside`);
  const root = pkl.slice(0, pkl.length - 'data.pkl'.length);
  const storages = new Map<string, Storage>();
  return unpickle(files[pkl]!, {
    where: `${where}:${pkl}`,
    findClass: (module, name) => {
      if (module === 'collections' && name === 'OrderedDict') return () => new Map();
      if (module === 'torch' && STORAGE_DTYPES[name]) return new StorageType(STORAGE_DTYPES[name]);
      if (module === 'torch._utils' && name === '_rebuild_tensor_v2') {
        return (storage: PickleValue, offset: PickleValue, size: PickleValue, stride: PickleValue) =>
          rebuildTensor(
            storage as unknown as Storage,
            Number(offset),
            (size as number[]).map(Number),
            (stride as number[]).map(Number),
          );
      }
      if (module === 'torch._utils' && name === '_rebuild_parameter') return (data: PickleValue) => data;
      return undefined;
    },
    persistentLoad: (pid) => {
      const [kind, type, key] = pid as [string, unknown, string];
      if (kind !== 'storage' || !(type instanceof StorageType)) {
        throw new Error(
          `${where}: unsupported persistent id ${JSON.stringify(String(kind))} (${String(type)})`,
        );
      }
      let s = storages.get(key);
      if (!s) {
        const bytes = files[`${root}data/${key}`];
        if (!bytes) throw new Error(`${where}: storage ${key} missing from the archive`);
        s = { dtype: type.dtype, bytes, key };
        storages.set(key, s);
      }
      return s as unknown as PickleValue;
    },
  });
}

/**
 * Every tensor of a pickled object by dotted path (nested dicts joined with '.'), with the
 * `module.` prefixes of DataParallel/DDP stripped. Non-tensor leaves are skipped.
 */
export function flattenTensors(value: PickleValue, prefix = ''): Map<string, TorchTensor> {
  const out = new Map<string, TorchTensor>();
  const visit = (v: PickleValue, path: string) => {
    if (v instanceof TorchTensor) {
      const name = path.replace(/(^|\.)module\./g, '$1');
      if (out.has(name)) throw new Error(`two tensors map to '${name}' after stripping 'module.'`);
      out.set(name, v);
    } else if (v instanceof Map) {
      for (const [k, child] of v) visit(child, path === '' ? String(k) : `${path}.${String(k)}`);
    } else if (v instanceof PickleObject) {
      // e.g. a checkpoint class: look into its state
      visit(v.state, path);
    }
  };
  visit(value, prefix);
  return out;
}

/** Tensors of a PyTorch weights file: safetensors, or a torch.save zip (state dict or nested dicts). */
export function readTorchWeights(path: string): Map<string, RawTensor> {
  const buf = new Uint8Array(readFileSync(path));
  if (buf[0] === 0x50 && buf[1] === 0x4b)
    return flattenTensors(readTorchPickle(buf)) as Map<string, RawTensor>;
  try {
    return readSafetensors(buf).tensors;
  } catch (e) {
    throw new Error(`${path}: neither a torch.save zip nor a safetensors file (${(e as Error).message})`);
  }
}
