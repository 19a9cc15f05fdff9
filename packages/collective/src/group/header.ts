/**
 * The fixed 24-byte header every collective message carries, so that ranks
 * that issued different collectives (or sizes, dtypes, reductions) fail
 * loudly instead of mixing buffers.
 *
 *   u8 kind | u8 op | u8 dtype | u8 reduce | u32 seq | u32 index | u32 aux | f64 count
 */
export const HEADER_BYTES = 24;

export const enum Kind {
  Data = 1,
  Ack = 2,
}

export const OP_NAMES = ['?', 'allReduce', 'broadcast', 'allGather', 'reduceScatter', 'barrier'] as const;
export type OpName = Exclude<(typeof OP_NAMES)[number], '?'>;
export const DTYPE_NAMES = ['f32', 'f16', 'bf16', 'u8'] as const;
export type DType = (typeof DTYPE_NAMES)[number];
export const REDUCE_NAMES = ['sum', 'mean', 'max', 'none'] as const;
export type ReduceOp = (typeof REDUCE_NAMES)[number];

/** What identifies one collective call; every rank must issue the same sequence of these. */
export interface OpDesc {
  op: OpName;
  seq: number;
  dtype: DType;
  reduce: ReduceOp;
  /** Elements (or bytes for u8), or 0 where ranks may differ (allGather). */
  count: number;
  /** Root for broadcast; 0 otherwise. */
  aux: number;
}

export function describeOp(d: OpDesc): string {
  const what =
    d.op === 'barrier' ? '' : ` of ${d.count} × ${d.dtype}${d.reduce === 'none' ? '' : ` (${d.reduce})`}`;
  const root = d.op === 'broadcast' ? ` from root ${d.aux}` : '';
  return `${d.op} seq ${d.seq}${what}${root}`;
}

export function writeHeader(d: OpDesc, kind: Kind, index: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES);
  b[0] = kind;
  b[1] = OP_NAMES.indexOf(d.op);
  b[2] = DTYPE_NAMES.indexOf(d.dtype);
  b[3] = REDUCE_NAMES.indexOf(d.reduce);
  b.writeUInt32LE(d.seq >>> 0, 4);
  b.writeUInt32LE(index >>> 0, 8);
  b.writeUInt32LE(d.aux >>> 0, 12);
  b.writeDoubleLE(d.count, 16);
  return b;
}

export function readHeader(b: Buffer): { kind: number; desc: OpDesc; index: number } | null {
  if (b.length !== HEADER_BYTES) return null;
  const op = OP_NAMES[b[1]!];
  const dtype = DTYPE_NAMES[b[2]!];
  const reduce = REDUCE_NAMES[b[3]!];
  if (!op || op === '?' || !dtype || !reduce) return null;
  return {
    kind: b[0]!,
    index: b.readUInt32LE(8),
    desc: { op, dtype, reduce, seq: b.readUInt32LE(4), aux: b.readUInt32LE(12), count: b.readDoubleLE(16) },
  };
}

/** Fast path: a received header matches the expected one byte for byte except kind and index. */
export function sameOp(a: Buffer, expected: Buffer): boolean {
  return (
    a.length === HEADER_BYTES &&
    a.compare(expected, 1, 8, 1, 8) === 0 &&
    a.compare(expected, 12, 24, 12, 24) === 0
  );
}
