import { readFileSync, writeFileSync } from 'node:fs';
import { DTYPE_BYTES, isDtype, numElements, type RawTensor } from './dtypes.js';

/**
 * safetensors: u64 LE header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__},
 * then the tensor bytes. https://github.com/huggingface/safetensors
 */
export interface Safetensors {
  tensors: Map<string, RawTensor>;
  /** String→string metadata (`__metadata__`), empty when absent. */
  metadata: Record<string, string>;
}

const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Reads a safetensors file (path) or buffer. Tensor bytes are views into the file buffer. */
export function readSafetensors(source: string | Uint8Array): Safetensors {
  const where = typeof source === 'string' ? source : 'safetensors buffer';
  const buf = typeof source === 'string' ? new Uint8Array(readFileSync(source)) : source;
  if (buf.byteLength < 8) throw new Error(`${where}: too short for a safetensors header`);
  const headerLen = new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(Math.min(MAX_HEADER_BYTES, buf.byteLength - 8))) {
    throw new Error(`${where}: header length ${headerLen} exceeds the file (${buf.byteLength} bytes)`);
  }
  const start = 8 + Number(headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, start)));
  } catch (e) {
    throw new Error(`${where}: header is not JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new Error(`${where}: header is not a JSON object`);
  }
  const dataLen = buf.byteLength - start;
  const tensors = new Map<string, RawTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(entry, where);
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null)
      throw new Error(`${where}: tensor '${name}': entry is not an object`);
    if (typeof e.dtype !== 'string' || !isDtype(e.dtype)) {
      throw new Error(`${where}: tensor '${name}': unsupported dtype ${JSON.stringify(e.dtype)}`);
    }
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`${where}: tensor '${name}': bad shape ${JSON.stringify(e.shape)}`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isInteger(o) && o >= 0)) {
      throw new Error(`${where}: tensor '${name}': bad data_offsets ${JSON.stringify(off)}`);
    }
    const [b, en] = off as [number, number];
    const shape = e.shape as number[];
    const expected = numElements(shape) * DTYPE_BYTES[e.dtype];
    if (en < b || en > dataLen || en - b !== expected) {
      throw new Error(
        `${where}: tensor '${name}': data_offsets [${b}, ${en}] do not hold ${e.dtype} [${shape}] (${expected} bytes) within ${dataLen} data bytes`,
      );
    }
    tensors.set(name, { dtype: e.dtype, shape, bytes: buf.subarray(start + b, start + en) });
  }
  return { tensors, metadata };
}

function parseMetadata(entry: unknown, where: string): Record<string, string> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new Error(`${where}: __metadata__ is not an object`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== 'string') throw new Error(`${where}: __metadata__.${k} is not a string`);
    out[k] = v;
  }
  return out;
}

/** Encodes tensors (in the given order) and string metadata as safetensors bytes. */
export function encodeSafetensors(
  tensors: Iterable<[string, RawTensor]>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__' || Object.hasOwn(header, name))
      throw new Error(`safetensors: duplicate or reserved name '${name}'`);
    const expected = numElements(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.bytes.byteLength !== expected) {
      throw new Error(
        `safetensors: tensor '${name}' has ${t.bytes.byteLength} bytes for ${t.dtype} [${t.shape}]`,
      );
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    parts.push(t.bytes);
    offset += expected;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.byteLength % 8)) % 8; // keep the data 8-byte aligned
  if (pad > 0) json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let p = 8 + json.byteLength;
  for (const part of parts) {
    out.set(part, p);
    p += part.byteLength;
  }
  return out;
}

/** Writes a safetensors file (plain write; checkpoint atomicity is the caller's business). */
export function writeSafetensors(
  path: string,
  tensors: Iterable<[string, RawTensor]>,
  metadata: Record<string, string> = {},
): void {
  writeFileSync(path, encodeSafetensors(tensors, metadata));
}
